"""What a benchmark run measures: models, input sizes, device, repetitions and the engine's options."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..runtime import speed

Size = tuple[int, int] | None  # (height, width) of the model input; None: the model's own preprocessing


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
