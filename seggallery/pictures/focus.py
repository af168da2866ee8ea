"""Pictures for class focus and boundaries: one class coloured over a dimmed photo, or only region outlines."""

from __future__ import annotations

import numpy as np

from ..catalog import LabelSet
from .overlays import color_table

DIM = 0.35  # what is left of the photo outside the focused class


def boundaries(mask: np.ndarray) -> np.ndarray:
    """H x W bool: pixels whose right or lower neighbour has another class (each region's outline, one pixel)."""
    edge = np.zeros(mask.shape, bool)
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    edge[:-1, :] |= mask[:-1, :] != mask[1:, :]
    return edge


def focus_picture(photo: np.ndarray, mask: np.ndarray, labels: LabelSet, opacity: float,
                  ids: frozenset[int] | None = None, outlines: bool = False) -> np.ndarray:
    """The classes `ids` (all when None) coloured at `opacity`, the rest of the photo dimmed when a focus is set;
    with `outlines`, only the regions' outlines are coloured (fully), the inside shows the photo."""
    colours = color_table(labels)[mask].astype(np.float32)
    picture = photo.astype(np.float32)
    chosen = np.ones(mask.shape, bool) if ids is None else np.isin(mask, list(ids))
    if ids is not None:
        picture = np.where(chosen[..., None], picture, picture * DIM)
    if outlines:
        edge = boundaries(mask) & chosen
        picture = np.where(edge[..., None], colours, picture)
    else:
        picture = np.where(chosen[..., None], picture * (1 - opacity) + colours * opacity, picture)
    return (picture + 0.5).astype(np.uint8)
