"""EoMT's semantic inference in overlapping windows, as its image processor defines it.

EomtImageProcessor (do_split_image) resizes the photo to a shorter side of `size.shortest_edge` and
cuts the long side into that many-pixel square windows, evenly overlapping, each one a batch item
with its (image, start, end) offset. Its post_process_semantic_segmentation turns every window's
query masks and classes into class scores at the window's size, sums the windows into one canvas at
the resized photo's size, divides by how many windows covered each pixel and resizes to the photo.

Here the canvas is kept (the processor's own code makes it, asked for the resized photo's size, which
it then leaves as it is), so that the class scores are available to the uncertainty maps and the
inspector, and the final resize to the photo goes through `upsample_argmax` (runtime.label_map) a few classes at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.image_transforms import get_size_with_aspect_ratio


@dataclass
class WindowOutputs:
    """The model's outputs for every window, and the class scores merged over the windows."""

    windows: Any  # the model's output: masks_queries_logits / class_queries_logits, one batch item a window
    scores: torch.Tensor  # 1 x C x h x w at the resized photo's size (sums of query probabilities, averaged over windows)
    first_window: tuple[float, float, float, float]  # top, left, bottom, right of the first window, as fractions of the photo

    @property
    def masks_queries_logits(self) -> torch.Tensor:
        return self.windows.masks_queries_logits

    @property
    def class_queries_logits(self) -> torch.Tensor:
        return self.windows.class_queries_logits


def resized_size(photo_size: tuple[int, int], shortest_edge: int) -> tuple[int, int]:
    """The photo's size after the processor's resize (shorter side = shortest_edge, aspect kept)."""
    return get_size_with_aspect_ratio(tuple(photo_size), shortest_edge, None)


def merged_scores(processor, windows, photo_size: tuple[int, int]) -> torch.Tensor:
    """1 x C x h x w class scores of the whole resized photo, from the windows' outputs.

    The processor's post-processing, told that the photo is already at its resized size: its stitching
    then builds the canvas at that size and its final bilinear resize maps the canvas onto itself
    (scale 1, align_corners=False: every value unchanged).
    """
    image_processor = getattr(processor, "image_processor", processor)
    size = resized_size(photo_size, image_processor.size.shortest_edge)
    result = image_processor.post_process_semantic_segmentation(windows, target_sizes=[size], return_segmentation_scores=True)
    return result[0].segmentation_scores[None]


def window_box(offsets: torch.Tensor, photo_size: tuple[int, int], shortest_edge: int) -> tuple[float, float, float, float]:
    """A window's (top, left, bottom, right) as fractions of the photo, from its processor offsets
    (image, start, end): they run along the long side, which is the height when the photo is taller
    than wide (the processor's and its post-processing's rule)."""
    height, width = resized_size(photo_size, shortest_edge)
    _, start, end = (int(value) for value in offsets)
    if photo_size[0] > photo_size[1]:
        return start / height, 0.0, min(end, height) / height, 1.0
    return 0.0, start / width, 1.0, min(end, width) / width


def splits_into_windows(processor) -> bool:
    """Whether the processor cuts photos into windows (EoMT's semantic checkpoints)."""
    return bool(getattr(getattr(processor, "image_processor", processor), "do_split_image", False))
