"""Image maps drawn over or beside the photo: false-colour values, disagreement, right and wrong."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps


def value_map(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """H x W values in [0, 1] -> H x W x 3 uint8 false colours."""
    rgba = colormaps[cmap](np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def disagreement_image(photo: np.ndarray, distinct: np.ndarray, models: int) -> np.ndarray:
    """The photo in grey where all models agree; shaded from yellow (2 labels) to red (all different)."""
    grey = photo.astype(np.float32).mean(2, keepdims=True).repeat(3, 2) * 0.6
    if models < 2:
        return grey.astype(np.uint8)
    level = (np.arange(models + 1, dtype=np.float32) - 1) / (models - 1)  # per count of labels: 0 = all agree, 1 = all differ
    colours = (colormaps["YlOrRd"](0.25 + 0.75 * level)[..., :3] * 255)[distinct]  # a colour per count, looked up
    shaded = np.where((distinct > 1)[..., None], 0.3 * grey + 0.7 * colours, grey)
    return (shaded + 0.5).astype(np.uint8)


def correctness_image(photo: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Green where the model is right, red where wrong, the photo in grey where the truth is ignored."""
    grey = photo.astype(np.float32).mean(2, keepdims=True).repeat(3, 2)
    colours = np.where((correct == 1)[..., None], np.array([40, 180, 70], np.float32), np.array([220, 40, 40], np.float32))
    blended = np.where((correct >= 0)[..., None], 0.45 * grey + 0.55 * colours, 0.6 * grey)
    return (blended + 0.5).astype(np.uint8)
