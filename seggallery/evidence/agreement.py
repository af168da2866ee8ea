"""How much models agree with each other, and with a ground truth, in a shared label space.

Every mask is first projected into the space its label sets share (seggallery.evidence.taxonomy.shared_space):
the label set itself when all models use one, else the coarse classes they can all name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.results import Prediction
from .groundtruth import GroundTruth
from .metrics import Scores
from .taxonomy import Space, shared_space


@dataclass
class Agreement:
    space: Space
    names: list[str]  # model names, in order
    pixel_agreement: np.ndarray  # M x M, share of pixels with the same label
    miou: np.ndarray  # M x M, mean IoU of one model's mask against the other's (symmetric)
    distinct: np.ndarray  # H x W, number of different labels the models give each pixel

    def to_dict(self) -> dict:
        return {
            "space": self.space.labels.name,
            "models": self.names,
            "pixel_agreement": np.round(self.pixel_agreement, 6).tolist(),
            "mean_iou": np.round(np.nan_to_num(self.miou, nan=-1.0), 6).tolist(),
            "pixels_where_all_agree": round(float((self.distinct == 1).mean()), 6),
        }


def agreement(predictions: list[Prediction]) -> Agreement | None:
    """Pairwise agreement of two or more predictions of one image; None when fewer than two or when
    their label sets share no class."""
    if len(predictions) < 2:
        return None
    space = shared_space(p.labels.id for p in predictions)
    if space is None:
        return None
    masks = [space.project(p.mask, p.labels.id) for p in predictions]
    count = len(masks)
    pixel, miou = np.eye(count), np.eye(count)
    for i in range(count):
        for j in range(i + 1, count):
            pixel[i, j] = pixel[j, i] = float((masks[i] == masks[j]).mean())
            # IoU per class is symmetric in the two masks, so either one can play the truth
            scores = Scores.from_masks(masks[i], masks[j], space.labels.names, ignore_index=None)
            miou[i, j] = miou[j, i] = scores.mean_iou
    return Agreement(space, [p.spec.name for p in predictions], pixel, miou, distinct_labels(masks))


def distinct_labels(masks: list[np.ndarray]) -> np.ndarray:
    """H x W: how many different labels the masks give each pixel (1 = all agree)."""
    stack = np.sort(np.stack(masks), axis=0)
    return (1 + (np.diff(stack, axis=0) != 0).sum(0)).astype(np.int32)


@dataclass
class TruthComparison:
    """One model against the ground truth: the space used and the scores, or why it is not comparable."""

    model_name: str
    space: Space | None
    scores: Scores | None
    correct: np.ndarray | None = None  # H x W int8: 1 right, 0 wrong, -1 ignored

    @property
    def comparable(self) -> bool:
        return self.scores is not None

    def to_dict(self) -> dict:
        if not self.comparable:
            return {"comparable": False, "reason": "the model's label set and the mask's share no class"}
        return {"comparable": True, "space": self.space.labels.name, "native": self.space.native, **self.scores.to_dict()}


def compare_to_truth(prediction: Prediction, truth: GroundTruth) -> TruthComparison:
    space = shared_space([truth.labels.id, prediction.labels.id])
    if space is None:
        return TruthComparison(prediction.spec.name, None, None)
    truth_mask = space.project(truth.mask, truth.labels.id)
    predicted = space.project(prediction.mask, prediction.labels.id)
    ignore = truth.ignore_id if space.native else space.labels.ignore_index
    scores = Scores.from_masks(truth_mask, predicted, space.labels.names, ignore_index=ignore)
    correct = np.where(truth_mask == ignore, -1, (truth_mask == predicted).astype(np.int8)).astype(np.int8)
    return TruthComparison(prediction.spec.name, space, scores, correct)
