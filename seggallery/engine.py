"""Running models: device choice, the Segmenter pipeline, true per-step timings and the model cache.

A backend turns a ModelSpec into a Segmenter (preprocess -> forward -> postprocess). The engine times
each step (CUDA events on a GPU, so the numbers are true without a host sync per step), keeps loaded
models in a cache bounded in bytes, and turns every failure into a Failure value so that one broken
model never takes the others down.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import speed, zerogpu
from .catalog import LabelSet, ModelSpec
from .optimised import Optimised
from .safety import allowed_spec

DEVICE_ENV = "SEGGALLERY_DEVICE"


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless `preferred` or $SEGGALLERY_DEVICE names one."""
    preferred = preferred or os.environ.get(DEVICE_ENV) or "auto"
    if preferred != "auto":
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {preferred!r} was asked for but CUDA is not available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {preferred!r} was asked for but Apple MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@dataclass
class Prediction:
    """One model's answer for one image: a label map at the image's size plus how it was obtained."""

    spec: ModelSpec
    mask: np.ndarray  # H x W, int32 class ids of spec.label_set
    timings_ms: dict[str, float]  # preprocess / forward / postprocess / total (+ load on a cold call)
    device: str
    precision: str
    cold: bool  # the model was loaded (and maybe downloaded) during this call
    scores: torch.Tensor | None = None  # optional per-class scores at low resolution (C x h x w, CPU)
    confidence: np.ndarray | None = None  # h x w max class probability at the model's output resolution
    entropy: np.ndarray | None = None  # h x w entropy / log(C), same resolution (seggallery.uncertainty)
    notes: list[str] = field(default_factory=list)  # what was done differently, for the user (e.g. an OOM retry)
    precision_note: str = ""  # why this precision: device, catalog opt-out, measured fp32 agreement
    torch_device: str = "cpu"  # where it ran, as torch names it ("cuda:0"): overlays are composited there

    @property
    def labels(self) -> LabelSet:
        return self.spec.label_set


@dataclass
class Failure:
    """A model that could not run, with the reason and the command that fixes it."""

    spec: ModelSpec
    reason: str
    fix: str = ""


Result = Prediction | Failure


class Segmenter(Optimised):
    """A loaded model: `predict(image)` = preprocess -> forward -> postprocess, each timed.

    Backends subclass this and override `preprocess` (uint8 RGB H x W x 3 array -> model input on the
    device, exactly as the checkpoint was evaluated upstream), and where needed `forward` and
    `postprocess` (model output -> H x W class-id tensor at the original size).

    A backend builds it plain (fp32, upstream memory layout); the engine then optimises it (precision,
    layout, compilation: seggallery.optimised).
    """

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        self.spec = spec
        self.device = device
        self.module = module.eval().to(device)

    @property
    def labels(self) -> LabelSet:
        return self.spec.label_set

    def preprocess(self, image: np.ndarray) -> Any:
        raise NotImplementedError

    def forward(self, inputs: Any) -> Any:
        return self.module(inputs)

    def postprocess(self, outputs: Any, size: tuple[int, int]) -> torch.Tensor:
        return upsample_argmax(outputs, size)

    def nbytes(self) -> int:
        tensors = [*self.module.parameters(), *self.module.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def upload(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the device, without making the host wait for the GPU (the driver
        stages pageable memory before returning, so the array may be reused at once)."""
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, non_blocking=True)

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> Prediction:
        timer = StepTimer(self.device)
        inputs = self.prepare_inputs(self.preprocess(image))
        timer.mark("preprocess")
        outputs = self.run_forward(inputs)
        timer.mark("forward")
        mask = self.postprocess(outputs, image.shape[:2])
        timer.mark("postprocess")
        maps = self.uncertainty(outputs)  # outside the timed steps: not part of segmenting
        maps = None if maps is None else maps.to("cpu", non_blocking=True)  # completed by the next line's wait
        mask_np = mask.to("cpu", torch.int32).numpy()  # the one host sync of this call
        timings = timer.finish()
        confidence, entropy = (None, None) if maps is None else maps.numpy()
        return Prediction(self.spec, mask_np, timings, device_name(self.device), self.precision, cold=False,
                          confidence=confidence, entropy=entropy,
                          precision_note=self.precision_note, torch_device=str(self.device))

    def uncertainty(self, outputs: Any) -> torch.Tensor | None:
        """Confidence and entropy maps (2 x h x w, on the device) from the raw outputs; backends with
        unusual outputs override it."""
        from .uncertainty import uncertainty_maps

        return uncertainty_maps(outputs)


def upsample_argmax(
    logits: torch.Tensor,
    size: tuple[int, int],
    chunk: int = 16,
    *,
    via: tuple[int, int] | None = None,
    align_corners: bool = False,
) -> torch.Tensor:
    """Bilinearly resize 1 x C x h x w logits to `size` and take the argmax over classes.

    Classes are resized a chunk at a time while a running maximum is kept, so a 150-class model on a
    large photo needs memory for `chunk` full-size channels instead of C; the result is identical to
    resizing all channels at once (each channel is interpolated independently, first maximum wins).
    `via` resizes to that size first (mmseg goes through the network input's size on its way to the
    image's); `align_corners` is F.interpolate's, as the checkpoint's config sets it.
    """
    logits = logits[0] if logits.dim() == 4 else logits
    steps = [tuple(s) for s in (via, size) if s is not None]
    if all(tuple(logits.shape[-2:]) == step for step in steps):
        return logits.max(0).indices  # same as argmax(0), and several times faster on CPU
    best_value = best_index = None
    for start in range(0, logits.shape[0], chunk):
        resized = logits[None, start : start + chunk]
        for step in steps:
            if tuple(resized.shape[-2:]) != step:
                resized = F.interpolate(resized, size=step, mode="bilinear", align_corners=align_corners)
        value, index = resized[0].max(0)
        if best_value is None:
            best_value, best_index = value, index
        else:
            better = value > best_value
            best_value = torch.where(better, value, best_value)
            best_index = torch.where(better, index + start, best_index)
    return best_index


class StepTimer:
    """Milliseconds per pipeline step. On CUDA it records events and synchronises once, at the end."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.names: list[str] = []
        if self.cuda:
            self.marks = [torch.cuda.Event(enable_timing=True)]
            self.marks[0].record()
        else:
            if device.type == "mps":
                torch.mps.synchronize()
            self.device = device
            self.marks = [time.perf_counter()]

    def mark(self, name: str) -> None:
        self.names.append(name)
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            if self.device.type == "mps":
                torch.mps.synchronize()
            self.marks.append(time.perf_counter())

    def finish(self) -> dict[str, float]:
        if self.cuda:
            self.marks[-1].synchronize()
            steps = [a.elapsed_time(b) for a, b in zip(self.marks, self.marks[1:])]
        else:
            steps = [(b - a) * 1000.0 for a, b in zip(self.marks, self.marks[1:])]
        timings = dict(zip(self.names, steps))
        timings["total"] = sum(steps)
        return timings


class ModelCache:
    """Loaded Segmenters by (model id, device), least recently used first out, bounded in bytes per device."""

    def __init__(self, max_bytes: dict[str, int] | None = None):
        self.max_bytes = max_bytes or default_cache_budget()
        self._entries: OrderedDict[tuple[str, str], Segmenter] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, model_id: str, device: torch.device) -> Segmenter | None:
        key = (model_id, str(device))
        with self._lock:
            segmenter = self._entries.get(key)
            if segmenter is not None:
                self._entries.move_to_end(key)
            return segmenter

    def put(self, segmenter: Segmenter) -> None:
        key = (segmenter.spec.id, str(segmenter.device))
        with self._lock:
            self._entries[key] = segmenter
            self._entries.move_to_end(key)
            self._evict(segmenter.device.type, keep=key)

    def _evict(self, device_type: str, keep: tuple[str, str]) -> None:
        budget = self.max_bytes.get(device_type, self.max_bytes.get("cpu", 0))
        while self.bytes_used(device_type) > budget:
            victim = next((k for k, s in self._entries.items() if s.device.type == device_type and k != keep), None)
            if victim is None:
                break  # a single model larger than the budget stays: evicting it would make it unusable
            del self._entries[victim]
        if device_type == "cuda":
            torch.cuda.empty_cache()

    def segmenters(self) -> list[Segmenter]:
        """Every loaded model, most recently used last."""
        with self._lock:
            return list(self._entries.values())

    def bytes_used(self, device_type: str) -> int:
        return sum(s.nbytes() for s in self._entries.values() if s.device.type == device_type)

    def resident(self) -> list[tuple[str, str, int]]:
        """(model id, device, bytes) of every loaded model, most recently used last."""
        with self._lock:
            return [(s.spec.id, str(s.device), s.nbytes()) for s in self._entries.values()]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def default_cache_budget() -> dict[str, int]:
    """Bytes of weights kept loaded: $SEGGALLERY_CACHE_MB (CPU) / $SEGGALLERY_GPU_CACHE_MB, else 2 GiB / 60% of the GPU."""
    cpu = int(os.environ.get("SEGGALLERY_CACHE_MB", 2048)) << 20
    gpu = os.environ.get("SEGGALLERY_GPU_CACHE_MB")
    if gpu is not None:
        gpu_bytes = int(gpu) << 20
    elif torch.cuda.is_available():
        gpu_bytes = int(torch.cuda.get_device_properties(0).total_memory * 0.6)
    else:
        gpu_bytes = 0
    return {"cpu": cpu, "mps": cpu, "cuda": gpu_bytes}


@dataclass
class Engine:
    """Segments images with catalog models, loading each lazily once and keeping it cached.

    Each model is optimised as `options` allow (seggallery.speed) right after loading; a reduced
    precision is checked against fp32 before its first prediction, and that check is part of the
    cold call's "load" time.
    """

    device: torch.device = field(default_factory=pick_device)
    cache: ModelCache = field(default_factory=ModelCache)
    options: speed.SpeedOptions = field(default_factory=speed.SpeedOptions.from_env)
    checks: speed.PrecisionChecks = field(default_factory=speed.PrecisionChecks)

    def __post_init__(self):
        self._load_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # On ZeroGPU the whole Compare runs in one GPU call; elsewhere this is _run_many itself.
        self._run_many_on_device = zerogpu.gpu(self._run_many)

    def segmenter(self, model_id: str, device: torch.device | None = None, verify: bool = True) -> tuple[Segmenter, float | None]:
        """The loaded, optimised model (on the engine's device unless `device` says otherwise) and, when
        this call loaded it or finished its precision check, how long that took in ms.

        verify=False leaves a reduced precision's fp32 check for the first use (ZeroGPU preloading,
        where no GPU is attached yet); that use then runs the check and counts it as loading.
        """
        from .backends import load_segmenter

        device = device or self.device
        spec = allowed_spec(model_id)
        with self._locks_guard:
            lock = self._load_locks.setdefault(model_id, threading.Lock())
        with lock:  # two sessions asking for the same cold model load (and check) it once
            cached = self.cache.get(model_id, device)
            if cached is not None:
                return cached, self._finish_precision_check(cached) if verify else None
            start = time.perf_counter()
            segmenter = load_segmenter(spec, device)
            segmenter.optimize(self.options)
            if verify:
                segmenter.verify_precision(store=self.checks)
            load_ms = (time.perf_counter() - start) * 1000.0
            self.cache.put(segmenter)
            return segmenter, load_ms

    def _finish_precision_check(self, segmenter: Segmenter) -> float | None:
        """A preloaded model's deferred fp32 agreement check, run on its first use; its time in ms."""
        if segmenter.pending_precision is None:
            return None
        start = time.perf_counter()
        segmenter.verify_precision(store=self.checks)
        return (time.perf_counter() - start) * 1000.0

    def preload(self, model_ids: list[str]) -> list[Failure]:
        """Load models now (ZeroGPU: at import time, onto CUDA); failures are returned, not raised."""
        from .backends import describe_failure

        failures = []
        for model_id in model_ids:
            try:
                self.segmenter(model_id, verify=False)
            except Exception as error:  # noqa: BLE001 - one broken model must not stop the app starting
                spec = allowed_spec(model_id)
                failures.append(Failure(spec, *describe_failure(spec, error)))
        return failures

    def run(self, image: np.ndarray, model_id: str) -> Result:
        """One model on one image. Never raises for a model's own failure: returns a Failure instead.

        An id that is not a catalog id raises safety.ModelNotAllowed before anything is loaded.
        """
        from .backends import describe_failure
        from .oom import run_within_memory

        spec = allowed_spec(model_id)
        try:
            prediction, load_ms = run_within_memory(self, model_id, image)
        except Exception as error:  # noqa: BLE001 - any model failure becomes a card, not a crash
            reason, fix = describe_failure(spec, error)
            return Failure(spec, reason, fix)
        if load_ms is not None:
            prediction.cold = True
            prediction.timings_ms = {"load": load_ms, **prediction.timings_ms}
        return prediction

    def run_many(
        self,
        image: np.ndarray,
        model_ids: list[str],
        on_progress: Callable[[int, str], None] | None = None,
    ) -> list[Result]:
        """Each model in turn, in the order given; `on_progress(index, model_id)` before each.

        Every id is checked first: an id that is not a catalog id raises safety.ModelNotAllowed.
        """
        for model_id in model_ids:
            allowed_spec(model_id)
        if zerogpu.active():
            # The GPU call's arguments are pickled: a progress callback (a closure) cannot go with them.
            if on_progress is not None and model_ids:
                on_progress(0, model_ids[0])
            return self._run_many_on_device(image, list(model_ids))
        return self._run_many(image, model_ids, on_progress)

    def _run_many(self, image: np.ndarray, model_ids: list[str], on_progress=None) -> list[Result]:
        results = []
        for index, model_id in enumerate(model_ids):
            if on_progress is not None:
                on_progress(index, model_id)
            results.append(self.run(image, model_id))
        return results
