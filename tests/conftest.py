"""Test set-up: hermetic weight caches, fake checkpoints in each backend's real format, shared data.

The environment variables below must be set before huggingface_hub or torch.hub read them, which is
why they are assigned at import time, before any test module imports seggallery.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

_CACHES = Path(tempfile.mkdtemp(prefix="seggallery-test-caches-"))
atexit.register(shutil.rmtree, _CACHES, ignore_errors=True)
os.environ["TORCH_HOME"] = str(_CACHES / "torch")
os.environ["HF_HOME"] = str(_CACHES / "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["SEGGALLERY_DEVICE"] = "cpu"
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
    """A real photo (the astronaut example), decoded once, as the app would decode it."""
    from seggallery.images import load_image

    return load_image(EXAMPLES / "people-astronaut.jpg").pixels


@pytest.fixture(scope="session")
def photo_png(tmp_path_factory, photo) -> Path:
    """The same photo as a lossless PNG, so that every library decodes exactly the same pixels."""
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch) -> Path:
    """A Hub cache with nothing in it, for this test only (huggingface_hub reads the constant per call)."""
    from huggingface_hub import constants

    folder = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    return folder
