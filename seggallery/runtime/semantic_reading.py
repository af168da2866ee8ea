"""The semantic reading of instances: a class per pixel from the objects an instance model found.

Each pixel takes the class of the highest-scoring instance whose mask covers it, among the instances
scoring at least the threshold; pixels no such instance covers are background. That label map is what
the area table, the agreement between models and the ground-truth scores read, so an instance model
is compared with semantic models like any other.
"""

from __future__ import annotations

import torch

DEFAULT_SCORE_THRESHOLD = 0.5  # torchvision's examples and the Compare tab's default


def semantic_reading(masks: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, size: tuple[int, int],
                     background: int = 0, threshold: float = DEFAULT_SCORE_THRESHOLD) -> torch.Tensor:
    """N x H x W bool masks, N labels, N scores -> H x W int64 class ids.

    Runs on the tensors' device without reading anything back to the host (no boolean indexing):
    instances below the threshold, and labels < 0 (ids a model has no class for), simply cover nothing.
    Ties in score go to the instance listed first.
    """
    height, width = size
    if len(masks) == 0:
        return torch.full((height, width), background, dtype=torch.int64, device=masks.device)
    kept = (scores >= threshold) & (labels >= 0)
    order = torch.sort(scores, descending=True, stable=True).indices
    covering = masks[order] & kept[order].view(-1, 1, 1)
    first = covering.to(torch.uint8).argmax(0)  # the first (highest-scoring) covering instance, or 0 when none
    covered = covering.any(0)
    return torch.where(covered, labels[order][first], torch.full_like(first, background)).to(torch.int64)
