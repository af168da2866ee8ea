"""The Compare as a user gets it: the real Gradio app on a local port, called over its HTTP API.

bench.bench_compare times the Compare's own work in-process. This adds what serving adds: uploading the
photo, Gradio's queue and event stream, the tables and report, and fetching the overlay pictures, as the
browser does (upload, POST /gradio_api/call/compare, read the event stream to its end, GET each picture).
gradio_client is not used for the timing: it polls for results with 50 ms sleeps, which added about
100 ms per call on the development machine that no browser pays. The server runs on the benchmark's own
engine, so the models are already loaded and warm; the client runs in a process of its own (in the
server's process it slowed the server by about 60 ms per call on 2 cores).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from ..runtime.engine import Engine
from .measure import percentiles

GPU_TARGET_MS = 150.0  # a warm three-model Compare of a 1024x768 photo on an H100/H200, end to end
TIMEOUT_S = 600.0


def sse_result(stream: str) -> list:
    """The outputs of the `complete` event of a Gradio event stream; its message if the event failed."""
    event = None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event in ("complete", "error"):
            data = json.loads(line[len("data: "):])
            if event == "error":
                raise RuntimeError(f"the app answered with an error: {data}")
            return data
    raise RuntimeError(f"the event stream ended without a result: {stream[-300:]!r}")


def served_compare(client: httpx.Client, base_url: str, photo: Path, model_ids: list[str]) -> tuple[float, list]:
    """One Compare as the browser makes it; (wall time in ms, the outputs)."""
    api = base_url.rstrip("/") + "/gradio_api"
    start = time.perf_counter()
    with open(photo, "rb") as file:
        uploaded = client.post(f"{api}/upload", files={"files": (photo.name, file)}).raise_for_status().json()[0]
    data = [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, model_ids, 0.5, 0.5, False]  # opacity, score threshold, CRF
    event_id = client.post(f"{api}/call/compare", json={"data": data}).raise_for_status().json()["event_id"]
    outputs = sse_result(client.get(f"{api}/call/compare/{event_id}").raise_for_status().text)
    for output in outputs:  # the pictures: the photo tile (a file) and the overlays (slot updates whose value is a file)
        value = output.get("value", output) if isinstance(output, dict) else None
        if isinstance(value, dict) and value.get("url"):
            client.get(value["url"]).raise_for_status()
    return (time.perf_counter() - start) * 1000.0, outputs


def bench_served(engine: Engine, model_ids: list[str], photo: np.ndarray, repeat: int, warmup: int = 1) -> dict:
    """p50/p90 of the wall time per Compare, against the sum of the models' forward times that the server
    reported in the same calls."""
    from PIL import Image

    from ..ui import build_app, launch_options

    app = build_app(engine)
    app.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        with tempfile.TemporaryDirectory(prefix="seggallery-bench-") as folder:
            upload = Path(folder) / "photo.png"  # lossless: the server decodes exactly these pixels
            Image.fromarray(photo).save(upload)
            command = [sys.executable, "-m", __name__, app.local_url, str(upload), ",".join(model_ids), str(max(1, warmup)), str(repeat)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError((done.stderr.strip().splitlines() or [f"the client exited with {done.returncode}"])[-1])
        calls = json.loads(done.stdout)
    except Exception as error:  # noqa: BLE001 - reported in the results, like a failing model
        return {"models": model_ids, "error": f"{type(error).__name__}: {error}"}
    finally:
        app.close()
    walls, forwards = [call["wall_ms"] for call in calls], [call["forward_sum_ms"] for call in calls]
    return {
        "models": model_ids,
        "photo_hw": list(photo.shape[:2]),
        "ms": {"total": percentiles(walls), "forward_sum": percentiles(forwards)},
        "overhead_ms_p50": statistics.median(walls) - statistics.median(forwards),
        "gpu_target_ms": GPU_TARGET_MS,
        "what": "wall time of a Compare through the app's HTTP API on 127.0.0.1 (upload, call, event stream, "
                "fetching the overlays) from another process, against the sum of the forward times the server "
                "reported in the same calls",
    }


def client_calls(base_url: str, photo: Path, model_ids: list[str], warmup: int, repeat: int) -> list[dict]:
    """The client process's work: `warmup` calls, then `repeat` timed ones, each checked to have run every model."""
    from ..ui.tables import TIMING_COLUMNS

    forward = TIMING_COLUMNS.index("forward")
    calls = []
    with httpx.Client(timeout=TIMEOUT_S) as client:
        for index in range(warmup + repeat):
            wall, outputs = served_compare(client, base_url, photo, model_ids)
            status, timings = outputs[1], outputs[-2]  # outputs[0] is the session's state (null over the API)
            if not status.startswith(f"{len(model_ids)} of {len(model_ids)} models ran"):
                raise RuntimeError(f"the served Compare did not run every model: {status}")
            if index >= warmup:
                calls.append({"wall_ms": wall, "forward_sum_ms": sum(row[forward] for row in timings["data"])})
    return calls


if __name__ == "__main__":
    url, photo_path, models, warmups, repeats = sys.argv[1:]
    print(json.dumps(client_calls(url, Path(photo_path), models.split(","), int(warmups), int(repeats))))
