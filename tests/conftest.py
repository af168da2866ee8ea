"""Test set-up: hermetic weight caches, fake checkpoints in each backend's real format, shared data.

The environment variables below must be set before huggingface_hub or torch.hub read them, which is
why they are assigned at import time, before any test module imports seggallery.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# $SEGGALLERY_TEST_CACHES: caches prepared by the caller, used and kept (`python -m seggallery.gpucheck` writes the
# fakes once for its GPU tests and its benchmarks); otherwise a fresh folder, removed at exit.
if os.environ.get("SEGGALLERY_TEST_CACHES"):
    _CACHES = Path(os.environ["SEGGALLERY_TEST_CACHES"])
else:
    _CACHES = Path(tempfile.mkdtemp(prefix="seggallery-test-caches-"))
    atexit.register(shutil.rmtree, _CACHES, ignore_errors=True)
os.environ["TORCH_HOME"] = str(_CACHES / "torch")
os.environ["HF_HOME"] = str(_CACHES / "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["SEGGALLERY_DEVICE"] = "cpu"
# Backend tests compare masks exactly with upstream fp32 inference, so models run plain unless a test
# asks for the optimised engine (tests/test_speed.py); precision checks go to the temporary caches.
os.environ["SEGGALLERY_OPTIMIZE"] = "0"
os.environ["SEGGALLERY_CACHE_DIR"] = str(_CACHES / "seggallery")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "assets" / "examples"


def shared_dir() -> Path:
    """../shared beside the repository, or $SEGGALLERY_SHARED."""
    return Path(os.environ.get("SEGGALLERY_SHARED", REPO.parent / "shared"))


def require_shared(relative: str) -> Path:
    """A path in the shared data; skip when it is absent, but fail under CI where it must exist."""
    path = shared_dir() / relative
    if not path.exists():
        message = f"shared test data {path} is absent (set SEGGALLERY_SHARED to its folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def cache_root() -> Path:
    return _CACHES


@pytest.fixture(scope="session")
def fake_weights():
    """install(model_id): write a randomly initialised checkpoint for that catalog entry into the caches."""
    from fakes import install

    return install


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo: the astronaut example cropped to a 384x512 portrait, so that a height/width mix-up fails."""
    from seggallery.images import load_image

    square = load_image(EXAMPLES / "people-astronaut.jpg").pixels
    return np.ascontiguousarray(square[:, 64:448])


@pytest.fixture(scope="session")
def photo_png(tmp_path_factory, photo) -> Path:
    """The same photo as a lossless PNG, so that every library decodes exactly the same pixels."""
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(photo).save(path)
    return path


APP_MODELS = ("fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large")
# the instance model the app's tests compare (app_instance_model): the smaller Mask R-CNN, a few seconds per photo
APP_INSTANCE_MODEL = "maskrcnn_resnet50_fpn"


@dataclass
class AppServer:
    url: str
    models_with_weights: tuple[str, ...]
    process: subprocess.Popen
    torch_home: Path  # the server's TORCH_HOME: app_instance_model links its fake here while the server runs


def _link_checkpoint(model_id: str, torch_home: Path) -> None:
    """The fake checkpoint of a torchvision model, hard-linked into another torch cache."""
    from seggallery.backends.torchvision import checkpoint_path
    from seggallery.catalog import get_spec

    source = checkpoint_path(get_spec(model_id))
    target = torch_home / "hub" / "checkpoints" / source.name
    if not target.exists():
        os.link(source, target)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, fake_weights):
    """`python app.py` serving on 127.0.0.1, with a torch cache that holds fake weights for APP_MODELS only."""
    torch_home = tmp_path_factory.mktemp("app-torch-home")
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    for model_id in APP_MODELS:
        fake_weights(model_id)
        _link_checkpoint(model_id, torch_home)
    port = free_port()
    env = {**os.environ, "TORCH_HOME": str(torch_home), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path_factory.mktemp("app-log") / "app.log", "w+")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            pytest.fail(f"app.py did not answer on {url} within 180 s:\n{log.read()[-4000:]}")
        time.sleep(0.5)
    yield AppServer(url, APP_MODELS, process, torch_home)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def app_instance_model(app_server, fake_weights) -> str:
    """APP_INSTANCE_MODEL with fake weights in the running app's cache (written only for the tests that ask: the
    steered fake runs the detector once to calibrate); its detections on the astronaut photo score from about
    0.05 to 0.6, about half of them at least 0.5, cars and people (tests/fakes/torchvision.py)."""
    fake_weights(APP_INSTANCE_MODEL)
    _link_checkpoint(APP_INSTANCE_MODEL, app_server.torch_home)
    return APP_INSTANCE_MODEL


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module that runs real models many times: on a busy 2-core machine two
    OpenMP threads spin against each other and small models run several times slower than on one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch) -> Path:
    """A Hub cache with nothing in it, for this test only (huggingface_hub reads the constant per call)."""
    from huggingface_hub import constants

    folder = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    return folder


EVAL_IMAGES = 5  # CamVid test photos the eval tests score (tests/test_eval_cli.py, tests/test_eval_ray.py)
EVAL_FAKE_VOC_MODEL = "lraspp_mobilenet_v3_large"  # random weights: the cross-label-set path, not accuracy


@pytest.fixture(scope="module")
def eval_camvid(tmp_path_factory) -> Path:
    """EVAL_IMAGES CamVid test photos and masks in folders of their own, and a photo without a mask."""
    from eval_runs import link_camvid_subset

    return link_camvid_subset(tmp_path_factory.mktemp("camvid-subset"), EVAL_IMAGES)


@pytest.fixture(scope="module")
def eval_models(fake_weights) -> str:
    """ENet with its real CamVid weights and a random-weight VOC model, as --models takes them."""
    from real_weights import install_enet

    install_enet()
    fake_weights(EVAL_FAKE_VOC_MODEL)
    return f"enet_camvid,{EVAL_FAKE_VOC_MODEL}"


@pytest.fixture(scope="module")
def eval_one_machine(eval_camvid, eval_models, tmp_path_factory) -> Path:
    """The folder of an undisturbed single-machine `eval` of eval_models over eval_camvid."""
    from eval_runs import eval_args

    from seggallery.cli import main

    out = tmp_path_factory.mktemp("eval-one-machine")
    assert main(eval_args(eval_camvid, out, eval_models)) == 0
    return out
