"""`python -m seggallery eval`: scores over a folder, JSON + CSV, and resuming after an interruption."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import require_shared
from real_weights import install_enet

from seggallery.cli import main
from seggallery.runtime.engine import Engine

IMAGES = 5
FAKE_VOC_MODEL = "lraspp_mobilenet_v3_large"  # random weights: tests the cross-label-set path, not accuracy

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def camvid_subset(tmp_path_factory):
    """A few CamVid test images and masks, linked (not copied) into folders of their own."""
    camvid = require_shared("data/camvid")
    root = tmp_path_factory.mktemp("camvid-subset")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for name in sorted(p.name for p in (camvid / "test").iterdir())[:IMAGES]:
        (root / "images" / name).symlink_to(camvid / "test" / name)
        (root / "masks" / name).symlink_to(camvid / "testannot" / name)
    (root / "images" / "no-mask.png").symlink_to(camvid / "test" / name)  # reported, not evaluated
    return root


@pytest.fixture(scope="module")
def models(fake_weights):
    install_enet()
    fake_weights(FAKE_VOC_MODEL)
    return f"enet_camvid,{FAKE_VOC_MODEL}"


def eval_args(root, out, models):
    return ["eval", "--images", str(root / "images"), "--masks", str(root / "masks"), "--models", models,
            "--labels", "camvid11", "--out", str(out)]


class CountingRuns:
    """Wraps Engine.run: counts calls and raises KeyboardInterrupt (like Ctrl+C) on call `interrupt_at`."""

    def __init__(self, monkeypatch, interrupt_at: int | None = None):
        self.calls: list[str] = []
        original = Engine.run

        def run(engine, image, model_id):
            self.calls.append(model_id)
            if interrupt_at is not None and len(self.calls) == interrupt_at:
                raise KeyboardInterrupt
            return original(engine, image, model_id)

        monkeypatch.setattr(Engine, "run", run)


def scores_only(results: dict) -> dict:
    """results.json without the timings, which differ from run to run."""
    return {model_id: {k: v for k, v in entry.items() if k != "mean_timings_ms"} for model_id, entry in results["models"].items()}


@pytest.fixture(scope="module")
def uninterrupted(camvid_subset, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-clean")
    assert main(eval_args(camvid_subset, out, models)) == 0
    return out


def test_writes_json_and_csv(uninterrupted):
    results = json.loads((uninterrupted / "results.json").read_text())
    assert results["images"] == IMAGES and results["images_without_mask"] == ["no-mask.png"]
    enet, voc = results["models"]["enet_camvid"], results["models"][FAKE_VOC_MODEL]
    assert enet["native"] and enet["images"] == IMAGES and 0.4 < enet["mean_iou"] < 0.8
    assert not voc["native"] and voc["space"].startswith("coarse classes shared by camvid11, voc21")
    assert set(voc["per_class_iou"]) <= {"other", "person", "vehicle", "vegetation"}
    rows = list(csv.DictReader(open(uninterrupted / "results.csv")))
    assert [r["model"] for r in rows] == ["enet_camvid", FAKE_VOC_MODEL]
    assert float(rows[0]["mean_iou"]) == pytest.approx(enet["mean_iou"])
    per_class = list(csv.DictReader(open(uninterrupted / "per_class_iou.csv")))
    assert {r["class"] for r in per_class if r["enet_camvid"]} >= {"Sky", "Road", "Building"}
    per_image = list(csv.DictReader(open(uninterrupted / "per_image.csv")))
    assert len(per_image) == 2 * IMAGES


def test_resume_after_interruption_recomputes_nothing(camvid_subset, models, uninterrupted, tmp_path, monkeypatch):
    finished_images = 2
    CountingRuns(monkeypatch, interrupt_at=2 * finished_images + 1)  # Ctrl+C during image 3
    assert main(eval_args(camvid_subset, tmp_path, models)) == 130
    progress = (tmp_path / "progress.jsonl").read_text().splitlines()
    assert len(progress) == 2 * finished_images
    assert not (tmp_path / "results.json").exists()

    resumed = CountingRuns(monkeypatch)
    assert main(eval_args(camvid_subset, tmp_path, models)) == 0
    assert len(resumed.calls) == 2 * (IMAGES - finished_images)  # only what was not finished
    assert len((tmp_path / "progress.jsonl").read_text().splitlines()) == 2 * IMAGES
    clean = json.loads((uninterrupted / "results.json").read_text())
    again = json.loads((tmp_path / "results.json").read_text())
    assert scores_only(again) == scores_only(clean)

    rerun = CountingRuns(monkeypatch)  # a finished evaluation reruns nothing and gives the same files
    assert main(eval_args(camvid_subset, tmp_path, models)) == 0
    assert rerun.calls == []
    assert scores_only(json.loads((tmp_path / "results.json").read_text())) == scores_only(clean)


def test_a_line_cut_short_is_redone(camvid_subset, models, uninterrupted, tmp_path, monkeypatch):
    lines = (uninterrupted / "progress.jsonl").read_text().splitlines()
    (tmp_path / "progress.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    (tmp_path / "run.json").write_text((uninterrupted / "run.json").read_text())
    counting = CountingRuns(monkeypatch)
    assert main(eval_args(camvid_subset, tmp_path, models)) == 0
    assert len(counting.calls) == 2 * IMAGES - 3
    clean = json.loads((uninterrupted / "results.json").read_text())
    assert scores_only(json.loads((tmp_path / "results.json").read_text())) == scores_only(clean)


def test_clear_errors(camvid_subset, models, uninterrupted, tmp_path, capsys):
    assert main(["eval", "--images", str(camvid_subset / "images"), "--masks", str(camvid_subset / "masks"),
                 "--models", models, "--out", str(tmp_path)]) == 2
    assert "several label sets" in capsys.readouterr().err
    assert main(["eval", "--images", str(camvid_subset / "images"), "--masks", str(camvid_subset / "masks"),
                 "--models", FAKE_VOC_MODEL, "--out", str(uninterrupted)]) == 2  # voc21 masks into a camvid11 run
    assert "use another --out folder" in capsys.readouterr().err
    assert main(["eval", "--images", str(tmp_path / "nope"), "--masks", str(camvid_subset / "masks"),
                 "--models", "enet_camvid", "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_folder_evaluated_without_the_crf_is_not_resumed_with_it(tmp_path):
    """--crf changes every mask: results with and without it never mix in one --out folder."""
    from seggallery.evidence.evaluation import EvaluationError, _start_run

    _start_run(tmp_path, {"labels": "camvid11", "source": "here", "crf": False})
    _start_run(tmp_path, {"labels": "camvid11", "source": "here", "crf": False})  # a resume: fine
    with pytest.raises(EvaluationError, match="without the CRF"):
        _start_run(tmp_path, {"labels": "camvid11", "source": "here", "crf": True})
