"""Dataset evaluation: models over a folder of images with ground-truth masks, resumable.

Each finished (image, model) pair is appended as one JSON line to <out>/progress.jsonl (its confusion
counts and timings) and flushed at once, so an interrupted run loses at most the pair in flight; a
rerun with the same --out skips every pair already there. The summary (results.json, results.csv,
per_class_iou.csv, per_image.csv) is rebuilt from progress.jsonl, so it is the same whether a run was
interrupted or not. Scores follow seggallery.evidence.metrics: confusion counts summed over the dataset first.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..catalog import LabelSet, get_spec, label_set
from ..images import ImageError, load_image
from ..runtime.crf import CrfParams
from ..runtime.engine import Engine
from ..runtime.results import Failure
from .groundtruth import ignore_id, load_mask
from .metrics import Scores
from .taxonomy import shared_space

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MASK_SUFFIXES = {".png", ".bmp", ".tif", ".tiff"}
PROGRESS_FILE = "progress.jsonl"
RUN_FILE = "run.json"


class EvaluationError(ValueError):
    """The evaluation cannot start; the message says why."""


class EvaluationStopped(Exception):
    """Raised by an on_progress callback to stop between images; finished pairs stay in progress.jsonl."""


@dataclass
class Pairing:
    pairs: list[tuple[Path, Path]]  # (image, mask), sorted by image name
    images_without_mask: list[str] = field(default_factory=list)
    masks_without_image: list[str] = field(default_factory=list)


def pair_files(images: list[Path], masks: list[Path]) -> Pairing:
    """Match images and masks by file stem; a mask stem may add a suffix such as _mask, _L or _gt."""
    images = sorted(p for p in images if p.suffix.lower() in IMAGE_SUFFIXES)
    by_stem = {p.stem: p for p in masks if p.suffix.lower() in MASK_SUFFIXES}
    pairs, lonely = [], []
    used: set[str] = set()
    for image in images:
        for stem in (image.stem, f"{image.stem}_mask", f"{image.stem}_L", f"{image.stem}_gt", f"{image.stem}_label"):
            if stem in by_stem:
                pairs.append((image, by_stem[stem]))
                used.add(stem)
                break
        else:
            lonely.append(image.name)
    return Pairing(pairs, lonely, sorted(by_stem[s].name for s in by_stem if s not in used))


def pair_folders(images_dir: Path, masks_dir: Path) -> Pairing:
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise EvaluationError(f"the {what} folder {folder} does not exist")
    return pair_files(list(images_dir.iterdir()), list(masks_dir.iterdir()))


def default_labels(model_ids: list[str]) -> str:
    """The masks' label set when not given: the models' one, when they all share it."""
    sets = sorted({get_spec(m).labels for m in model_ids})
    if len(sets) != 1:
        raise EvaluationError(f"the models use several label sets ({', '.join(sets)}): say which one the masks use (--labels)")
    return sets[0]


@dataclass
class ModelTotals:
    scores: Scores
    space: str
    native: bool
    images: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)  # summed over images, warm calls only
    warm_images: int = 0


def _sparse(matrix: np.ndarray) -> list[list[int]]:
    rows, cols = np.nonzero(matrix)
    return [[int(r), int(c), int(matrix[r, c])] for r, c in zip(rows, cols)]


def _dense(entries: list[list[int]], shape: tuple[int, ...]) -> np.ndarray:
    matrix = np.zeros(shape, dtype=np.int64)
    for *index, count in entries:
        matrix[tuple(index)] = count
    return matrix


def read_progress(out_dir: Path) -> list[dict]:
    """Finished pairs; a last line cut short by an interruption is dropped (that pair is redone)."""
    path = out_dir / PROGRESS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def _start_run(out_dir: Path, settings: dict) -> None:
    """Record the settings; refuse to mix results of other masks or another label set into one folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_path = out_dir / RUN_FILE
    if run_path.exists():
        previous = json.loads(run_path.read_text())
        if previous.get("labels") != settings["labels"]:
            raise EvaluationError(f"{out_dir} holds an evaluation of {previous.get('labels')} masks; "
                                  f"use another --out folder for {settings['labels']} masks")
        if previous.get("source") != settings["source"]:
            raise EvaluationError(f"{out_dir} holds an evaluation of other folders ({previous.get('source')}); "
                                  "use another --out folder")
        if previous.get("crf", False) != settings["crf"]:
            raise EvaluationError(f"{out_dir} holds an evaluation {'with' if previous.get('crf') else 'without'} the CRF; "
                                  "use another --out folder")
    run_path.write_text(json.dumps(settings, indent=2))
    # drop a trailing partial line so that appended records start on a line of their own
    records = read_progress(out_dir)
    path = out_dir / PROGRESS_FILE
    if path.exists():
        text = "".join(json.dumps(r) + "\n" for r in records)
        if path.read_text() != text:
            path.write_text(text)


def evaluate(
    pairing: Pairing,
    model_ids: list[str],
    labels_id: str,
    out_dir: Path,
    engine: Engine,
    on_progress: Callable[[int, int, str], None] | None = None,
    source: str = "",
    crf: CrfParams | None = None,
) -> dict:
    """Run the models on every pair not yet in <out_dir>/progress.jsonl, then write the summary.

    on_progress(done, total, message) is called after each image (done counts images finished
    in earlier runs too); it may raise EvaluationStopped. `source` names where the files come from
    (the CLI's folders); a rerun into the same folder must name the same, and the same `crf` (the dense CRF
refinement of every model's probabilities, or None). Returns results.json's content.
    A model that cannot run on its first image is left out (and tried again by a rerun); one that fails
    on a later image loses only that image, which a rerun tries again.
    """
    labels = label_set(labels_id)
    spaces = {}
    for model_id in model_ids:
        spaces[model_id] = shared_space([labels_id, get_spec(model_id).labels])
    _start_run(out_dir, {"labels": labels_id, "source": source, "crf": crf is not None})
    done = {(r["image"], r["model"]) for r in read_progress(out_dir)}
    failed_models: dict[str, str] = {}
    ran: set[str] = set()
    skipped_images: dict[str, str] = {}
    comparable = [m for m in model_ids if spaces[m] is not None]
    total = len(pairing.pairs)
    with open(out_dir / PROGRESS_FILE, "a") as progress:
        for index, (image_path, mask_path) in enumerate(pairing.pairs):
            todo = [m for m in comparable if (image_path.name, m) not in done and m not in failed_models]
            if todo:
                try:
                    image = load_image(image_path)
                    truth = load_mask(mask_path, labels, image.original_size, image.pixels.shape[:2])
                except ImageError as error:
                    skipped_images[image_path.name] = str(error)
                    todo = []
            for model_id in todo:
                result = engine.run(image.pixels, model_id, crf)
                if isinstance(result, Failure):  # not recorded: a rerun tries it again
                    if model_id in ran:
                        skipped_images[f"{image_path.name} ({model_id})"] = result.reason
                    else:
                        failed_models[model_id] = result.reason
                    continue
                ran.add(model_id)
                record = _record(image_path.name, model_id, truth.mask, result, spaces[model_id], labels)
                progress.write(json.dumps(record) + "\n")
                progress.flush()
                os.fsync(progress.fileno())
            if on_progress is not None:
                on_progress(index + 1, total, image_path.name)
    return write_summary(out_dir, pairing, model_ids, labels, spaces, failed_models, skipped_images)


def _record(image_name: str, model_id: str, truth: np.ndarray, result, space, labels: LabelSet) -> dict:
    predicted = space.project(result.mask, result.labels.id)
    truth_in_space = space.project(truth, labels.id)
    ignore = ignore_id(labels) if space.native else space.labels.ignore_index
    scores = Scores.from_masks(truth_in_space, predicted, space.labels.names, ignore)
    return {
        "image": image_name,
        "model": model_id,
        "space": space.labels.id,
        "classes": len(space.labels.names),
        "confusion": _sparse(scores.confusion),
        "outside": _sparse(scores.outside[None]),
        "pixel_accuracy": round(scores.pixel_accuracy, 6),
        "mean_iou": round(scores.mean_iou, 6),
        "timings_ms": {k: round(v, 3) for k, v in result.timings_ms.items()},
        "cold": result.cold,
        "device": result.device,
    }


def write_summary(out_dir: Path, pairing: Pairing, model_ids: list[str], labels: LabelSet, spaces: dict,
                  failed_models: dict[str, str], skipped_images: dict[str, str]) -> dict:
    wanted = {p[0].name for p in pairing.pairs}
    totals: dict[str, ModelTotals] = {}
    per_image = []
    for record in read_progress(out_dir):
        model_id, space = record["model"], spaces.get(record["model"])
        if model_id not in model_ids or record["image"] not in wanted or space is None or record["space"] != space.labels.id:
            continue
        k = record["classes"]
        ignore = ignore_id(labels) if space.native else space.labels.ignore_index
        entry = totals.setdefault(model_id, ModelTotals(Scores(space.labels.names, ignore), space.labels.name, space.native))
        entry.scores.confusion += _dense(record["confusion"], (k, k))
        entry.scores.outside += _dense(record["outside"], (1, k))[0]
        entry.images += 1
        if not record["cold"]:
            entry.warm_images += 1
            for step, ms in record["timings_ms"].items():
                entry.timings_ms[step] = entry.timings_ms.get(step, 0.0) + ms
        per_image.append([record["image"], model_id, record["pixel_accuracy"], record["mean_iou"],
                          record["timings_ms"].get("total", "")])
    models = {}
    for model_id in model_ids:
        spec = get_spec(model_id)
        entry = {"name": spec.name, "label_set": spec.labels}
        if spaces[model_id] is None:
            entry["comparable"] = False
            entry["reason"] = f"{spec.labels} and {labels.id} share no class"
        elif model_id in totals:
            t = totals[model_id]
            entry.update({"comparable": True, "space": t.space, "native": t.native, "images": t.images,
                          "mean_timings_ms": {s: round(v / t.warm_images, 3) for s, v in t.timings_ms.items()} if t.warm_images else {},
                          **t.scores.to_dict(full_matrix=t.native)})
        if model_id in failed_models:
            entry["error"] = failed_models[model_id]
        models[model_id] = entry
    summary = {
        "seggallery": __version__,
        "labels": labels.id,
        "images": len(pairing.pairs),
        "images_without_mask": pairing.images_without_mask,
        "masks_without_image": pairing.masks_without_image,
        "skipped_images": skipped_images,
        "models": models,
    }
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2))
    _write_csvs(out_dir, summary, per_image)
    return summary


def _write_csvs(out_dir: Path, summary: dict, per_image: list[list]) -> None:
    with open(out_dir / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "name", "label_set", "space", "images", "pixel_accuracy", "mean_iou", "mean_total_ms", "note"])
        for model_id, m in summary["models"].items():
            note = m.get("error", "") or m.get("reason", "")
            writer.writerow([model_id, m["name"], m["label_set"], m.get("space", ""), m.get("images", 0),
                             m.get("pixel_accuracy", ""), m.get("mean_iou", ""),
                             m.get("mean_timings_ms", {}).get("total", ""), note])
    classes: dict[tuple[str, str], dict[str, float]] = {}
    for model_id, m in summary["models"].items():
        for name, value in m.get("per_class_iou", {}).items():
            classes.setdefault((m["space"], name.strip()), {})[model_id] = value
    with open(out_dir / "per_class_iou.csv", "w", newline="") as f:
        writer = csv.writer(f)
        model_ids = list(summary["models"])
        writer.writerow(["space", "class", *model_ids])
        for (space, name), values in classes.items():
            writer.writerow([space, name, *(values.get(m, "") for m in model_ids)])
    with open(out_dir / "per_image.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "model", "pixel_accuracy", "mean_iou", "total_ms"])
        writer.writerows(sorted(per_image))
