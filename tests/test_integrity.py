"""Damaged cached weights: detected by hash, removed, fetched once more, or reported while the other models run."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes.common import put_in_hub_cache
from huggingface_hub import constants

from seggallery.backends import hub, integrity, weights
from seggallery.backends.base import HubFile, WeightFile
from seggallery.catalog import catalog, get_spec
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Failure, Prediction, WeightsUnavailable

SMALL_PHOTO = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
HUB_SPEC = next(spec for spec in catalog().values() if spec.backend == "smp")


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache with fake LR-ASPP and DeepLabV3-MobileNet checkpoints (and originals to restore)."""
    from fakes import torchvision as fake_torchvision

    from seggallery.backends.torchvision import checkpoint_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    originals = {}
    for model_id in ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"):
        fake_torchvision.write(get_spec(model_id))
        path = checkpoint_path(get_spec(model_id))
        originals[model_id] = tmp_path / f"{model_id}.good"
        shutil.copyfile(path, originals[model_id])
    return originals


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_truncated_torch_hub_checkpoint_is_removed_and_reported_while_others_run(torch_home, monkeypatch):
    from seggallery.backends.torchvision import checkpoint_path

    attempts = []

    def offline(url, dst, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    damaged = checkpoint_path(get_spec("deeplabv3_mobilenet_v3_large"))
    _truncate(damaged)
    failed, ok = Engine(device=torch.device("cpu")).run_many(SMALL_PHOTO, ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"])
    assert isinstance(failed, Failure)
    assert f"the cached {damaged.name} was damaged" in failed.reason and "fetching it again failed" in failed.reason
    assert failed.fix.startswith("python -m seggallery fetch deeplabv3_mobilenet_v3_large")
    assert not damaged.exists() and len(attempts) == 1, "removed, and fetched again exactly once"
    assert isinstance(ok, Prediction)


def test_truncated_torch_hub_checkpoint_is_fetched_again(torch_home, monkeypatch):
    from seggallery.backends.torchvision import checkpoint_path

    def download(url, dst, *args, **kwargs):  # the network, serving the file as published
        shutil.copyfile(torch_home["deeplabv3_mobilenet_v3_large"], dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    _truncate(checkpoint_path(get_spec("deeplabv3_mobilenet_v3_large")))
    result = Engine(device=torch.device("cpu")).run(SMALL_PHOTO, "deeplabv3_mobilenet_v3_large")
    assert isinstance(result, Prediction), getattr(result, "reason", "")


def test_a_load_error_with_an_intact_file_is_not_mistaken_for_damage(torch_home, monkeypatch):
    """The file matches its hash: the error is real, reported as it is, and the file stays."""
    from seggallery.backends import torchvision as tv_backend

    path = tv_backend.checkpoint_path(get_spec("lraspp_mobilenet_v3_large"))
    monkeypatch.setattr(integrity, "torch_hub_file_intact", lambda *args: True)
    monkeypatch.setattr(torch, "load", _raise_runtime_error)
    result = Engine(device=torch.device("cpu")).run(SMALL_PHOTO, "lraspp_mobilenet_v3_large")
    assert isinstance(result, Failure) and "a real bug" in result.reason
    assert path.exists()


def _raise_runtime_error(*args, **kwargs):
    raise RuntimeError("a real bug")


def test_torch_hub_hash_prefix_check(tmp_path):
    content = b"weights" * 100
    good = tmp_path / f"model-{hashlib.sha256(content).hexdigest()[:8]}.pth"
    good.write_bytes(content)
    assert integrity.torch_hub_file_intact(good)
    good.write_bytes(content[:-1])
    assert not integrity.torch_hub_file_intact(good)
    unnamed = tmp_path / "model.pth"
    unnamed.write_bytes(b"x")
    assert integrity.torch_hub_file_intact(unnamed), "no hash in the name: nothing to check against"


def _hub_files(tmp_path) -> dict[str, Path]:
    """Stand-in files of HUB_SPEC's repo; the tests using them take `empty_hub_cache`, so that the session's
    fake checkpoint of that model (other tests load it) is not overwritten."""
    files = {"config.json": tmp_path / "config.json", "model.safetensors": tmp_path / "model.safetensors"}
    files["config.json"].write_text('{"classes": 150}')
    files["model.safetensors"].write_bytes(np.random.default_rng(0).bytes(4096))
    return files


def _snapshot(repo: str, revision: str) -> Path:
    """Both files through the generic fetch (each checked against its hash) -> the snapshot folder."""
    names = ["config.json", "model.safetensors"]
    paths = weights.fetch([WeightFile((HubFile(repo, revision, name),)) for name in names])
    assert {path.parent for path in paths} == {paths[0].parent}
    return weights.snapshot_folder(paths[0], names[0])


def test_damaged_hub_blob_is_removed_and_reported_when_offline(tmp_path, empty_hub_cache):
    repo, revision = HUB_SPEC.source["repo"], HUB_SPEC.source["revision"]
    snapshot = put_in_hub_cache(repo, revision, _hub_files(tmp_path))
    assert _snapshot(repo, revision) == snapshot
    blob = (snapshot / "model.safetensors").resolve()
    _truncate(blob)
    with pytest.raises(WeightsUnavailable, match=f"the cached {repo}/model.safetensors was damaged.*fetching it again failed"):
        _snapshot(repo, revision)
    assert not blob.exists() and not (snapshot / "model.safetensors").is_symlink()
    assert (snapshot / "config.json").exists(), "the intact file stays"


def test_damaged_hub_blob_is_fetched_again(tmp_path, monkeypatch, empty_hub_cache):
    repo, revision = HUB_SPEC.source["repo"], HUB_SPEC.source["revision"]
    files = _hub_files(tmp_path)
    snapshot = put_in_hub_cache(repo, revision, files)
    real_download = hub.hf_hub_download
    forced = []

    def download(repo_id, filename, **kwargs):  # the network, serving the published file when it is not cached
        if not (snapshot / filename).exists():
            forced.append(filename)
            put_in_hub_cache(repo_id, revision, {filename: files[filename]})
        return real_download(repo_id, filename, **kwargs)

    monkeypatch.setattr(hub, "hf_hub_download", download)
    (snapshot / "model.safetensors").resolve().write_bytes(b"overwritten")
    assert _snapshot(repo, revision) == snapshot
    assert forced == ["model.safetensors"]
    assert (snapshot / "model.safetensors").read_bytes() == files["model.safetensors"].read_bytes()


def test_hub_blob_names_are_sha256_or_git_blob_ids(tmp_path):
    content = b'{"architectures": ["SegformerForSemanticSegmentation"]}'
    for digest in (hashlib.sha256(content).hexdigest(), hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()):
        blob = tmp_path / digest
        blob.write_bytes(content)
        assert integrity.hub_file_intact(blob)
        blob.write_bytes(content + b" ")
        assert not integrity.hub_file_intact(blob)
    other = tmp_path / "config.json"
    other.write_bytes(content)
    assert integrity.hub_file_intact(other), "outside the cache layout: nothing to check against"
    assert Path(constants.HF_HUB_CACHE).is_relative_to(Path(constants.HF_HOME))
