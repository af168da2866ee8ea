"""A panoptic answer (a segment id per pixel and each segment's class and score) as Instances and a label map.

transformers' post_process_panoptic_segmentation (OneFormer, Mask2Former, EoMT) returns `segmentation`, an
H x W map of segment ids (-1 where no segment was kept), and `segments_info`, each segment's id, class
(`label_id`) and score. Every segment, thing or stuff, becomes one instance (its mask, class, score and
box), so the Compare tab shows them like Mask R-CNN's objects. The semantic reading is each pixel's
segment's class; a pixel no segment covers takes the model's semantic answer under the same task token
(its class-weighted sum of query masks), since ADE20K's classes have no background to fall back on.
"""

from __future__ import annotations

import numpy as np
import torch

from ..runtime.results import Instances


def segments_to_instances(segmentation: torch.Tensor, segments_info: list[dict]) -> Instances:
    """One instance per segment, in the post-processing's order (best query first), at the map's size."""
    segmentation = segmentation.to("cpu")
    masks = np.stack([(segmentation == info["id"]).numpy() for info in segments_info]) if segments_info else (
        np.zeros((0, *segmentation.shape), bool))
    labels = np.array([info["label_id"] for info in segments_info], dtype=np.int64)
    scores = np.array([info["score"] for info in segments_info], dtype=np.float32)
    return Instances(masks, labels, scores, _boxes(masks))


def _boxes(masks: np.ndarray) -> np.ndarray:
    """N x 4 (x0, y0, x1, y1) pixel boxes around N masks (an empty mask gets a zero box)."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for index, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            boxes[index] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def panoptic_reading(segmentation: torch.Tensor, segments_info: list[dict], semantic: torch.Tensor) -> torch.Tensor:
    """H x W class ids: the covering segment's class, else the semantic answer `semantic` (H x W)."""
    classes = semantic.to(torch.int64).clone()
    segmentation = segmentation.to(classes.device)
    for info in segments_info:
        classes[segmentation == info["id"]] = int(info["label_id"])
    return classes
