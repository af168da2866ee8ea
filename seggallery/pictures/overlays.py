"""Colour overlays: each model's classes blended over the photo, one implementation for every device.

The photo is uploaded once and each mask is coloured and blended with torch on the device the models ran
on: on a GPU all overlays of a Compare come back in one transfer, on the CPU torch's threads make it about
twice as fast as numpy. The CLI, the ZIP and the app all use it, so their pixels are the same.
"""

from __future__ import annotations

import numpy as np
import torch

from ..catalog import LabelSet
from ..runtime import zerogpu
from ..runtime.results import Prediction, Result


def color_table(labels: LabelSet) -> np.ndarray:
    """At least 256 x 3 uint8: row i is class i's colour; ids outside the label set are white."""
    lut = np.full((max(256, len(labels)), 3), 255, dtype=np.uint8)
    lut[: len(labels)] = np.asarray(labels.colors, dtype=np.uint8)
    return lut


def colorize(mask: np.ndarray, labels: LabelSet) -> np.ndarray:
    """H x W class ids -> H x W x 3 colours of the label set (ids outside it are white)."""
    return color_table(labels)[mask]


@torch.inference_mode()
def overlays_on(device: torch.device | str, image: np.ndarray, masks: list[tuple[np.ndarray, LabelSet]],
                opacity: float = 0.5) -> list[np.ndarray]:
    """Each (mask, label set) blended over the photo on `device`: photo * (1 - opacity) + colour * opacity,
    rounded; opacity 0 shows the photo, 1 only the colours. One host transfer for all of them."""
    if not masks:
        return []
    device = torch.device(device)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    photo = torch.from_numpy(np.ascontiguousarray(image)).to(device).float() * (1.0 - opacity)
    palettes: dict[str, torch.Tensor] = {}
    blended = []
    for mask, labels in masks:
        palette = palettes.setdefault(labels.id, torch.from_numpy(color_table(labels)).to(device, torch.float32))
        ids = torch.from_numpy(np.ascontiguousarray(mask)).to(device).long()
        blended.append((photo + palette[ids] * opacity + 0.5).to(torch.uint8))
    return list(torch.stack(blended).cpu().numpy())


def overlay(image: np.ndarray, mask: np.ndarray, labels: LabelSet, opacity: float = 0.5,
            device: torch.device | str = "cpu") -> np.ndarray:
    """One mask's overlay (see overlays_on)."""
    return overlays_on(device, image, [(mask, labels)], opacity)[0]


def compositing_device(predictions: list[Prediction]) -> torch.device:
    """The GPU the predictions ran on, if any and if usable here; otherwise the CPU."""
    for prediction in predictions:
        device = torch.device(prediction.torch_device)
        # On ZeroGPU, CUDA only exists inside the GPU call; rendering happens outside it.
        if device.type == "cuda" and torch.cuda.is_available() and not zerogpu.active():
            return device
    return torch.device("cpu")


def overlays(image: np.ndarray, results: list[Result], opacity: float = 0.5) -> list[np.ndarray | None]:
    """The overlay of each result in order (None for a Failure), composited where the models ran."""
    predictions = [r for r in results if isinstance(r, Prediction)]
    masks = [(p.mask, p.labels) for p in predictions]
    pictures = iter(overlays_on(compositing_device(predictions), image, masks, opacity))
    return [next(pictures) if isinstance(r, Prediction) else None for r in results]
