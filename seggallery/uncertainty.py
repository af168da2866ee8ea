"""How sure a model is, per pixel: confidence (largest class probability) and normalised entropy.

Both are computed from the model's raw output at the resolution the model produced it, sampled on a
coarser grid (every 2nd, 3rd ... row and column) where that is over MAX_MAP_SIDE: the maps are only shown
small and averaged, and a full-resolution softmax of a model that outputs at the input's size cost about
90 ms per model on the 2-core development machine. They are computed outside the timed steps, so timings
stay those of segmentation.
Outputs understood: N x C x h x w logits (a tensor, or an object with `.logits` as transformers
returns), and mask-classification outputs (`class_queries_logits` + `masks_queries_logits`, as
MaskFormer/Mask2Former/OneFormer return), turned into per-pixel class probabilities the way their
semantic post-processing does. Anything else gives no maps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

MAX_MAP_SIDE = 512


def _sampled(tensor: torch.Tensor) -> torch.Tensor:
    """... x h x w, every k-th row and column, with the smallest k that brings both sides to MAX_MAP_SIDE or less."""
    stride = math.ceil(max(tensor.shape[-2:]) / MAX_MAP_SIDE)
    return tensor if stride <= 1 else tensor[..., ::stride, ::stride]


def class_probabilities(outputs: Any) -> torch.Tensor | None:
    """C x h x w probabilities of the first image of a batch (on the grid of _sampled), or None when the
    output is not understood."""
    logits = outputs if isinstance(outputs, torch.Tensor) else getattr(outputs, "logits", None)
    if isinstance(logits, torch.Tensor) and logits.dim() == 4:
        return _sampled(logits[0]).float().softmax(0)
    classes = getattr(outputs, "class_queries_logits", None)
    masks = getattr(outputs, "masks_queries_logits", None)
    if isinstance(classes, torch.Tensor) and isinstance(masks, torch.Tensor) and masks.dim() == 4:
        class_probs = classes[0].float().softmax(-1)[:, :-1]  # Q x C, without the "no object" class
        scores = torch.einsum("qc,qhw->chw", class_probs, _sampled(masks[0]).float().sigmoid())
        return scores / scores.sum(0, keepdim=True).clamp_min(1e-12)
    return None


def uncertainty_maps(outputs: Any) -> torch.Tensor | None:
    """2 x h x w float32 on the outputs' device: confidence, then entropy divided by log(C) so that models
    with different numbers of classes share one scale; both in [0, 1]. None when the output is not understood.
    It stays on the device, so the engine can fetch it together with the mask in the same wait."""
    probs = class_probabilities(outputs)
    if probs is None:
        return None
    confidence = probs.max(0).values
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(0) / math.log(max(probs.shape[0], 2))
    return torch.stack([confidence, entropy.clamp(0, 1)])


def upsample_map(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An h x w map resized bilinearly to `size` (height, width) for display next to the photo."""
    if values.shape == tuple(size):
        return values
    tensor = torch.from_numpy(values)[None, None]
    return torch.nn.functional.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
