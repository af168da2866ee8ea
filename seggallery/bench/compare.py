"""The whole Compare, warm, as the Compare tab computes it, against the sum of the models' forward times."""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..evidence.areas import class_areas
from ..pictures.files import display_jpeg
from ..pictures.overlays import overlays
from ..runtime.engine import Engine
from ..runtime.results import Failure, Prediction
from .config import BenchConfig
from .measure import percentiles

OVERHEAD_TARGET = 1.2  # end-to-end Compare / sum of forward times
PLAIN_TARGET = 0.4  # end-to-end Compare / sum of the models' plain fp32 forward times (a preset's, on a CPU)


def bench_compare(engine: Engine, model_ids: list[str], photo: np.ndarray, config: BenchConfig) -> dict:
    """Warm Compare of `model_ids` as the Compare tab computes it: run_many, the overlays, their JPEGs for
    the browser (ui.pictures) and the class areas."""
    step_names = ("models", "overlays", "encode", "areas")
    steps: dict[str, list[float]] = {name: [] for name in ("total", *step_names, "forward_sum", "preprocess_sum", "postprocess_sum")}

    def once() -> tuple[list, list[float]]:
        marks = [time.perf_counter()]
        results = engine.run_many(photo, model_ids)
        marks.append(time.perf_counter())
        pictures = overlays(photo, results, 0.5)
        marks.append(time.perf_counter())
        for picture in pictures:
            if picture is not None:
                display_jpeg(picture)
        marks.append(time.perf_counter())
        for result in results:
            if isinstance(result, Prediction):
                class_areas(result.mask, result.labels)
        marks.append(time.perf_counter())
        return results, marks

    for _ in range(max(1, config.warmup)):
        results, _ = once()  # loads what is not loaded yet; the timed runs below are warm
    failures = [r for r in results if isinstance(r, Failure)]
    if failures:
        return {"models": model_ids, "error": "; ".join(f"{f.spec.id}: {f.reason}" for f in failures)}
    for _ in range(config.repeat):
        results, marks = once()
        steps["total"].append((marks[-1] - marks[0]) * 1000.0)
        for name, begin, end in zip(step_names, marks, marks[1:]):
            steps[name].append((end - begin) * 1000.0)
        for step in ("forward", "preprocess", "postprocess"):
            steps[f"{step}_sum"].append(sum(r.timings_ms[step] for r in results))
    stats = {name: percentiles(values) for name, values in steps.items()}
    ratio = statistics.median(t / f for t, f in zip(steps["total"], steps["forward_sum"]))
    return {
        "models": model_ids,
        "photo_hw": list(photo.shape[:2]),
        "precisions": {r.spec.id: r.precision for r in results},
        "ms": stats,
        "overhead_ratio": ratio,
        "target_ratio": OVERHEAD_TARGET,
        "meets_target": ratio <= OVERHEAD_TARGET,
        "what": "wall time of run_many + overlay compositing + their JPEG encoding for the browser + class areas, "
                "over the sum of the models' forward times in the same runs (median of per-run ratios)",
    }


def against_plain(compare: dict, rows: list[dict]) -> dict | None:
    """The warm Compare's p50 over the sum of its models' plain fp32 forward p50s, where every one of them
    was benchmarked at its native preprocessing of the same photo (the Compare's input); else None."""
    plain = {}
    for row in rows:
        for entry in row.get("sizes", []):
            if entry.get("size") == "native" and "plain_ms" in entry:
                plain[row["id"]] = entry["plain_ms"]["p50"]
    if "error" in compare or any(model_id not in plain for model_id in compare["models"]):
        return None
    total = sum(plain[model_id] for model_id in compare["models"])
    ratio = compare["ms"]["total"]["p50"] / total
    return {"plain_forward_sum_ms": total, "ratio": ratio, "target_ratio": PLAIN_TARGET,
            "meets_target": ratio <= PLAIN_TARGET,
            "what": "the Compare's end-to-end p50 over the sum of its models' plain fp32 eager forward p50s "
                    "(the benchmark's baseline rows at their native preprocessing of the same photo)"}
