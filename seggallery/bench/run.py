"""The benchmark: each model optimised by the engine against the same model run plain, on the same input.

Per model: cold load time (weights read + optimisation + fp32-agreement check), then per input size
warm forward latency (p50/p90) of the plain baseline (upstream model, fp32 eager, upstream memory
layout) and of the optimised model, measured interleaved so both see the same machine load, their
ratio, the agreement of their masks, batched throughput, peak memory, GFLOPs and achieved TFLOP/s
against the device's peak. Then a warm end-to-end Compare of several models (preprocess, forward,
postprocess, overlay compositing and class areas) against the sum of their forward times.
Everything is plain data (`run_benchmark` returns the dict written as JSON).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import __version__
from ..runtime import speed
from ..runtime.engine import Engine
from ..runtime.model_cache import ModelCache
from .compare import against_plain, bench_compare
from .config import BenchConfig, size_label
from .measure import device_info
from .model import bench_model
from .served import bench_served


def bench_photo(path: Path | None, size: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    from PIL import Image

    from ..images import load_image

    path = path or speed.CALIBRATION_PHOTO
    pixels = load_image(path).pixels
    if size is not None and tuple(pixels.shape[:2]) != size:
        pixels = np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return pixels, path.name


def run_benchmark(config: BenchConfig, on_row: Callable[[dict], None] | None = None) -> dict:
    """Every model at every size, then the Compare; `on_row(row)` after each model (for progress)."""
    torch.manual_seed(0)
    unbounded = ModelCache({"cpu": 1 << 62, "mps": 1 << 62, "cuda": 1 << 62})  # the Compare's models stay loaded
    engine = Engine(device=config.device, cache=unbounded, options=config.options)
    photo, photo_name = bench_photo(config.photo)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = device_info(config.device)
    rows = []
    for model_id in config.models:
        row = bench_model(model_id, config, photo, engine)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    compare = served = None
    if config.compare_models:
        compare_photo, _ = bench_photo(config.photo, config.compare_size)
        compare = bench_compare(engine, list(config.compare_models), compare_photo, config)
        if config.compare_size is None:  # the Compare's photo is the one the rows were measured on
            compare["against_plain"] = against_plain(compare, rows)
        if config.served:
            served = bench_served(engine, list(config.compare_models), compare_photo, config.repeat, config.warmup)
    info_after = device_info(config.device).get("load_average")
    return {
        "seggallery": __version__,
        "started": started,
        "machine": {**info, "load_average_after": info_after},
        "settings": {
            "device": str(config.device), "repeat": config.repeat, "warmup": config.warmup, "batch": config.batch,
            "sizes": [size_label(s) for s in config.sizes], "photo": photo_name, "photo_hw": list(photo.shape[:2]),
            "options": {**config.options.__dict__},
            "agreement_threshold": speed.AGREEMENT_THRESHOLD,
        },
        "models": rows,
        "compare": compare,
        "served": served,
        "notes": [
            "plain = the upstream model as its library builds it: fp32, eager, default memory layout, same input tensor",
            "optimised = what SegGallery's engine runs (precision, channels_last, compile as listed per model)",
            "latencies are forward only at the given input size; p50/p90 over `repeat` interleaved runs",
            "gflops count 2 x multiply-accumulates of convolutions and matmuls (torch FlopCounterMode)",
        ],
    }
