"""Which device runs the models, its name for people, and step timings that are true on every device."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from functools import lru_cache

import torch

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


_cpu_only = threading.local()


@contextlib.contextmanager
def cpu_only_reads():
    """Marks code that reads tensor values on the host only when the tensors are on a CPU (where nothing
    waits), so that the benchmark's count of would-be GPU synchronisations, taken on a CPU, leaves it out."""
    _cpu_only.depth = getattr(_cpu_only, "depth", 0) + 1
    try:
        yield
    finally:
        _cpu_only.depth -= 1


def in_cpu_only_reads() -> bool:
    return getattr(_cpu_only, "depth", 0) > 0


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name as the OS reports it ("Intel(R) Xeon(R) Processor", "AMD EPYC 9R14 ...")."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_name(device: str) -> str:
    """The machine a result was computed on, for tables: the device (with its GPU's name) and the CPU."""
    return f"{device_name(torch.device(device))}; {cpu_model()}, {os.cpu_count()} logical CPUs"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


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
