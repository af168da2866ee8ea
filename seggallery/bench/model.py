"""One model: its cold load, then per input size the optimised engine against the same model run plain."""

from __future__ import annotations

import copy
import statistics
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..backends import backend, load_segmenter
from ..catalog import get_spec
from ..runtime import fastconv, optimiser, speed
from ..runtime.engine import Engine
from ..runtime.results import describe_failure
from ..runtime.segmenter import Segmenter
from .config import BenchConfig, Size, size_label
from .measure import PeakMemory, count_flops, count_host_syncs, peak_tflops, percentiles, timed_ms


def model_inputs(segmenter: Segmenter, photo: np.ndarray, size: Size) -> Any:
    """The model's own preprocessing of the photo, its image tensors then resized to `size` (if given)."""
    inputs = segmenter.preprocess(photo)
    if size is None:
        return inputs

    def resize(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.dim() != 4 or not tensor.is_floating_point():
            return tensor
        return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)

    return speed.map_tensors(inputs, resize)


def input_size(inputs: Any) -> tuple[int, int]:
    found: list[tuple[int, int]] = []
    speed.map_tensors(inputs, lambda t: found.append(tuple(t.shape[-2:])) if t.dim() == 4 else None)
    if not found:
        raise ValueError("the model's input holds no image tensor")
    return found[0]


def batched(inputs: Any, batch: int) -> Any:
    return speed.map_tensors(inputs, lambda t: t.expand(batch, *t.shape[1:]).clone() if t.dim() >= 1 and t.shape[0] == 1 else t)


def logit_diagnostics(reference: torch.Tensor | None, reduced: torch.Tensor | None) -> dict | None:
    """How far the optimised class scores (Segmenter.class_scores) are from fp32, and how many pixels are close enough to a tie to flip.

    fragile_pixel_share: pixels whose fp32 top-1/top-2 margin is below the 99th percentile of the
    optimised run's absolute logit error; masks can only disagree there. With random weights this share
    is large (their logits are large and near-tied), so their agreement understates trained weights'.
    """
    a, b = reference, reduced
    if a is None or b is None or a.shape != b.shape or a.shape[1] < 2:
        return None
    a, b = a.float(), b.float()
    error = (a - b).abs().flatten()
    sample = error[torch.randperm(error.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000].to(error.device)] \
        if error.numel() > 1_000_000 else error
    error_p99 = float(torch.quantile(sample, 0.99))
    top2 = a.topk(2, dim=1).values
    margin = top2[:, 0] - top2[:, 1]
    return {
        "logit_abs_error_median": float(sample.median()),
        "logit_abs_error_p99": error_p99,
        "logit_std": float(a.std()),
        "fp32_margin_median": float(margin.median()),
        "fragile_pixel_share": float((margin < error_p99).float().mean()),
    }


def bench_model(model_id: str, config: BenchConfig, photo: np.ndarray, engine: Engine) -> dict:
    """Load, optimise and measure one model at every size; a model the Compare needs stays in engine.cache."""
    spec = get_spec(model_id)
    device = config.device
    row: dict[str, Any] = {"id": model_id, "name": spec.name, "backend": spec.backend}
    try:
        import_ms, _ = timed_ms(device, lambda: backend(spec))
        load_ms, segmenter = timed_ms(device, lambda: load_segmenter(spec, device))
    except Exception as error:  # noqa: BLE001 - a model that cannot load is a row, not a crash
        reason, fix = describe_failure(spec, error)
        return {**row, "error": reason, "fix": fix}
    plain = copy.copy(segmenter)  # shares the preprocessing; its own untouched copy of the module
    plain.module = copy.deepcopy(segmenter.module)
    optimize_ms, _ = timed_ms(device, lambda: optimiser.optimise(segmenter, config.options))
    check_ms, _ = timed_ms(device, lambda: optimiser.verify_precision(segmenter, store=engine.checks))
    row.update({
        "parameters": sum(p.numel() for p in segmenter.module.parameters()),
        "weights_mb": round(segmenter.nbytes() / 2**20, 1),
        "cold_ms": {"import": import_ms, "load": load_ms, "optimize": optimize_ms, "precision_check": check_ms,
                    "total": load_ms + optimize_ms + check_ms},
        "precision": segmenter.tuning.precision,
        "precision_note": segmenter.tuning.precision_note,
        "precision_check": segmenter.tuning.precision_check,
        "channels_last": segmenter.tuning.channels_last,
        "compiled": segmenter.tuning.compiled,
        "sizes": [],
    })
    for size in config.sizes:
        try:
            row["sizes"].append(bench_size(segmenter, plain, photo, size, config))
        except torch.OutOfMemoryError:
            row["sizes"].append({"size": size_label(size), "error": "out of memory"})
            torch.cuda.empty_cache() if device.type == "cuda" else None
        except Exception as error:  # noqa: BLE001 - e.g. a ViT that only takes its training size
            row["sizes"].append({"size": size_label(size), "error": f"{type(error).__name__}: {str(error)[:300]}"})
    row["dilated_convolutions"] = {"rewritable": segmenter.tuning.dilated_taps,
                                   "choices": fastconv.choices_made(segmenter.module)}
    row["fused_attention"] = segmenter.tuning.fused_attention
    if device.type == "cuda":
        segmenter.predict(photo)  # cuDNN autotuning for the photo's shape happens before counting
    syncs, calls = count_host_syncs(device, lambda: segmenter.predict(photo))
    row["host_syncs_per_predict"] = {"count": syncs, "calls": calls}
    if model_id in config.compare_models:
        engine.cache.put(segmenter)
    return row


@torch.inference_mode()
def bench_size(segmenter: Segmenter, plain: Segmenter, photo: np.ndarray, size: Size, config: BenchConfig) -> dict:
    device = config.device
    inputs = model_inputs(plain, photo, size)
    prepared = optimiser.prepare_inputs(segmenter, inputs)
    height, width = input_size(inputs)

    def run_plain():
        autotune = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False  # upstream's default; the engine switched it on globally
        try:
            return plain.forward(inputs)
        finally:
            torch.backends.cudnn.benchmark = autotune

    def run_optimised():
        return optimiser.run_forward(segmenter, prepared)

    flops = count_flops(run_plain)  # also the baseline's first warm-up call
    for _ in range(config.warmup - 1):
        run_plain()
    first_call_ms, _ = timed_ms(device, run_optimised)  # includes compilation / autotuning for this shape
    for _ in range(config.warmup - 1):
        run_optimised()
    plain_ms, optimised_ms = [], []
    for _ in range(config.repeat):  # interleaved: both see the same load on a shared machine
        elapsed, reference = timed_ms(device, run_plain)
        plain_ms.append(elapsed)
        elapsed, outputs = timed_ms(device, run_optimised)
        optimised_ms.append(elapsed)
    reference_mask = plain.postprocess(reference, (height, width))
    optimised_mask = segmenter.postprocess(outputs, (height, width))
    with PeakMemory(device) as plain_memory:
        run_plain()
    with PeakMemory(device) as optimised_memory:
        run_optimised()
    plain_stats, optimised_stats = percentiles(plain_ms), percentiles(optimised_ms)
    seconds = optimised_stats["p50"] / 1000.0
    achieved = flops / seconds / 1e12 if seconds > 0 else None
    peak, peak_kind = peak_tflops(device, segmenter.tuning.precision)
    result = {
        "size": size_label(size),
        "input_hw": [height, width],
        "gflops": flops / 1e9,
        "plain_ms": plain_stats,
        "optimised_ms": optimised_stats,
        "optimised_first_call_ms": first_call_ms,
        "speedup": plain_stats["p50"] / optimised_stats["p50"],
        "speedup_paired_median": statistics.median(p / o for p, o in zip(plain_ms, optimised_ms)),
        "mask_agreement": speed.mask_agreement(reference_mask, optimised_mask),
        "logits": logit_diagnostics(plain.class_scores(reference), segmenter.class_scores(outputs)),
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak_kind": peak_kind,
        "percent_of_peak": 100.0 * achieved / peak if (achieved is not None and peak) else None,
        "peak_memory_mb": {"plain": _mb(plain_memory.peak_bytes), "optimised": _mb(optimised_memory.peak_bytes),
                           "plain_extra": _mb(plain_memory.extra_bytes), "optimised_extra": _mb(optimised_memory.extra_bytes),
                           "what": "CUDA max allocated" if device.type == "cuda" else "process resident set (RSS)"},
    }
    if config.batch:
        many = optimiser.prepare_inputs(segmenter, batched(inputs, config.batch))
        optimiser.run_forward(segmenter, many)  # warm-up for the batched shape
        batch_ms = [timed_ms(device, lambda: optimiser.run_forward(segmenter, many))[0] for _ in range(config.repeat)]
        stats = percentiles(batch_ms)
        result["batched"] = {"batch": config.batch, "ms": stats, "images_per_s": config.batch * 1000.0 / stats["p50"]}
    return result


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)
