"""Results as plain data (report.json) and as files: what the CLI writes and the UI offers for download.

write_outputs() is the one exporter: `python -m seggallery compare` writes its folder, and the
Compare tab zips the same folder for its download button.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .evidence.agreement import Agreement, TruthComparison, agreement, compare_to_truth
from .evidence.areas import area_table, class_areas
from .evidence.groundtruth import GroundTruth
from .evidence.instances import instance_id_map, instances_report
from .images import LoadedImage
from .pictures.files import mask_png, save_png
from .pictures.instances import instance_id_png, instance_overlay
from .pictures.legends import with_legend
from .pictures.overlays import colorize, overlay
from .runtime.results import Failure, Prediction, Result

STEP_COLUMNS = ("download", "load", "preprocess", "forward", "postprocess", "crf", "total")


def model_report(result: Result, truth: TruthComparison | None = None) -> dict:
    """One model's entry of report.json."""
    spec = result.spec
    entry = {"id": spec.id, "name": spec.name, "family": spec.family, "task": spec.task, "label_set": spec.labels}
    if isinstance(result, Failure):
        return {**entry, "error": result.reason, "fix": result.fix}
    areas = class_areas(result.mask, result.labels)
    entry = {
        **entry,
        "classes": [
            {"id": a.class_id, "name": a.name, "pixels": a.pixels, "percent": round(a.percent, 4)} for a in areas
        ],
        "timings_ms": {step: round(ms, 3) for step, ms in result.timings_ms.items()},
        "cold": result.cold,
        "device": result.device,
        "precision": result.precision,
        "precision_note": result.precision_note,
        "mask_size": list(result.mask.shape),
        "published_metrics": list(spec.metrics),
        "notes": list(result.notes),
    }
    if result.confidence is not None:
        entry["mean_confidence"] = round(float(result.confidence.mean()), 6)
        entry["mean_normalised_entropy"] = round(float(result.entropy.mean()), 6)
    if result.instances is not None:  # instance models: their objects; `classes` above is their semantic reading
        entry["instances"] = instances_report(result.instances, result.labels)
    if truth is not None:
        entry["ground_truth"] = truth.to_dict()
    return entry


def truth_comparisons(results: list[Result], truth: GroundTruth | None) -> dict[str, TruthComparison]:
    if truth is None:
        return {}
    return {r.spec.id: compare_to_truth(r, truth) for r in results if isinstance(r, Prediction)}


def build_report(image: LoadedImage, results: list[Result], image_name: str = "", truth: GroundTruth | None = None,
                 comparisons: dict[str, TruthComparison] | None = None, agreed: Agreement | None = None) -> dict:
    """report.json. Pass `comparisons` / `agreed` when already computed, to avoid computing them twice."""
    height, width = image.pixels.shape[:2]
    predictions = [r for r in results if isinstance(r, Prediction)]
    comparisons = truth_comparisons(results, truth) if comparisons is None else comparisons
    agreed = agreement(predictions) if agreed is None else agreed
    report = {
        "seggallery": __version__,
        "image": {
            "name": image_name,
            "original_size": list(image.original_size),
            "inference_size": [width, height],
            "notes": image.notes,
        },
        "models": [model_report(result, comparisons.get(result.spec.id)) for result in results],
    }
    if agreed is not None:
        report["agreement"] = agreed.to_dict()
    if truth is not None:
        report["ground_truth"] = {"label_set": truth.labels.id, "read_as": truth.kind, "ignored_pixels": truth.ignored_pixels,
                                  "notes": truth.notes}
    return report


def write_outputs(out_dir: Path, image: LoadedImage, results: list[Result], image_name: str = "", opacity: float = 0.5,
                  truth: GroundTruth | None = None, agreed: Agreement | None = None) -> dict:
    """Per model <id>_overlay.png (with a legend), <id>_mask.png (indexed: pixel = class id) and
    <id>_color.png (the label set's colours); with a ground truth also <id>_correct.png (green right,
    red wrong). Instance models also get <id>_instances_overlay.png (each object its colour, box, class and
    score), <id>_instances.png (pixel = object id, 0 = none; the ids of <id>_instances.json) and that JSON. For all: report.json, areas.csv, models.csv (timings, published and measured metrics)
    and, with a ground truth, per_class_iou.csv; with two or more models disagreement.png."""
    from .pictures.maps import correctness_image, disagreement_image

    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = [r for r in results if isinstance(r, Prediction)]
    comparisons = truth_comparisons(results, truth)
    for result in predictions:
        picture = overlay(image.pixels, result.mask, result.labels, opacity)
        areas = class_areas(result.mask, result.labels)
        save_png(with_legend(picture, areas, title=result.spec.name), out_dir / f"{result.spec.id}_overlay.png")
        save_png(mask_png(result.mask, result.labels), out_dir / f"{result.spec.id}_mask.png")
        save_png(colorize(result.mask, result.labels), out_dir / f"{result.spec.id}_color.png")
        if result.instances is not None:
            write_instances(out_dir, image, result, opacity)
        comparison = comparisons.get(result.spec.id)
        if comparison is not None and comparison.comparable:
            save_png(correctness_image(image.pixels, comparison.correct), out_dir / f"{result.spec.id}_correct.png")
    agreed = agreement(predictions) if agreed is None else agreed
    if agreed is not None:
        save_png(disagreement_image(image.pixels, agreed.distinct, len(predictions)), out_dir / "disagreement.png")
    report = build_report(image, results, image_name, truth, comparisons, agreed)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    headers, rows = area_table(predictions)
    _write_csv(out_dir / "areas.csv", headers, rows)
    _write_csv(out_dir / "models.csv", *models_table(results, comparisons))
    if comparisons:
        _write_csv(out_dir / "per_class_iou.csv", *per_class_table(results, comparisons))
    return report


def write_instances(out_dir: Path, image: LoadedImage, result: Prediction, opacity: float = 0.5) -> None:
    """An instance model's object files: the overlay, the id map PNG and the JSON that names its ids."""
    model_id = result.spec.id
    save_png(instance_overlay(image.pixels, result.instances, result.labels, opacity=opacity),
             out_dir / f"{model_id}_instances_overlay.png")
    save_png(instance_id_png(instance_id_map(result.instances)), out_dir / f"{model_id}_instances.png")
    described = {"model": model_id, "label_set": result.spec.labels, "id_map": f"{model_id}_instances.png",
                 **instances_report(result.instances, result.labels)}
    (out_dir / f"{model_id}_instances.json").write_text(json.dumps(described, indent=2))


def models_table(results: list[Result], comparisons: dict[str, TruthComparison]) -> tuple[list[str], list[list]]:
    """One row per model: timings, published metric, ground-truth scores (when there is a truth)."""
    headers = ["id", "name", "label_set", "status", "device", "precision", "first_use",
               *(f"{step}_ms" for step in STEP_COLUMNS), "published_miou", "published_dataset"]
    if comparisons:
        headers += ["truth_space", "pixel_accuracy", "mean_iou"]
    rows = []
    for result in results:
        spec = result.spec
        published = next((m for m in spec.metrics if "miou" in m), None)
        if isinstance(result, Failure):
            row = [spec.id, spec.name, spec.labels, f"failed: {result.reason}", "", "", "", *[""] * len(STEP_COLUMNS)]
        else:
            timings = result.timings_ms
            row = [spec.id, spec.name, spec.labels, "ok", result.device, result.precision, result.cold,
                   *(round(timings[s], 3) if s in timings else "" for s in STEP_COLUMNS)]
        row += [published["miou"] if published else "", published["dataset"] if published else ""]
        if comparisons:
            comparison = comparisons.get(spec.id)
            if comparison is None or not comparison.comparable:
                row += ["not comparable" if comparison else "", "", ""]
            else:
                row += [comparison.space.labels.name, _fmt(comparison.scores.pixel_accuracy), _fmt(comparison.scores.mean_iou)]
        rows.append(row)
    return headers, rows


def per_class_table(results: list[Result], comparisons: dict[str, TruthComparison]) -> tuple[list[str], list[list]]:
    """Rows (space, class), one IoU column per model; empty where the class is absent or not comparable."""
    usable = [(r.spec.name, comparisons[r.spec.id]) for r in results if r.spec.id in comparisons and comparisons[r.spec.id].comparable]
    headers = ["space", "class"] + [name for name, _ in usable]
    rows: dict[tuple[str, str], list] = {}
    for column, (_, comparison) in enumerate(usable):
        iou = comparison.scores.iou
        for class_id in comparison.scores.counted_classes:
            if np.isnan(iou[class_id]):
                continue
            key = (comparison.space.labels.name, comparison.scores.class_names[class_id].strip())
            rows.setdefault(key, [*key] + [""] * len(usable))[2 + column] = _fmt(iou[class_id])
    return headers, list(rows.values())


def _fmt(value: float) -> float | str:
    return "" if value is None or np.isnan(value) else round(float(value), 6)


def _write_csv(path: Path, headers: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        writer.writerows(rows)


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Every file of `folder` (written by write_outputs) into one ZIP, under a folder named like the ZIP.

    PNGs are stored as they are (deflating them again gains nothing and costs time); text is deflated.
    """
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                compression = zipfile.ZIP_STORED if path.suffix == ".png" else zipfile.ZIP_DEFLATED
                archive.write(path, Path(zip_path.stem) / path.relative_to(folder), compress_type=compression)
    return zip_path
