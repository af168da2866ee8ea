"""Measuring on any device: synchronised wall times, percentiles, peak memory, host syncs, FLOPs, peaks.

Everything here is independent of SegGallery's models: it times and counts whatever callable it is given.
"""

from __future__ import annotations

import os
import platform
import re
import threading
import time
import tomllib
import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from ..catalog import CATALOG_DIR
from ..runtime import speed
from ..runtime.devices import cpu_model, device_name, in_cpu_only_reads, synchronize


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
        counted = name in _VALUE_READS or (name in _COPIES and _blocking_copy(name, args, kwargs))
        if counted and not in_cpu_only_reads():  # runtime.label_map reads values only when on a CPU
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


# The instruction sets that decide which kernels run (bf16 and int8 tiles, bf16 dot products, AVX-512, AVX2).
CPU_INSTRUCTIONS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512_fp16", "avx512_f", "avx512_vnni", "avx2")


def cpu_instructions() -> list[str]:
    """Which of CPU_INSTRUCTIONS this CPU has, as torch detects them."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    found = capabilities() if capabilities is not None else {}
    return [name for name in CPU_INSTRUCTIONS if found.get(name)]


def machine_line(info: dict) -> str:
    """One line naming the machine a measurement comes from, for tables and the README."""
    cpu = f"{info['cpu']} ({', '.join(info['cpu_instructions']) or 'no AVX2'}), {info['cpu_count']} logical CPUs"
    return f"{info['gpu']} GPU; {cpu}" if "gpu" in info else cpu


def device_info(device: torch.device) -> dict:
    info = {
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_instructions": cpu_instructions(),
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
