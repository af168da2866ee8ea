"""Nothing a user sends chooses code or files: catalog ids only, weights as data, local files in one folder."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import seggallery.backends as backends
from seggallery.backends import check_hub_file, load_segmenter
from seggallery.catalog import catalog, get_spec
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Failure, Prediction
from seggallery.safety import ModelNotAllowed, allowed_spec, local_checkpoint

PACKAGE = Path(__file__).resolve().parents[1] / "seggallery"
SMALL_PHOTO = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)


class _Payload:
    """A pickle that creates a file when unpickled with full pickle: what a hostile checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("model_id", ["../../etc/passwd", "fcn_resnet50; rm -rf /", "FCN_RESNET50", "", "x" * 500,
                                      "torchvision.models.segmentation.fcn_resnet50", 3, None])
def test_engine_refuses_anything_but_catalog_ids(model_id, monkeypatch):
    loaded = []
    engine = Engine(device=torch.device("cpu"), loader=lambda *args: loaded.append(args))
    with pytest.raises(ModelNotAllowed, match="catalog"):
        engine.run(SMALL_PHOTO, model_id)
    with pytest.raises(ModelNotAllowed):
        engine.run_many(SMALL_PHOTO, ["lraspp_mobilenet_v3_large", model_id])
    assert loaded == [], "nothing is loaded when one id of the request is not allowed"


def test_backends_build_only_the_catalogs_own_entry():
    spec = get_spec("fcn_resnet50")
    edited = dataclasses.replace(spec, source={**spec.source, "builder": "deeplabv3_resnet101"})
    with pytest.raises(ModelNotAllowed, match="not a catalog entry"):
        load_segmenter(edited, torch.device("cpu"))
    renamed = dataclasses.replace(spec, id="my_model")
    with pytest.raises(ModelNotAllowed):
        backends.fetch(renamed)
    assert allowed_spec("fcn_resnet50") is spec


def test_hub_files_only_from_catalog_repos_by_plain_names():
    hub_spec = next(s for s in catalog().values() if "repo" in s.source)
    repo = hub_spec.source["repo"]
    check_hub_file(repo, "model.safetensors")
    check_hub_file(repo, "subfolder/config.json")
    for bad_repo in ["evil/segformer", "../x", "a/b/c", "/etc", "owner/..", repo + "/..", ""]:
        with pytest.raises(ModelNotAllowed):
            check_hub_file(bad_repo, "model.safetensors")
    for bad_file in ["../config.json", "/etc/passwd", "a/../../b", "", "..", "x\n.json", "C:\\x"]:
        with pytest.raises(ModelNotAllowed):
            check_hub_file(repo, bad_file)


def test_a_backend_that_cannot_import_only_takes_its_own_repos_off_the_allowlist(monkeypatch):
    """Where smp is not installed (a GPU machine without its wheel) the other Hub models still load;
    the smp-hub repos are not allowed, as nothing could load them."""
    real_backend = backends.backend

    def without_smp(spec):
        if spec.backend == "smp":
            raise ModuleNotFoundError("No module named 'segmentation_models_pytorch'")
        return real_backend(spec)

    monkeypatch.setattr(backends, "backend", without_smp)
    backends.catalog_hub_files.cache_clear()
    try:
        check_hub_file(get_spec("segformer_b0_ade").source["repo"], "config.json")
        with pytest.raises(ModelNotAllowed):
            check_hub_file(get_spec("smp_segformer_b0_ade").source["repo"], "config.json")
    finally:
        backends.catalog_hub_files.cache_clear()


def test_torch_load_never_unpickles_code_even_when_asked_to(tmp_path):
    """seggallery forces weights-only loading process-wide; torch.hub's loader passes weights_only=False."""
    assert os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD") == "1"
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match="(?i)weights.only"):
        torch.load(tmp_path / "evil.pth", weights_only=False)
    with pytest.raises(Exception, match="(?i)weights.only"):
        torch.hub.load_state_dict_from_url("https://example.invalid/evil.pth", model_dir=str(tmp_path), file_name="evil.pth")
    assert not marker.exists()
    torch.save({"weight": torch.ones(2)}, tmp_path / "good.pth")
    assert torch.equal(torch.load(tmp_path / "good.pth")["weight"], torch.ones(2))


def test_a_hostile_cached_checkpoint_is_refused_and_the_other_models_run(tmp_path, monkeypatch):
    from fakes import torchvision as fake_torchvision

    from seggallery.backends.torchvision import checkpoint_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    fake_torchvision.write(get_spec("lraspp_mobilenet_v3_large"))
    hostile = checkpoint_path(get_spec("fcn_resnet50"))
    hostile.parent.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "pwned"
    torch.save({"backbone.conv1.weight": torch.zeros(1), "payload": _Payload(marker)}, hostile)
    failed, ok = Engine(device=torch.device("cpu")).run_many(SMALL_PHOTO, ["fcn_resnet50", "lraspp_mobilenet_v3_large"])
    assert isinstance(failed, Failure) and "damaged" in failed.reason and "has been removed" in failed.reason
    assert isinstance(ok, Prediction)
    assert not marker.exists() and not hostile.exists()


def _offline(url, *args, **kwargs):
    import urllib.error

    raise urllib.error.URLError("no network in this test")


def test_source_never_loads_code():
    """A scan of the package: every torch.load passes weights_only=True; no unpickling, remote code or hub code."""
    forbidden = {
        r"trust_remote_code\s*=\s*True": "remote code",
        r"weights_only\s*=\s*False": "full unpickling",
        r"\bpickle\.loads?\(|\bdill\b|\bjoblib\.load\(": "pickle",
        r"torch\.hub\.load\(": "torch.hub.load runs a repo's hubconf.py",
        r"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD\s*[\"']?\s*\]?\s*=": "turning weights-only loading off",
        r"(?<![.\w])(eval|exec)\(": "eval/exec of text",
    }
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for pattern, why in forbidden.items():
            for match in re.finditer(pattern, text):
                problems.append(f"{path.relative_to(PACKAGE)}: {match.group(0)!r} ({why})")
        for call in re.finditer(r"torch\.load\(([^()]*(\([^()]*\))?)*\)", text):
            if "weights_only=True" not in call.group(0):
                problems.append(f"{path.relative_to(PACKAGE)}: {call.group(0)!r} lacks weights_only=True")
    assert problems == []


def test_local_checkpoints_only_inside_the_configured_folder(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    (root / "enet").mkdir(parents=True)
    (root / "enet" / "camvid.pth").write_bytes(b"x")
    (tmp_path / "secret.pth").write_bytes(b"x")
    os.symlink(tmp_path / "secret.pth", root / "escape.pth")
    monkeypatch.delenv("SEGGALLERY_CHECKPOINT_DIR", raising=False)
    with pytest.raises(ModelNotAllowed, match="local checkpoints are off"):
        local_checkpoint("enet/camvid.pth")
    monkeypatch.setenv("SEGGALLERY_CHECKPOINT_DIR", str(root))
    assert local_checkpoint("enet/camvid.pth") == (root / "enet" / "camvid.pth").resolve()
    for name, message in [("../secret.pth", "without '..'"), (str(tmp_path / "secret.pth"), "without '..'"),
                          ("escape.pth", "leads outside"), ("enet/../../secret.pth", "without '..'"),
                          ("enet", "no checkpoint file"), ("missing.pth", "no checkpoint file"), ("", "without")]:
        with pytest.raises(ModelNotAllowed, match=message):
            local_checkpoint(name)
