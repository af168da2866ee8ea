"""How sure a model is, per pixel: confidence (largest class probability) and normalised entropy.

Both are computed from the model's raw output at the resolution the model produced it, sampled on a
coarser grid (every 2nd, 3rd ... row and column) where that is over MAX_MAP_SIDE: the maps are only shown
small and averaged, and a full-resolution softmax of a model that outputs at the input's size cost about
90 ms per model on the 2-core development machine. They are computed outside the timed steps, so timings
stay those of segmentation.
They read a model's class scores (Segmenter.class_scores: N x C x h x w, whose softmax over C is
the class probability), whatever the backend.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MAX_MAP_SIDE = 512


def _sampled(tensor: torch.Tensor) -> torch.Tensor:
    """... x h x w, every k-th row and column, with the smallest k that brings both sides to MAX_MAP_SIDE or less."""
    stride = math.ceil(max(tensor.shape[-2:]) / MAX_MAP_SIDE)
    return tensor if stride <= 1 else tensor[..., ::stride, ::stride]


def class_probabilities(scores: torch.Tensor) -> torch.Tensor:
    """C x h x w probabilities of the first image of N x C x h x w class scores, on the grid of _sampled."""
    return _sampled(scores[0]).float().softmax(0)


def sampled_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """C x h x w probabilities (the dense CRF's), on the grid of _sampled, as class_probabilities gives them."""
    return _sampled(probs).float()


TOP_K = 3  # classes kept per pixel for "what does each model say here?"


def uncertainty_maps(scores: torch.Tensor) -> torch.Tensor:
    """2 x h x w float32 on the scores' device: confidence, then entropy divided by log(C) so that models
    with different numbers of classes share one scale; both in [0, 1]. It stays on the device, so the
    engine can fetch it together with the mask in the same wait."""
    return maps_from_probabilities(class_probabilities(scores))


def top_classes(probs: torch.Tensor, k: int = TOP_K) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, class ids), each k x h x w, of the k most probable classes per pixel of C x h x w probabilities."""
    top = probs.topk(min(k, probs.shape[0]), dim=0)
    return top.values, top.indices


def maps_from_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """uncertainty_maps of C x h x w probabilities."""
    confidence = probs.max(0).values
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(0) / math.log(max(probs.shape[0], 2))
    return torch.stack([confidence, entropy.clamp(0, 1)])


def upsample_map(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An h x w map resized bilinearly to `size` (height, width) for display next to the photo."""
    if values.shape == tuple(size):
        return values
    tensor = torch.from_numpy(values)[None, None]
    return torch.nn.functional.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
