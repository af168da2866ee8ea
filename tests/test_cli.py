"""`python -m seggallery ...` as a user runs it, in a subprocess with the test caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from conftest import EXAMPLES, REPO
from PIL import Image

MODELS = ["fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large"]


def seggallery(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seggallery", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)


def test_compare_writes_overlays_masks_and_report(tmp_path, fake_weights):
    for model_id in MODELS:
        fake_weights(model_id)
    photo = EXAMPLES / "animal-cat.jpg"
    done = seggallery("compare", str(photo), "--models", ",".join(MODELS), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    width, height = Image.open(photo).size
    assert report["image"]["original_size"] == [width, height]
    for entry, model_id in zip(report["models"], MODELS):
        assert entry["id"] == model_id and entry["label_set"] == "voc21"
        assert entry["device"] == "cpu" and entry["precision"] == "fp32" and entry["cold"] is True
        assert entry["timings_ms"]["forward"] > 0 and entry["timings_ms"]["load"] > 0
        mask = np.asarray(Image.open(out / f"{model_id}_mask.png"))
        assert mask.shape == (height, width)
        ids, counts = np.unique(mask, return_counts=True)
        assert {c["id"]: c["pixels"] for c in entry["classes"]} == dict(zip(ids.tolist(), counts.tolist()))
        assert Image.open(out / f"{model_id}_overlay.png").size[0] == width


def test_compare_reports_a_failing_model_and_still_writes_the_others(tmp_path, fake_weights):
    from seggallery.backends.torchvision import checkpoint_path
    from seggallery.catalog import get_spec

    fake_weights("lraspp_mobilenet_v3_large")
    source = checkpoint_path(get_spec("lraspp_mobilenet_v3_large"))
    torch_home = tmp_path / "torch"  # a cache that holds lraspp only
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    os.link(source, torch_home / "hub" / "checkpoints" / source.name)
    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    done = seggallery("compare", str(EXAMPLES / "animal-cat.jpg"), "--models", "fcn_resnet101,lraspp_mobilenet_v3_large",
                      "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 1
    assert "fix: python -m seggallery fetch fcn_resnet101" in done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "not in the local cache" in report["models"][0]["error"]
    assert (tmp_path / "out" / "lraspp_mobilenet_v3_large_mask.png").exists()


def test_models_lists_cache_status_as_json(fake_weights):
    fake_weights("lraspp_mobilenet_v3_large")
    done = seggallery("models", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert rows["lraspp_mobilenet_v3_large"]["cached"] is True
    assert {"family", "backend", "labels", "license", "metrics"} <= rows["fcn_resnet50"].keys()


def test_unknown_model_ids_are_refused_with_a_hint(tmp_path):
    done = seggallery("compare", str(EXAMPLES / "animal-cat.jpg"), "--models", "no_such_model", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown model id(s): no_such_model" in done.stderr


def test_unreadable_image_is_reported(tmp_path, fake_weights):
    fake_weights("lraspp_mobilenet_v3_large")
    bogus = tmp_path / "x.jpg"
    bogus.write_text("not a jpeg")
    done = seggallery("compare", str(bogus), "--models", "lraspp_mobilenet_v3_large", "--out", str(tmp_path / "o"))
    assert done.returncode == 1 and "not an image" in done.stderr


def test_compare_crf_refines_and_times_it_as_its_own_step(tmp_path, fake_weights):
    """--crf: the model's probabilities go through the dense CRF; report.json has its "crf" step and a note."""
    fake_weights("lraspp_mobilenet_v3_large")
    small = tmp_path / "cat.png"
    Image.open(EXAMPLES / "animal-cat.jpg").resize((160, 120)).save(small)
    done = seggallery("compare", str(small), "--models", "lraspp_mobilenet_v3_large", "--out", str(tmp_path / "out"), "--crf")
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads((tmp_path / "out" / "report.json").read_text())["models"]
    steps = list(entry["timings_ms"])
    assert steps[-2:] == ["crf", "total"] and entry["timings_ms"]["crf"] > 0
    assert any("refined by the dense CRF" in note for note in entry["notes"])
    assert ", CRF " in done.stdout
