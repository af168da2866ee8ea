"""Overlays for a whole Compare at once, composited where the masks were computed.

The photo is uploaded once, each mask is coloured and blended with torch on the device the models ran on
(on a GPU all overlays come back in one transfer; on the CPU torch's threads make it twice as fast as
numpy), with the same arithmetic as render.overlay, so the pixels are identical.
"""

from __future__ import annotations

import numpy as np
import torch

from . import zerogpu
from .catalog import LabelSet
from .engine import Prediction, Result
from .render import color_table


def _palette(labels: LabelSet, device: torch.device) -> torch.Tensor:
    """render.colorize's lookup table as a float tensor on `device`."""
    return torch.from_numpy(color_table(labels)).to(device, torch.float32)


@torch.inference_mode()
def overlays_on(device: torch.device, image: np.ndarray, predictions: list[Prediction], opacity: float) -> list[np.ndarray]:
    """render.overlay for each prediction, computed with torch on `device`, one host transfer in all."""
    if not predictions:
        return []
    opacity = float(np.clip(opacity, 0.0, 1.0))
    photo = torch.from_numpy(np.ascontiguousarray(image)).to(device).float() * (1.0 - opacity)
    palettes: dict[str, torch.Tensor] = {}
    blended = []
    for prediction in predictions:
        labels = prediction.labels
        palette = palettes.setdefault(labels.id, _palette(labels, device))
        mask = torch.from_numpy(np.ascontiguousarray(prediction.mask)).to(device).long()
        # same operations in the same order as render.overlay, so the pixels are identical
        blended.append((photo + palette[mask] * opacity + 0.5).to(torch.uint8))
    stacked = torch.stack(blended).cpu().numpy()
    return list(stacked)


def compositing_device(predictions: list[Prediction]) -> torch.device:
    """The GPU the predictions ran on, if any and if usable here; otherwise the CPU."""
    for prediction in predictions:
        device = torch.device(prediction.torch_device)
        # On ZeroGPU, CUDA only exists inside the GPU call; rendering happens outside it.
        if device.type == "cuda" and torch.cuda.is_available() and not zerogpu.active():
            return device
    return torch.device("cpu")


def overlays(image: np.ndarray, results: list[Result], opacity: float = 0.5) -> list[np.ndarray | None]:
    """The overlay of each result in order (None for a Failure)."""
    predictions = [r for r in results if isinstance(r, Prediction)]
    pictures = iter(overlays_on(compositing_device(predictions), image, predictions, opacity))
    return [next(pictures) if isinstance(r, Prediction) else None for r in results]
