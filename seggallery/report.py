"""Results as plain data (report.json) and as files: what the CLI writes and the UI offers for download."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from . import __version__
from .analysis import class_areas
from .engine import Failure, Prediction, Result
from .images import LoadedImage
from .render import mask_png, overlay, with_legend


def model_report(result: Result) -> dict:
    """One model's entry of report.json."""
    spec = result.spec
    entry = {"id": spec.id, "name": spec.name, "family": spec.family, "label_set": spec.labels}
    if isinstance(result, Failure):
        return {**entry, "error": result.reason, "fix": result.fix}
    areas = class_areas(result.mask, result.labels)
    return {
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
    }


def build_report(image: LoadedImage, results: list[Result], image_name: str = "") -> dict:
    height, width = image.pixels.shape[:2]
    return {
        "seggallery": __version__,
        "image": {
            "name": image_name,
            "original_size": list(image.original_size),
            "inference_size": [width, height],
            "notes": image.notes,
        },
        "models": [model_report(result) for result in results],
    }


def write_outputs(out_dir: Path, image: LoadedImage, results: list[Result], image_name: str = "", opacity: float = 0.5) -> dict:
    """<id>_overlay.png (with a legend), <id>_mask.png (indexed: pixel = class id) and report.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for result in results:
        if isinstance(result, Prediction):
            picture = overlay(image.pixels, result.mask, result.labels, opacity)
            areas = class_areas(result.mask, result.labels)
            with_legend(picture, areas, title=result.spec.name).save(out_dir / f"{result.spec.id}_overlay.png")
            mask_png(result.mask, result.labels).save(out_dir / f"{result.spec.id}_mask.png")
    report = build_report(image, results, image_name)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def read_mask_png(path: Path) -> np.ndarray:
    """Class ids back from a mask written by write_outputs."""
    return np.asarray(Image.open(path))
