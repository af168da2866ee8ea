"""Which models took long on this device: measured on each run, remembered, and said before the next one.

A large model (EoMT-L, 316 M parameters) can take tens of seconds a photo on a CPU Space; a user who picks
it again should be told before waiting. The engine records every successful run's time (its download left
out: a second use does not download again), and the Compare tab turns the models over the limit into a
warning and a line in its status before it runs them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

SLOW_RUN_S = 20.0  # a run longer than this on the current device is worth a warning before the next one


@dataclass
class RunTime:
    seconds: float
    loading: bool  # the time includes loading the model (its first use since it was cached)


@dataclass
class SlowRuns:
    """The last measured time of each model on each device; `warnings` names those over `limit_s`."""

    limit_s: float = SLOW_RUN_S
    _times: dict[tuple[str, str], RunTime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, model_id: str, device: str, timings_ms: dict[str, float], loading: bool) -> None:
        """One run's steps (ms, as a Prediction's timings_ms: its steps, their `total`, and on a first use `load`
        and maybe `download`): the load plus the total; the download, if any, is not counted."""
        seconds = (timings_ms.get("load", 0.0) + timings_ms.get("total", 0.0)) / 1000.0
        with self._lock:
            self._times[(model_id, device)] = RunTime(seconds, loading)

    def last(self, model_id: str, device: str) -> RunTime | None:
        with self._lock:
            return self._times.get((model_id, device))

    def warnings(self, models: list[tuple[str, str]], device: str) -> list[str]:
        """For each (model id, display name) whose last run on `device` took longer than the limit, one sentence."""
        found = []
        for model_id, name in models:
            run = self.last(model_id, device)
            if run is not None and run.seconds > self.limit_s:
                loading = ", loading included" if run.loading else ""
                found.append(f"{name} took {run.seconds:.0f} s on {device} last time{loading}")
        return found
