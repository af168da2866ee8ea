"""Cold starts explained (issue 15, point 6): a weights download reports bytes done / total and an estimate to
the caller that waits for it, through both libraries that download for us (torch.hub for URLs,
huggingface_hub for Hub files), from a real HTTP server on this machine; and a first use's time is split
into download, load and run."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants as hub_constants
import numpy as np
import pytest
import torch
from conftest import free_port, require_shared
from gradio_client import Client, handle_file
from huggingface_hub import hf_hub_download
from PIL import Image

from seggallery.backends import torchhub
from seggallery.catalog import get_spec
from seggallery.runtime import download_progress
from seggallery.runtime.download_progress import DownloadState, ReportingTqdm, reporting
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction, first_use_summary
from seggallery.ui import build_app
from seggallery.ui.compare import ProgressLine

CHUNK = 256 << 10
PAUSE_S = 0.06  # between chunks, so that a download takes long enough to be reported more than once


class Served:
    """A local HTTP server that serves `payload` slowly at any path, with the headers the Hub sends."""

    revision = "c" * 40

    def __init__(self, payload: bytes, pause_s: float = PAUSE_S):
        self.payload, self.pause_s = payload, pause_s
        digest = hashlib.sha256(payload).hexdigest()
        served = self

        class Handler(BaseHTTPRequestHandler):
            def _headers(self):
                self.send_header("Content-Length", str(len(served.payload)))
                self.send_header("X-Repo-Commit", served.revision)
                self.send_header("ETag", f'"{digest}"')
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(served.payload)))

            def do_HEAD(self):
                self.send_response(200)
                self._headers()
                self.end_headers()

            def do_GET(self):
                if "/resolve/" not in self.path and not self.path.endswith(".pth"):
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers()
                self.end_headers()
                for start in range(0, len(served.payload), CHUNK):
                    self.wfile.write(served.payload[start : start + CHUNK])
                    self.wfile.flush()
                    time.sleep(served.pause_s)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served():
    server = Served(os.urandom(8 * CHUNK + 1234))
    yield server
    server.close()


def check_reports(states: list[DownloadState], size: int) -> None:
    assert len(states) >= 2, "a download of about half a second is reported more than once"
    assert all(s.total == size for s in states)
    done = [s.done for s in states]
    assert done == sorted(done) and done[-1] == size
    assert states[0].remaining_s is not None and states[0].remaining_s > 0
    assert f"of {size / 1e6:.1f} MB" in states[0].describe() and "s left" in states[0].describe()
    assert "left" not in states[-1].describe()


def test_a_url_download_reports_to_its_own_caller_only(served, tmp_path):
    sha = hashlib.sha256(served.payload).hexdigest()[:8]
    heard, elsewhere = [], []
    other_thread_done = threading.Event()

    def download_in_another_thread():
        with reporting(elsewhere.append):
            other_thread_done.wait(10)  # listening, but downloading nothing

    listener = threading.Thread(target=download_in_another_thread)
    listener.start()
    with reporting(heard.append):
        path = torchhub.download(f"{served.url}/weights-{sha}.pth", tmp_path / "a" / f"weights-{sha}.pth", sha)
    other_thread_done.set()
    listener.join()
    assert path.read_bytes() == served.payload
    check_reports(heard, len(served.payload))
    assert elsewhere == [], "a download reports to the thread that asked for it, no other"
    told = len(heard)
    torchhub.download(f"{served.url}/weights-{sha}.pth", tmp_path / "b" / f"weights-{sha}.pth", sha)
    assert len(heard) == told, "outside `reporting`, a download tells nobody"


def test_a_hub_download_reports_its_file_and_bytes(served, tmp_path, monkeypatch):
    """huggingface_hub's own download from a server speaking the Hub's protocol (a HEAD with the commit and
    ETag, then a GET), with our bar class, as backends/hub.py calls it."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "DOWNLOAD_CHUNK_SIZE", CHUNK)  # it reads 10 MB at a time: too big a test
    monkeypatch.setattr(hub_constants, "ENDPOINT", served.url)
    monkeypatch.setattr(hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", served.url + "/{repo_id}/resolve/{revision}/{filename}")
    heard = []
    with reporting(heard.append):
        path = hf_hub_download("someone/model", "model.safetensors", revision=served.revision,
                               cache_dir=tmp_path, tqdm_class=ReportingTqdm)
    assert Path(path).read_bytes() == served.payload
    check_reports(heard, len(served.payload))
    assert heard[0].name == "model.safetensors"


def test_download_state_describes_bytes_and_time_left():
    state = DownloadState("model.safetensors", 25_000_000, 100_000_000, 5.0)
    assert state.fraction == 0.25 and state.remaining_s == pytest.approx(15.0)
    assert state.describe() == "model.safetensors: 25.0 of 100.0 MB, about 15 s left"
    assert DownloadState("", 3_000_000, None, 1.0).describe() == "3.0 MB"  # the server gave no size
    assert DownloadState("", 0, 10, 0.0).remaining_s is None


def test_the_status_line_names_the_model_and_its_download():
    said = []
    line = ProgressLine(lambda fraction, desc: said.append((fraction, desc)), models=2)
    line.starting(1, "enet_camvid", cold=True)
    line.downloading(DownloadState("ENet_default", 500, 1000, 1.0))
    assert said[0] == (0.5, "ENet (CamVid): loading")
    assert said[1][0] == pytest.approx(0.75) and said[1][1].startswith("ENet (CamVid): downloading ENet_default: 0.0 of 0.0 MB")


def serve_enet_from(served: Served, tmp_path, monkeypatch) -> bytes:
    """ENet's real weights, downloaded by torch.hub's own downloader from the local server (the catalog URL
    pointed there), into an empty torch cache; returns the file's bytes."""
    real = require_shared("weights/enet-camvid/ENet_default").read_bytes()
    served.payload = real
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    real_download = torch.hub.download_url_to_file
    spec = get_spec("enet_camvid")

    def to_local_server(url, dst, hash_prefix=None, progress=True):
        assert url == spec.source["url"]
        real_download(f"{served.url}/ENet_default.pth", dst, hash_prefix=hash_prefix, progress=progress)

    monkeypatch.setattr(torch.hub, "download_url_to_file", to_local_server)
    return real


def test_a_first_use_splits_download_load_and_run(served, tmp_path, monkeypatch):
    """The cold call's timings have the download apart from the load; the warm call has neither."""
    real = serve_enet_from(served, tmp_path, monkeypatch)
    engine, heard = Engine(device=torch.device("cpu")), []
    photo = np.zeros((120, 160, 3), np.uint8)
    with reporting(heard.append):
        cold = engine.run(photo, "enet_camvid")
        warm = engine.run(photo, "enet_camvid")
    assert isinstance(cold, Prediction) and cold.cold
    steps = list(cold.timings_ms)
    assert steps[:2] == ["download", "load"] and {"preprocess", "forward", "total"} <= set(steps)
    chunks = -(-len(real) // CHUNK)
    assert cold.timings_ms["download"] >= 1000 * PAUSE_S * (chunks - 1) * 0.9  # the server pauses after each chunk
    assert heard and heard[-1].done == len(real)
    assert first_use_summary(cold.timings_ms).startswith("weights downloaded in ")
    assert not warm.cold and "download" not in warm.timings_ms and "load" not in warm.timings_ms
    assert download_progress.ReportingTqdm is torch.hub.tqdm


def test_the_app_shows_the_download_while_it_runs(served, tmp_path, monkeypatch):
    """The real Gradio server and client: while ENet's weights download, /compare's progress names the model
    and the bytes; the timing table then has a download column."""
    served.pause_s = 0.2  # about 1.2 s of download: several reports
    serve_enet_from(served, tmp_path, monkeypatch)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(photo)
    app = build_app(Engine(device=torch.device("cpu")))
    app.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        job = client.submit(handle_file(str(photo)), ["enet_camvid"], 0.5, 0.5, api_name="/compare")
        said = set()
        while not job.done():
            said.update(unit.desc for unit in (job.status().progress_data or []) if unit.desc)
            time.sleep(0.05)
        outputs = job.result()
    finally:
        app.close()
    downloading = [desc for desc in said if desc.startswith("ENet (CamVid): downloading ")]
    assert downloading and any(" MB, about " in desc and " s left" in desc for desc in downloading), said
    status, timings = outputs[0], outputs[-2]  # the session state is not among the API's outputs
    assert status.startswith("1 of 1 models ran")
    assert timings["headers"][3:5] == ["download", "load"] and timings["data"][0][2] == "cold (first use)"
