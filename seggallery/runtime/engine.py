"""The one door for running catalog models: load each lazily once, tune it, cache it, never crash.

The engine is given its loader (spec, device -> plain Segmenter; by default the backends' door), so tests
and tools can hand it another. It tunes every loaded model (seggallery.runtime.optimiser; a reduced
precision is checked against fp32 before its first prediction, as part of the cold call's "load" time),
keeps loaded models in a byte-bounded cache, retries a model that runs out of memory with less
(seggallery.runtime.memory), remembers how long each model took (seggallery.runtime.slow_runs), and turns
every failure into a Failure value so that one broken model never takes the others down.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..backends import load_segmenter
from ..catalog import ModelSpec
from ..safety import allowed_spec
from . import optimiser, speed, zerogpu
from .crf import CrfParams
from .devices import pick_device
from .memory import run_within_memory
from .model_cache import ModelCache
from .results import Failure, Result, describe_failure
from .segmenter import Segmenter
from .slow_runs import SlowRuns

Loader = Callable[[ModelSpec, torch.device], Segmenter]


def cold_steps(load_ms: float, download_ms: float | None) -> dict[str, float]:
    """A first use's extra steps: the weights' download (when this load fetched them) and the load itself
    (building, tuning and the precision check), apart."""
    if download_ms is None:
        return {"load": load_ms}
    return {"download": download_ms, "load": max(0.0, load_ms - download_ms)}


@dataclass
class Engine:
    """Segments images with catalog models, loading each lazily once and keeping it cached."""

    device: torch.device = field(default_factory=pick_device)
    cache: ModelCache = field(default_factory=ModelCache)
    options: speed.SpeedOptions = field(default_factory=speed.SpeedOptions.from_env)
    checks: speed.PrecisionChecks = field(default_factory=speed.PrecisionChecks)
    loader: Loader = load_segmenter
    slow: SlowRuns = field(default_factory=SlowRuns)  # each model's last time on each device, for the UI's warning

    def __post_init__(self):
        self._load_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # On ZeroGPU the whole Compare runs in one GPU call; elsewhere this is _run_many itself.
        self._run_many_on_device = zerogpu.gpu(self._run_many)

    def segmenter(self, model_id: str, device: torch.device | None = None, verify: bool = True) -> tuple[Segmenter, float | None]:
        """The loaded, tuned model (on the engine's device unless `device` says otherwise) and, when this
        call loaded it or finished its precision check, how long that took in ms.

        verify=False leaves a reduced precision's fp32 check for the first use (ZeroGPU preloading,
        where no GPU is attached yet); that use then runs the check and counts it as loading.
        """
        device = device or self.device
        spec = allowed_spec(model_id)
        with self._locks_guard:
            lock = self._load_locks.setdefault(model_id, threading.Lock())
        with lock:  # two sessions asking for the same cold model load (and check) it once
            cached = self.cache.get(model_id, device)
            if cached is not None:
                return cached, self._finish_precision_check(cached) if verify else None
            start = time.perf_counter()
            segmenter = self.loader(spec, device)
            optimiser.optimise(segmenter, self.options)
            if verify:
                optimiser.verify_precision(segmenter, store=self.checks)
            load_ms = (time.perf_counter() - start) * 1000.0
            self.cache.put(segmenter)
            return segmenter, load_ms

    def _finish_precision_check(self, segmenter: Segmenter) -> float | None:
        """A preloaded model's deferred fp32 agreement check, run on its first use; its time in ms."""
        if segmenter.tuning.pending_precision is None:
            return None
        start = time.perf_counter()
        optimiser.verify_precision(segmenter, store=self.checks)
        return (time.perf_counter() - start) * 1000.0

    def preload(self, model_ids: list[str]) -> list[Failure]:
        """Load models now (ZeroGPU: at import time, onto CUDA); failures are returned, not raised."""
        failures = []
        for model_id in model_ids:
            try:
                self.segmenter(model_id, verify=False)
            except Exception as error:  # noqa: BLE001 - one broken model must not stop the app starting
                spec = allowed_spec(model_id)
                failures.append(Failure(spec, *describe_failure(spec, error)))
        return failures

    def run(self, image: np.ndarray, model_id: str, crf: CrfParams | None = None) -> Result:
        """One model on one image. Never raises for a model's own failure: returns a Failure instead.

        An id that is not a catalog id raises safety.ModelNotAllowed before anything is loaded. `crf`:
        refine the model's probabilities with the dense CRF (its own timing step), or None.
        """
        spec = allowed_spec(model_id)
        loaded: list[Segmenter] = []

        def load(device: torch.device) -> tuple[Segmenter, float | None]:
            segmenter, load_ms = self.segmenter(model_id, device)
            loaded.append(segmenter)
            return segmenter, load_ms

        try:
            prediction, load_ms = run_within_memory(load, self.device, image, crf)
        except Exception as error:  # noqa: BLE001 - any model failure becomes a card, not a crash
            reason, fix = describe_failure(spec, error)
            return Failure(spec, reason, fix)
        if load_ms is not None:
            prediction.cold = True
            prediction.timings_ms = {**cold_steps(load_ms, loaded[0].download_ms), **prediction.timings_ms}
        self.slow.record(model_id, prediction.torch_device or str(self.device), prediction.timings_ms, loading=load_ms is not None)
        return prediction

    def run_many(
        self,
        image: np.ndarray,
        model_ids: list[str],
        on_progress: Callable[[int, str], None] | None = None,
        crf: CrfParams | None = None,
    ) -> list[Result]:
        """Each model in turn, in the order given; `on_progress(index, model_id)` before each; `crf` as in run.

        Every id is checked first: an id that is not a catalog id raises safety.ModelNotAllowed.
        """
        for model_id in model_ids:
            allowed_spec(model_id)
        if zerogpu.active():
            # The GPU call's arguments are pickled: a progress callback (a closure) cannot go with them.
            if on_progress is not None and model_ids:
                on_progress(0, model_ids[0])
            return self._run_many_on_device(image, list(model_ids), None, crf)
        return self._run_many(image, model_ids, on_progress, crf)

    def _run_many(self, image: np.ndarray, model_ids: list[str], on_progress=None, crf: CrfParams | None = None) -> list[Result]:
        results = []
        for index, model_id in enumerate(model_ids):
            if on_progress is not None:
                on_progress(index, model_id)
            results.append(self.run(image, model_id, crf))
        return results
