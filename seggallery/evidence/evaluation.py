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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..catalog import LabelSet, get_spec, label_set
from ..images import ImageError, load_image
from ..runtime.devices import machine_name
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
    machines: set[str] = field(default_factory=set)


def _sparse(matrix: np.ndarray) -> list[list[int]]:
    rows, cols = np.nonzero(matrix)
    return [[int(r), int(c), int(matrix[r, c])] for r, c in zip(rows, cols)]


def _dense(entries: list[list[int]], shape: tuple[int, ...]) -> np.ndarray:
    matrix = np.zeros(shape, dtype=np.int64)
    for *index, count in entries:
        matrix[tuple(index)] = count
    return matrix


def read_progress(out_dir: Path) -> list[dict]:
    """Finished pairs, each (image, model) once; a last line cut short by an interruption is dropped (that
    pair is redone). A pair written twice (a worker that died after its result was written, two runs into
    one folder) counts once: the first record is kept."""
    path = out_dir / PROGRESS_FILE
    if not path.exists():
        return []
    records, seen = [], set()
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if (record["image"], record["model"]) not in seen:
            seen.add((record["image"], record["model"]))
            records.append(record)
    return records


def _start_run(out_dir: Path, settings: dict) -> None:
    """Record the settings; refuse to mix results of other masks, another label set or another CRF setting
    into one folder."""
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
    # drop a trailing partial line and repeated pairs, so that appended records start on a line of their own
    records = read_progress(out_dir)
    path = out_dir / PROGRESS_FILE
    if path.exists():
        text = "".join(json.dumps(r) + "\n" for r in records)
        if path.read_text() != text:
            path.write_text(text)


@dataclass
class PairFailure:
    """One (image, model) pair that gave no record: the model failed on it, or a worker running it was lost."""

    image: str
    model: str
    reason: str


def load_pair(image_path: Path, mask_path: Path, labels: LabelSet) -> tuple[np.ndarray, np.ndarray]:
    """The image's pixels and its ground-truth mask at the image's size; raises ImageError for a bad file."""
    image = load_image(image_path)
    truth = load_mask(mask_path, labels, image.original_size, image.pixels.shape[:2])
    return image.pixels, truth.mask


def score_pair(engine: Engine, pixels: np.ndarray, truth: np.ndarray, image_name: str, model_id: str,
               space, labels: LabelSet, crf: CrfParams | None = None) -> dict | PairFailure:
    """The work of one (image, model) pair: the progress record, or why there is none. The single-machine
    run and every Ray worker call this same function, so their records agree by construction. `crf`: refine
    the model's probabilities with the dense CRF first, or None."""
    result = engine.run(pixels, model_id, crf)
    if isinstance(result, Failure):
        return PairFailure(image_name, model_id, result.reason)
    return _record(image_name, model_id, truth, result, space, labels)


class EvaluationRun:
    """The bookkeeping of one run into one folder, shared by the single-machine and the Ray runs.

    Making one checks the folder's settings and reads the pairs already finished; `add` appends each new
    record to progress.jsonl (flushed and synced at once, each pair at most once) or notes a failure with
    the single-machine rules: a model that fails before any success is left out of this run, a failure after
    one loses only that image. `summary` writes results.json and the CSVs.
    """

    def __init__(self, pairing: Pairing, model_ids: list[str], labels_id: str, out_dir: Path, source: str = "",
                 crf: CrfParams | None = None):
        self.pairing, self.model_ids, self.out_dir, self.crf = pairing, list(model_ids), out_dir, crf
        self.labels = label_set(labels_id)
        self.spaces = {m: shared_space([labels_id, get_spec(m).labels]) for m in self.model_ids}
        _start_run(out_dir, {"labels": labels_id, "source": source, "crf": crf is not None})
        self.done = {(r["image"], r["model"]) for r in read_progress(out_dir)}
        self.comparable = [m for m in self.model_ids if self.spaces[m] is not None]
        self.failed_models: dict[str, str] = {}
        self.skipped_images: dict[str, str] = {}
        self._ran: set[str] = set()

    def todo(self, image_name: str) -> list[str]:
        """The models still to run on this image."""
        return [m for m in self.comparable if (image_name, m) not in self.done and m not in self.failed_models]

    def skip_image(self, image_name: str, reason: str) -> None:
        self.skipped_images[image_name] = reason

    def add(self, outcome: dict | PairFailure) -> bool:
        """Record one pair's outcome; True when it added a record to progress.jsonl."""
        if isinstance(outcome, PairFailure):  # not recorded: a rerun tries it again
            if outcome.model in self._ran:
                self.skipped_images[f"{outcome.image} ({outcome.model})"] = outcome.reason
            else:
                self.failed_models.setdefault(outcome.model, outcome.reason)
            return False
        pair = (outcome["image"], outcome["model"])
        if pair in self.done or outcome["model"] in self.failed_models:
            return False
        self._ran.add(outcome["model"])
        with open(self.out_dir / PROGRESS_FILE, "a") as progress:
            progress.write(json.dumps(outcome) + "\n")
            progress.flush()
            os.fsync(progress.fileno())
        self.done.add(pair)
        return True

    def summary(self) -> dict:
        return write_summary(self.out_dir, self.pairing, self.model_ids, self.labels, self.spaces,
                             self.failed_models, self.skipped_images)


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
    run = EvaluationRun(pairing, model_ids, labels_id, out_dir, source, crf)
    total = len(pairing.pairs)
    for index, (image_path, mask_path) in enumerate(pairing.pairs):
        todo = run.todo(image_path.name)
        if todo:
            try:
                pixels, truth = load_pair(image_path, mask_path, run.labels)
            except ImageError as error:
                run.skip_image(image_path.name, str(error))
                todo = []
        for model_id in todo:
            run.add(score_pair(engine, pixels, truth, image_path.name, model_id, run.spaces[model_id], run.labels, crf))
        if on_progress is not None:
            on_progress(index + 1, total, image_path.name)
    return run.summary()


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
        "precision": result.precision,  # the engine picks it per machine: a reason two machines' masks may differ
        "machine": machine_name(result.device),
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
        if "machine" in record:  # records of older versions do not say
            entry.machines.add(f"{record['machine']} ({record['precision']})")
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
                          "machines": sorted(t.machines),
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
        "skipped_images": dict(sorted(skipped_images.items())),  # the same whichever order pairs finished in
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
