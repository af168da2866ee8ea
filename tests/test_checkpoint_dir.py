"""Weights from $SEGGALLERY_CHECKPOINT_DIR: an operator's folder seeds torch hub's cache, hash-checked."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import require_shared

from seggallery import backends
from seggallery.backends import is_cached, native, torchhub
from seggallery.catalog import get_spec
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction, WeightsUnavailable


def _offline(url, *args, **kwargs):
    raise OSError(f"no network in this test ({url})")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    return tmp_path / "torch"


def test_enet_weights_come_from_the_checkpoint_folder(empty_torch_home, monkeypatch, photo):
    folder = require_shared("weights/enet-camvid")  # holds ENet_default, the published file
    monkeypatch.setenv("SEGGALLERY_CHECKPOINT_DIR", str(folder))
    spec = get_spec("enet_camvid")
    assert not is_cached(spec)
    result = Engine(device=torch.device("cpu")).run(photo, "enet_camvid")
    assert isinstance(result, Prediction), getattr(result, "reason", "")
    assert native.checkpoint_path(spec).read_bytes() == (folder / "ENet_default").read_bytes()


def test_a_file_that_is_not_the_published_one_is_refused(empty_torch_home, monkeypatch, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "ENet_default").write_bytes(b"not the published weights")
    monkeypatch.setenv("SEGGALLERY_CHECKPOINT_DIR", str(folder))
    spec = get_spec("enet_camvid")
    with pytest.raises(WeightsUnavailable, match="is not the published ENet_default"):
        backends.fetch(spec)
    assert not is_cached(spec)


def test_without_the_file_in_the_folder_the_download_is_tried(empty_torch_home, monkeypatch, tmp_path):
    monkeypatch.setenv("SEGGALLERY_CHECKPOINT_DIR", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="no network in this test"):
        backends.fetch(get_spec("enet_camvid"))


def test_a_damaged_cached_file_is_replaced_from_the_folder(empty_torch_home, monkeypatch):
    folder = require_shared("weights/enet-camvid")
    monkeypatch.setenv("SEGGALLERY_CHECKPOINT_DIR", str(folder))
    spec = get_spec("enet_camvid")
    path = native.checkpoint_path(spec)
    path.parent.mkdir(parents=True)
    shutil.copyfile(folder / "ENet_default", path)
    path.write_bytes(path.read_bytes()[:1000])  # truncated after it was cached
    segmenter = native.build(spec, torch.device("cpu"))
    assert segmenter is not None and path.read_bytes() == (folder / "ENet_default").read_bytes()


def test_the_hash_prefix_comes_from_the_published_name():
    assert torchhub.name_hash_prefix("fcn_resnet50_coco-1167a1af.pth") == "1167a1af"
    assert torchhub.name_hash_prefix("ENet_default") is None
