"""Marks drawn on pictures: the point a user asked about, shown on every overlay."""

from __future__ import annotations

import numpy as np


def mark_point(picture: np.ndarray, x: int, y: int) -> np.ndarray:
    """The picture with a ring around (x, y), white inside black, visible on any colour."""
    marked = picture.copy()
    height, width = marked.shape[:2]
    radius = max(8, min(height, width) // 25)
    width_px = max(1.5, radius / 6)  # half the ring's thickness
    rows, cols = np.ogrid[:height, :width]
    distance = np.sqrt((rows - y) ** 2 + (cols - x) ** 2)
    marked[np.abs(distance - radius) <= 2 * width_px] = (0, 0, 0)
    marked[np.abs(distance - radius) <= width_px] = (255, 255, 255)
    return marked
