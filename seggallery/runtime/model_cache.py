"""Loaded Segmenters kept for the next request, bounded in bytes of weights per device type."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import torch

from .segmenter import Segmenter


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
