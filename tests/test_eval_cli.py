"""`python -m seggallery eval`: scores over a folder, JSON + CSV, and resuming after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EVAL_FAKE_VOC_MODEL, EVAL_IMAGES
from eval_runs import (
    CountingRuns,
    eval_args,
    progress_records,
    read_csv,
    scores_only,
    without_timings,
)

from seggallery.cli import main
from seggallery.evidence.evaluation import EvaluationRun, PairFailure, Pairing

IMAGES = EVAL_IMAGES
FAKE_VOC_MODEL = EVAL_FAKE_VOC_MODEL

pytestmark = pytest.mark.usefixtures("one_thread")


def test_writes_json_and_csv(eval_one_machine):
    results = json.loads((eval_one_machine / "results.json").read_text())
    assert results["images"] == IMAGES and results["images_without_mask"] == ["no-mask.png"]
    enet, voc = results["models"]["enet_camvid"], results["models"][FAKE_VOC_MODEL]
    assert enet["native"] and enet["images"] == IMAGES and 0.4 < enet["mean_iou"] < 0.8
    assert not voc["native"] and voc["space"].startswith("coarse classes shared by camvid11, voc21")
    assert set(voc["per_class_iou"]) <= {"other", "person", "vehicle", "vegetation"}
    rows = read_csv(eval_one_machine / "results.csv")
    assert [r["model"] for r in rows] == ["enet_camvid", FAKE_VOC_MODEL]
    assert float(rows[0]["mean_iou"]) == pytest.approx(enet["mean_iou"])
    per_class = read_csv(eval_one_machine / "per_class_iou.csv")
    assert {r["class"] for r in per_class if r["enet_camvid"]} >= {"Sky", "Road", "Building"}
    per_image = read_csv(eval_one_machine / "per_image.csv")
    assert len(per_image) == 2 * IMAGES


def test_writes_measured_against_published(eval_one_machine):
    enet_row, voc_row = read_csv(eval_one_machine / "leaderboard.csv")
    results = json.loads((eval_one_machine / "results.json").read_text())
    assert enet_row["model"] == "ENet (CamVid)" and enet_row["published mIoU (%)"] == "53.31"
    assert float(enet_row["measured mIoU (%)"]) == round(100 * results["models"]["enet_camvid"]["mean_iou"], 2)
    assert "its own classes" in enet_row["compared in"] and enet_row["dataset split"].endswith("/images")
    assert "resize [360, 480]" in enet_row["preprocessing"] and "logical CPUs" in enet_row["machine"]
    assert "coarse" in voc_row["compared in"] and voc_row["label set"] == "voc21"
    assert (eval_one_machine / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| ENet (CamVid) | camvid11 |" in (eval_one_machine / "leaderboard.md").read_text()


def test_catalog_runs_every_model_that_can_be_scored(eval_camvid, eval_models, tmp_path, capsys):
    from seggallery.catalog import get_spec
    from seggallery.evidence.leaderboard import catalog_models

    picked = catalog_models("camvid11")
    assert picked[0] == "enet_camvid" and FAKE_VOC_MODEL in picked  # its own label set first, then coarse ones
    assert all(get_spec(m).task == "semantic" for m in picked) and "maskrcnn_resnet50_fpn" not in picked
    args = eval_args(eval_camvid, tmp_path, eval_models)
    at = args.index("--models")
    own = [*args[:at], *args[at + 2:], "--catalog", "own", "--limit", "2", "--split", "CamVid test"]
    assert main(own) == 0
    assert list(json.loads((tmp_path / "results.json").read_text())["models"]) == ["enet_camvid"]
    assert [r["dataset split"] for r in read_csv(tmp_path / "leaderboard.csv")] == ["CamVid test"]
    assert main([*own, "--models", "enet_camvid"]) == 2
    assert "give one of them" in capsys.readouterr().err
    without_labels = [*own[: own.index("--labels")], *own[own.index("--labels") + 2:]]
    assert main(without_labels) == 2
    assert "--catalog needs --labels" in capsys.readouterr().err
    assert main(args[:at] + args[at + 2:]) == 2
    assert "--models IDS, or --catalog" in capsys.readouterr().err


def test_resume_after_interruption_recomputes_nothing(eval_camvid, eval_models, eval_one_machine, tmp_path, monkeypatch):
    finished_images = 2
    CountingRuns(monkeypatch, interrupt_at=2 * finished_images + 1)  # Ctrl+C during image 3
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 130
    progress = (tmp_path / "progress.jsonl").read_text().splitlines()
    assert len(progress) == 2 * finished_images
    assert not (tmp_path / "results.json").exists()

    resumed = CountingRuns(monkeypatch)
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 0
    assert len(resumed.calls) == 2 * (IMAGES - finished_images)  # only what was not finished
    assert len((tmp_path / "progress.jsonl").read_text().splitlines()) == 2 * IMAGES
    clean = json.loads((eval_one_machine / "results.json").read_text())
    again = json.loads((tmp_path / "results.json").read_text())
    assert scores_only(again) == scores_only(clean)

    rerun = CountingRuns(monkeypatch)  # a finished evaluation reruns nothing and gives the same files
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 0
    assert rerun.calls == []
    assert scores_only(json.loads((tmp_path / "results.json").read_text())) == scores_only(clean)


def test_a_line_cut_short_is_redone(eval_camvid, eval_models, eval_one_machine, tmp_path, monkeypatch):
    lines = (eval_one_machine / "progress.jsonl").read_text().splitlines()
    (tmp_path / "progress.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    (tmp_path / "run.json").write_text((eval_one_machine / "run.json").read_text())
    counting = CountingRuns(monkeypatch)
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 0
    assert len(counting.calls) == 2 * IMAGES - 3
    clean = json.loads((eval_one_machine / "results.json").read_text())
    assert scores_only(json.loads((tmp_path / "results.json").read_text())) == scores_only(clean)


def test_clear_errors(eval_camvid, eval_models, eval_one_machine, tmp_path, capsys):
    assert main(["eval", "--images", str(eval_camvid / "images"), "--masks", str(eval_camvid / "masks"),
                 "--models", eval_models, "--out", str(tmp_path)]) == 2
    assert "several label sets" in capsys.readouterr().err
    assert main(["eval", "--images", str(eval_camvid / "images"), "--masks", str(eval_camvid / "masks"),
                 "--models", FAKE_VOC_MODEL, "--out", str(eval_one_machine)]) == 2  # voc21 masks into a camvid11 run
    assert "use another --out folder" in capsys.readouterr().err
    assert main(["eval", "--images", str(tmp_path / "nope"), "--masks", str(eval_camvid / "masks"),
                 "--models", "enet_camvid", "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_pair_written_twice_counts_once(eval_camvid, eval_models, eval_one_machine, tmp_path, monkeypatch):
    """A worker that died after its record was written has its pair done again: the first record counts,
    and resuming drops the repeat from progress.jsonl."""
    lines = (eval_one_machine / "progress.jsonl").read_text().splitlines()
    (tmp_path / "progress.jsonl").write_text("\n".join([*lines, lines[0], lines[5]]) + "\n")
    (tmp_path / "run.json").write_text((eval_one_machine / "run.json").read_text())
    counting = CountingRuns(monkeypatch)
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 0
    assert counting.calls == []
    assert len(progress_records(tmp_path)) == 2 * IMAGES
    assert without_timings(tmp_path) == without_timings(eval_one_machine)


def test_the_bookkeeping_takes_results_in_any_order(tmp_path):
    """What the Ray run relies on, results coming back in any order: each pair is written once, and a model that
    failed before any success stays out of the run even when a result of it arrives later (as on one machine)."""
    pairing = Pairing([(Path(f"{name}.png"), Path(f"{name}.png")) for name in ("a", "b")])
    run = EvaluationRun(pairing, ["enet_camvid", FAKE_VOC_MODEL], "camvid11", tmp_path)

    def record(image, model):
        return {"image": image, "model": model, "confusion": [], "outside": [], "cold": False, "timings_ms": {}}

    assert run.add(record("b.png", "enet_camvid")) and not run.add(record("b.png", "enet_camvid"))
    assert not run.add(PairFailure("a.png", FAKE_VOC_MODEL, "no weights"))
    assert run.failed_models == {FAKE_VOC_MODEL: "no weights"} and run.todo("a.png") == ["enet_camvid"]
    assert not run.add(record("b.png", FAKE_VOC_MODEL))  # finished after the failure: left out, as on one machine
    assert not run.add(PairFailure("a.png", "enet_camvid", "out of memory"))  # after a success: only this image
    assert run.skipped_images == {"a.png (enet_camvid)": "out of memory"} and "enet_camvid" not in run.failed_models
    assert [(r["image"], r["model"]) for r in progress_records(tmp_path)] == [("b.png", "enet_camvid")]


def test_a_folder_evaluated_without_the_crf_is_not_resumed_with_it(tmp_path):
    """--crf changes every mask: results with and without it never mix in one --out folder."""
    from seggallery.evidence.evaluation import EvaluationError, _start_run

    _start_run(tmp_path, {"labels": "camvid11", "source": "here", "crf": False})
    _start_run(tmp_path, {"labels": "camvid11", "source": "here", "crf": False})  # a resume: fine
    with pytest.raises(EvaluationError, match="without the CRF"):
        _start_run(tmp_path, {"labels": "camvid11", "source": "here", "crf": True})
