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

import copy
import os
import platform
import re
import statistics
import threading
import time
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from . import __version__, speed
from .analysis import class_areas
from .catalog import CATALOG_DIR, get_spec
from .composite import overlays
from .engine import Engine, Failure, ModelCache, Prediction, Segmenter, device_name
from .render import display_jpeg

Size = tuple[int, int] | None  # (height, width) of the model input; None: the model's own preprocessing
OVERHEAD_TARGET = 1.2  # end-to-end Compare / sum of forward times


def parse_size(text: str) -> Size:
    """'512' -> (512, 512); '1024x768' -> width 1024, height 768 -> (768, 1024); 'native' -> None."""
    text = text.strip().lower()
    if text == "native":
        return None
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
    if not match:
        raise ValueError(f"a size is N, WIDTHxHEIGHT or native, not {text!r}")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"size {text!r} is outside 16..8192")
    return (height, width)


def size_label(size: Size) -> str:
    return "native" if size is None else (f"{size[1]}" if size[0] == size[1] else f"{size[1]}x{size[0]}")


@dataclass
class BenchConfig:
    models: list[str]
    sizes: list[Size] = field(default_factory=lambda: [None])
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    repeat: int = 5
    warmup: int | None = None  # default: 1 on a CPU, 5 on a GPU (cuDNN autotuning, lazy initialisation)
    batch: int | None = None  # default: 2 on a CPU, 8 on a GPU; 0 skips the throughput measurement
    options: speed.SpeedOptions = field(default_factory=speed.SpeedOptions)
    compare_models: list[str] | None = None  # default: the first three of `models`; [] skips it
    compare_size: tuple[int, int] | None = None  # (height, width) of the Compare photo; None: as loaded
    photo: Path | None = None
    served: bool = False  # also time the Compare through the running app, as the browser makes it (bench_served)

    def __post_init__(self):
        if self.warmup is None:
            self.warmup = 5 if self.device.type == "cuda" else 1
        if self.batch is None:
            self.batch = 8 if self.device.type == "cuda" else 2
        if self.compare_models is None:
            self.compare_models = self.models[:3]


# -- measuring --------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed_ms(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall-clock milliseconds of fn() with the device idle before and finished after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1000.0, result


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples, dtype=np.float64)
    return {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
            "min": float(values.min()), "n": int(values.size)}


class PeakMemory:
    """Peak memory while the block runs: CUDA max allocated, or the process's resident set on a CPU.

    On a CPU a thread samples /proc/self/statm every millisecond; `extra_bytes` is the peak over the
    resident set at entry (what this run needed beyond what was already held). None where unknown.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes: int | None = None
        self.extra_bytes: int | None = None
        self._stop = threading.Event()

    @staticmethod
    def rss_bytes() -> int | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = self.rss_bytes()
            if value is not None:
                self.peak_bytes = max(self.peak_bytes or 0, value)
            self._stop.wait(0.001)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            self._start = self.rss_bytes()
            self.peak_bytes = self._start
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
        if self.peak_bytes is not None and self._start is not None:
            self.extra_bytes = max(0, self.peak_bytes - self._start)


# Calls that make the host wait for a GPU: reading values, data-dependent shapes, and blocking copies in
# either direction (PyTorch synchronises the stream after a copy unless non_blocking=True). On a CPU
# nothing waits, but counting these calls shows where a GPU would; a copy whose source is already where
# it goes is counted too, so the count is an upper bound.
_VALUE_READS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero", "unique",
                "masked_select", "equal", "allclose"}
_COPIES = {"to", "cpu", "cuda", "tensor", "as_tensor"}


class HostSyncCounter(TorchFunctionMode):
    """Counts the calls above made inside the block (`calls` names them in order)."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _VALUE_READS:
            self.calls.append(name)
        elif name in _COPIES and _blocking_copy(name, args, kwargs):
            self.calls.append(name)
        return func(*args, **kwargs)


def _blocking_copy(name: str, args: tuple, kwargs: dict) -> bool:
    if kwargs.get("non_blocking") or any(arg is True for arg in args[1:]):
        return False
    if name in ("cpu", "cuda"):
        return True
    if name in ("tensor", "as_tensor"):
        return kwargs.get("device") is not None
    named = [kwargs.get("device"), *args[1:2]]  # Tensor.to(device, ...) / to(dtype) / to(other_tensor)
    return any(isinstance(arg, (str, torch.device, torch.Tensor)) for arg in named)


def count_host_syncs(device: torch.device, fn: Callable[[], Any]) -> tuple[int, list[str]]:
    """How many times fn() makes the host wait for the device: CUDA's sync debug mode on a GPU, the
    HostSyncCounter elsewhere (the calls that would synchronise on a GPU)."""
    if device.type == "cuda":
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fn()
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        found = [str(w.message).splitlines()[0][:80] for w in caught if "synchroniz" in str(w.message).lower()]
        return len(found), found
    with HostSyncCounter() as counter:
        fn()
    return len(counter.calls), counter.calls


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of fn() as torch's FlopCounterMode counts them: 2 x multiply-accumulates of convolutions
    and matrix products (elementwise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# -- device facts -------------------------------------------------------------------------------------


def gpu_peaks() -> list[dict]:
    with open(CATALOG_DIR / "gpu_peaks.toml", "rb") as f:
        return tomllib.load(f)["gpu"]


def peak_tflops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """(peak TFLOP/s, what it is) for this device in this precision, or (None, why there is none)."""
    if device.type != "cuda":
        return None, "n/a: no defensible peak for this CPU (shared, virtualised; see gpu_peaks.toml)"
    name = torch.cuda.get_device_name(device)
    words = set(re.split(r"[\s\-_]+", name))
    # fp32 convolutions run on TF32 tensor cores unless cuDNN's TF32 is switched off (it is on by default)
    kind = precision if precision != "fp32" else ("tf32" if torch.backends.cudnn.allow_tf32 else "fp32")
    for entry in gpu_peaks():
        if set(entry["match"]) <= words:
            value = entry["tflops"].get(kind)
            if value is None:
                return None, f"n/a: {entry['name']} has no {kind} figure"
            return float(value), f"{entry['name']} dense {kind} ({entry['source']})"
    return None, f"n/a: {name} is not in gpu_peaks.toml"


def device_info(device: torch.device) -> dict:
    info = {
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_native_bf16": speed.cpu_has_native_bf16(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "fastest_precision": speed.fastest_precision(device),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update({"gpu": properties.name, "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
                     "compute_capability": f"{properties.major}.{properties.minor}",
                     "cudnn": torch.backends.cudnn.version(), "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                     "matmul_precision": torch.get_float32_matmul_precision()})
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return info


# -- one model ----------------------------------------------------------------------------------------


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


def main_logits(outputs: Any) -> torch.Tensor | None:
    """The per-pixel class scores (N x C x h x w) in a model's output, where there is one."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping) and "out" in outputs:
        return outputs["out"]
    logits = getattr(outputs, "logits", None)
    return logits if isinstance(logits, torch.Tensor) and logits.dim() == 4 else None


def logit_diagnostics(reference: Any, reduced: Any) -> dict | None:
    """How far the optimised logits are from fp32, and how many pixels are close enough to a tie to flip.

    fragile_pixel_share: pixels whose fp32 top-1/top-2 margin is below the 99th percentile of the
    optimised run's absolute logit error; masks can only disagree there. With random weights this share
    is large (their logits are large and near-tied), so their agreement understates trained weights'.
    """
    a, b = main_logits(reference), main_logits(reduced)
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
    from .backends import backend, describe_failure, load_segmenter

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
    optimize_ms, _ = timed_ms(device, lambda: segmenter.optimize(config.options))
    check_ms, _ = timed_ms(device, lambda: segmenter.verify_precision(store=engine.checks))
    row.update({
        "parameters": sum(p.numel() for p in segmenter.module.parameters()),
        "weights_mb": round(segmenter.nbytes() / 2**20, 1),
        "cold_ms": {"import": import_ms, "load": load_ms, "optimize": optimize_ms, "precision_check": check_ms,
                    "total": load_ms + optimize_ms + check_ms},
        "precision": segmenter.precision,
        "precision_note": segmenter.precision_note,
        "precision_check": segmenter.precision_check,
        "channels_last": segmenter.channels_last,
        "compiled": segmenter.compiled,
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
    prepared = segmenter.prepare_inputs(inputs)
    height, width = input_size(inputs)

    def run_plain():
        autotune = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False  # upstream's default; the engine switched it on globally
        try:
            return plain.forward(inputs)
        finally:
            torch.backends.cudnn.benchmark = autotune

    def run_optimised():
        return segmenter.run_forward(prepared)

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
    peak, peak_kind = peak_tflops(device, segmenter.precision)
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
        "logits": logit_diagnostics(reference, outputs),
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak_kind": peak_kind,
        "percent_of_peak": 100.0 * achieved / peak if (achieved is not None and peak) else None,
        "peak_memory_mb": {"plain": _mb(plain_memory.peak_bytes), "optimised": _mb(optimised_memory.peak_bytes),
                           "plain_extra": _mb(plain_memory.extra_bytes), "optimised_extra": _mb(optimised_memory.extra_bytes),
                           "what": "CUDA max allocated" if device.type == "cuda" else "process resident set (RSS)"},
    }
    if config.batch:
        many = segmenter.prepare_inputs(batched(inputs, config.batch))
        segmenter.run_forward(many)  # warm-up for the batched shape
        batch_ms = [timed_ms(device, lambda: segmenter.run_forward(many))[0] for _ in range(config.repeat)]
        stats = percentiles(batch_ms)
        result["batched"] = {"batch": config.batch, "ms": stats, "images_per_s": config.batch * 1000.0 / stats["p50"]}
    return result


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


# -- the whole Compare ----------------------------------------------------------------------------------


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


# -- the whole run ----------------------------------------------------------------------------------------


def bench_photo(path: Path | None, size: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    from PIL import Image

    from .images import load_image

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
        if config.served:
            from .bench_served import bench_served

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


def format_table(result: dict) -> str:
    """The benchmark as a fixed-width text table."""
    header = (f"{'model':<28} {'size':>8} {'prec':>5} {'load s':>7} {'plain p50':>10} {'opt p50':>9} {'opt p90':>9} "
              f"{'speedup':>7} {'agree %':>8} {'img/s':>7} {'GFLOPs':>7} {'TFLOP/s':>8} {'% peak':>7} {'peak MB':>8}")
    lines = [f"SegGallery benchmark on {result['machine']['device']} (torch {result['machine']['torch']}), "
             f"repeat {result['settings']['repeat']}, photo {result['settings']['photo']}", header, "-" * len(header)]
    for row in result["models"]:
        if "error" in row:
            lines.append(f"{row['id']:<28} FAILED: {row['error'][:100]}")
            continue
        load_s = row["cold_ms"]["total"] / 1000.0
        for entry in row["sizes"]:
            if "error" in entry:
                lines.append(f"{row['id']:<28} {entry['size']:>8} FAILED: {entry['error'][:90]}")
                continue
            batched_rate = entry.get("batched", {}).get("images_per_s")
            peak_mb = entry["peak_memory_mb"]["optimised"]
            size = f"{entry['input_hw'][1]}x{entry['input_hw'][0]}"
            lines.append(
                f"{row['id']:<28} {size:>8} {row['precision']:>5} {load_s:>7.1f} {entry['plain_ms']['p50']:>10.1f} "
                f"{entry['optimised_ms']['p50']:>9.1f} {entry['optimised_ms']['p90']:>9.1f} {entry['speedup']:>6.2f}x "
                f"{100 * entry['mask_agreement']:>8.2f} {_fmt(batched_rate, '7.1f')} {entry['gflops']:>7.1f} "
                f"{_fmt(entry['achieved_tflops'], '8.2f')} {_fmt(entry['percent_of_peak'], '7.1f')} {_fmt(peak_mb, '8.0f')}")
        lines.append(f"{'':<28} precision: {row['precision_note']}; host syncs per predict: "
                     f"{row['host_syncs_per_predict']['count']}")
    for part, describe in (("compare", _compare_line), ("served", _served_line)):
        if result.get(part):
            failed = "error" in result[part]
            lines.append(f"{part}: FAILED: {result[part]['error'][:200]}" if failed else describe(result[part]))
    return "\n".join(lines)


def _compare_line(compare: dict) -> str:
    ms = compare["ms"]
    height, width = compare["photo_hw"]
    return (f"Compare of {', '.join(compare['models'])} on a {width}x{height} photo: {ms['total']['p50']:.1f} ms p50 "
            f"end to end (models {ms['models']['p50']:.1f}, overlays {ms['overlays']['p50']:.1f}, encode "
            f"{ms['encode']['p50']:.1f}, areas {ms['areas']['p50']:.1f}); sum of forward times "
            f"{ms['forward_sum']['p50']:.1f} ms; ratio {compare['overhead_ratio']:.3f} (target <= {compare['target_ratio']})")


def _served_line(served: dict) -> str:
    ms = served["ms"]
    return (f"Served Compare (the app on 127.0.0.1, over its HTTP API): {ms['total']['p50']:.1f} ms p50, "
            f"{ms['total']['p90']:.1f} ms p90; sum of forward times {ms['forward_sum']['p50']:.1f} ms; everything "
            f"else {served['overhead_ms_p50']:.1f} ms")


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{'n/a':>{width}}" if value is None else format(value, f">{spec}")
