"""What the eval tests share: a CamVid subset in folders of its own, the command line, and comparing two runs'
outputs without their timings (which differ from run to run)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import require_shared

from seggallery.runtime.engine import Engine

TIMING_FIELDS = {"mean_timings_ms", "mean_total_ms", "total_ms", "timings_ms", "cold"}
RESULT_CSVS = ("results.csv", "per_class_iou.csv", "per_image.csv")


def link_camvid_subset(root: Path, images: int) -> Path:
    """The first `images` CamVid test images and masks, linked (not copied) into root/images and root/masks,
    plus an image without a mask (reported, not evaluated)."""
    camvid = require_shared("data/camvid")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for name in sorted(p.name for p in (camvid / "test").iterdir())[:images]:
        (root / "images" / name).symlink_to(camvid / "test" / name)
        (root / "masks" / name).symlink_to(camvid / "testannot" / name)
    (root / "images" / "no-mask.png").symlink_to(camvid / "test" / name)
    return root


def eval_args(root: Path, out: Path, models: str, *extra: str) -> list[str]:
    return ["eval", "--images", str(root / "images"), "--masks", str(root / "masks"), "--models", models,
            "--labels", "camvid11", "--out", str(out), *extra]


def scores_only(results: dict) -> dict:
    """results.json without the timings."""
    return {model_id: {k: v for k, v in entry.items() if k not in TIMING_FIELDS}
            for model_id, entry in results["models"].items()}


def without_timings(out: Path) -> dict:
    """Everything a run wrote (results.json, the CSVs, the progress records by pair) less the timing fields."""
    results = json.loads((out / "results.json").read_text())
    outputs = {"results.json": {**results, "models": scores_only(results)}}
    for name in RESULT_CSVS:
        outputs[name] = [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in read_csv(out / name)]
    outputs["progress"] = {(r["image"], r["model"]): {k: v for k, v in r.items() if k not in TIMING_FIELDS}
                           for r in progress_records(out)}
    return outputs


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def progress_records(out: Path) -> list[dict]:
    """Every line of progress.jsonl, repeats included."""
    return [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]


class CountingRuns:
    """Wraps Engine.run in this process: counts calls and raises KeyboardInterrupt (like Ctrl+C) on call
    `interrupt_at`."""

    def __init__(self, monkeypatch, interrupt_at: int | None = None):
        self.calls: list[str] = []
        original = Engine.run

        def run(engine, image, model_id, crf=None):
            self.calls.append(model_id)
            if interrupt_at is not None and len(self.calls) == interrupt_at:
                raise KeyboardInterrupt
            return original(engine, image, model_id, crf)

        monkeypatch.setattr(Engine, "run", run)
