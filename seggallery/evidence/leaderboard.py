"""Measured against published: each model of an evaluation beside the mIoU its catalog entry publishes.

`catalog_models(labels)` picks the catalog's semantic models that can be scored against masks of that label set:
those trained on it, then those that share classes with it through the coarse taxonomy (their numbers are in
coarse classes, so they are marked and never compare with the published ones). `leaderboard_rows` makes the
table from results.json's content; `write_leaderboard` writes it as leaderboard.csv and leaderboard.md.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..catalog import ModelSpec, catalog, get_spec
from .taxonomy import shared_space

COLUMNS = ["model", "label set", "compared in", "images", "measured mIoU (%)", "published mIoU (%)", "published on",
           "dataset split", "preprocessing", "machine"]
LEADERBOARD_FILES = ("leaderboard.csv", "leaderboard.md", "leaderboard.png")


def catalog_models(labels_id: str) -> list[str]:
    """The semantic catalog models trained on `labels_id`, then those that map onto it through coarse classes."""
    semantic = [spec for spec in catalog().values() if spec.task == "semantic"]
    native = [spec.id for spec in semantic if spec.labels == labels_id]
    coarse = [spec.id for spec in semantic if spec.labels != labels_id and shared_space([labels_id, spec.labels])]
    return native + coarse


def published_miou(spec: ModelSpec) -> tuple[float, str] | None:
    """The first mIoU the catalog entry publishes (in %) and the dataset it was measured on."""
    for metric in spec.metrics:
        if "miou" in metric:
            return float(metric["miou"]), metric["dataset"]
    return None


def describe_preprocessing(spec: ModelSpec) -> str:
    """The entry's published preprocessing in one line ("resize [360, 480]; scale 1/255; ...")."""
    return "; ".join(f"{key.replace('_', ' ')} {value}" for key, value in spec.preprocess.items())


def leaderboard_rows(summary: dict, split: str) -> list[dict]:
    """One row per model of results.json's content (columns COLUMNS); `split` names the data scored."""
    rows = []
    for model_id, entry in summary["models"].items():
        spec = get_spec(model_id)
        published = published_miou(spec)
        if not entry.get("comparable", False):
            compared_in = f"not comparable ({entry.get('reason', '')})"
        elif entry.get("native"):
            compared_in = f"{entry['space']} (its own classes)"
        elif "space" in entry:
            compared_in = f"{entry['space']} (coarse: does not compare with the published number)"
        else:
            compared_in = ""
        measured = entry.get("mean_iou")
        rows.append({
            "model": spec.name, "label set": spec.labels, "compared in": compared_in or f"failed: {entry.get('error', '')}",
            "images": entry.get("images", 0),
            "measured mIoU (%)": round(100 * measured, 2) if measured is not None else None,
            "published mIoU (%)": published[0] if published else None,
            "published on": published[1] if published else "",
            "dataset split": split, "preprocessing": describe_preprocessing(spec),
            "machine": ", ".join(entry.get("machines", [])),
        })
    return rows


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def write_leaderboard(out_dir: Path, rows: list[dict]) -> list[Path]:
    """leaderboard.csv and leaderboard.md in out_dir; returns their paths."""
    csv_path, md_path = out_dir / LEADERBOARD_FILES[0], out_dir / LEADERBOARD_FILES[1]
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]
