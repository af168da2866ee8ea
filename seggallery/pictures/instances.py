"""Instance pictures: every object in its own colour with its box and a "class score" label, and the
instance id map as a PNG.

Colours go by the object's rank (best first), from evenly spread golden-ratio hues, so neighbouring
objects of one class are told apart. Each pixel shows the best object covering it, as in the id map and
the semantic reading. Drawn on the CPU with numpy and PIL: a few dozen objects per photo.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..catalog import LabelSet
from ..evidence.instances import instance_id_map, instance_rows
from ..runtime.results import Instances
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD

GOLDEN_RATIO = 0.618033988749895


def instance_colors(count: int) -> np.ndarray:
    """count x 3 uint8: distinct, saturated colours, the same for the same rank in every picture."""
    hues = (np.arange(count) * GOLDEN_RATIO) % 1.0
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(h, 0.85, 0.95)] for h in hues], np.uint8).reshape(-1, 3)


def instance_overlay(image: np.ndarray, instances: Instances, labels: LabelSet,
                     threshold: float = DEFAULT_SCORE_THRESHOLD, opacity: float = 0.5) -> np.ndarray:
    """The photo with each object at or above `threshold` blended in its own colour, outlined by its box and
    labelled with its class and score; H x W x 3 uint8."""
    ids = instance_id_map(instances, threshold)
    rows = instance_rows(instances, labels, threshold)
    colors = np.concatenate([np.zeros((1, 3), np.uint8), instance_colors(len(rows))])
    opacity = float(np.clip(opacity, 0.0, 1.0))
    blended = image.astype(np.float32) * (1.0 - opacity) + colors[ids].astype(np.float32) * opacity
    picture = np.where((ids > 0)[..., None], blended + 0.5, image).astype(np.uint8)
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(11, image.shape[1] // 70))
    for row in reversed(rows):  # the best object's label is drawn last, on top
        if row.box is None:
            continue
        color = tuple(int(c) for c in colors[row.instance_id])
        x0, y0, x1, y1 = row.box
        draw.rectangle([x0, y0, x1, y1], outline=color, width=2)
        text = f"{row.name} {row.score:.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), text, font=font)
        lift = min(bottom - top + 2, y0)  # above the box where there is room, else inside it
        draw.rectangle([left, top - lift, right + 4, bottom - lift + 2], fill=color)
        draw.text((x0 + 2, y0 - lift), text, fill="black", font=font)
    return np.asarray(canvas)


def instance_id_png(ids: np.ndarray) -> Image.Image:
    """The id map as a greyscale PNG: 8 bits while there are at most 255 objects, else 16 bits."""
    if ids.max(initial=0) <= 255:
        return Image.fromarray(ids.astype(np.uint8), mode="L")
    return Image.fromarray(ids.astype(np.uint16), mode="I;16")
