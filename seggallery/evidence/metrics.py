"""Scores against a ground truth: confusion matrix, pixel accuracy, per-class and mean IoU.

Conventions (those of the CamVid, Pascal VOC and Cityscapes benchmarks):
- truth pixels equal to the ignore index (void, VOC's 255 border) are left out entirely;
- a prediction outside the label set's classes (e.g. a projected void) is a miss for the truth class;
- IoU of class c = TP / (TP + FP + FN); a class with an empty union (absent from truth and prediction)
  has no IoU (NaN) and is left out of the mean; the ignore class never counts;
- over a dataset, confusion matrices are summed first and the scores computed once (not averaged
  per image), which is how published numbers are computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def confusion_matrix(truth: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(K x K counts, rows = truth and columns = prediction; K-vector of truth pixels predicted outside 0..K-1)."""
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in size")
    truth = truth.ravel().astype(np.int64)
    prediction = prediction.ravel().astype(np.int64)
    valid = (truth >= 0) & (truth < num_classes)
    if ignore_index is not None:
        valid &= truth != ignore_index
    truth, prediction = truth[valid], prediction[valid]
    inside = (prediction >= 0) & (prediction < num_classes)
    matrix = np.bincount(truth[inside] * num_classes + prediction[inside], minlength=num_classes * num_classes)
    outside = np.bincount(truth[~inside], minlength=num_classes)
    return matrix.reshape(num_classes, num_classes), outside


@dataclass
class Scores:
    """Accumulated counts of one model against the truth, in one label space, and the scores they give."""

    class_names: tuple[str, ...]
    ignore_index: int | None = None
    confusion: np.ndarray = field(default=None)  # K x K int64
    outside: np.ndarray = field(default=None)  # K int64: truth pixels predicted as no class of the space

    def __post_init__(self):
        k = len(self.class_names)
        if self.confusion is None:
            self.confusion = np.zeros((k, k), dtype=np.int64)
        if self.outside is None:
            self.outside = np.zeros(k, dtype=np.int64)

    @classmethod
    def from_masks(cls, truth: np.ndarray, prediction: np.ndarray, class_names, ignore_index: int | None = None) -> Scores:
        scores = cls(tuple(class_names), ignore_index)
        scores.add(truth, prediction)
        return scores

    def add(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        matrix, outside = confusion_matrix(truth, prediction, len(self.class_names), self.ignore_index)
        self.confusion += matrix
        self.outside += outside

    @property
    def evaluated_pixels(self) -> int:
        return int(self.confusion.sum() + self.outside.sum())

    @property
    def pixel_accuracy(self) -> float:
        total = self.evaluated_pixels
        return float(np.trace(self.confusion) / total) if total else float("nan")

    @property
    def counted_classes(self) -> np.ndarray:
        """Class ids that can have an IoU: all but the ignore index."""
        ids = np.arange(len(self.class_names))
        return ids[ids != self.ignore_index] if self.ignore_index is not None else ids

    @property
    def iou(self) -> np.ndarray:
        """Per-class IoU (K floats); NaN for the ignore class and classes absent from truth and prediction."""
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(1) + self.outside + self.confusion.sum(0) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
        if self.ignore_index is not None and self.ignore_index < len(iou):
            iou[self.ignore_index] = np.nan
        return iou

    @property
    def mean_iou(self) -> float:
        values = self.iou[self.counted_classes]
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float("nan")

    def to_dict(self, full_matrix: bool = False) -> dict:
        """JSON-able scores; the confusion matrix keeps only classes present in truth or prediction
        unless `full_matrix` (a 150-class matrix is mostly zeros)."""
        iou = self.iou
        present = [int(i) for i in np.flatnonzero(self.confusion.sum(0) + self.confusion.sum(1) + self.outside)]
        ids = list(range(len(self.class_names))) if full_matrix else present
        return {
            "pixel_accuracy": _round(self.pixel_accuracy),
            "mean_iou": _round(self.mean_iou),
            "evaluated_pixels": self.evaluated_pixels,
            "per_class_iou": {self.class_names[i]: _round(iou[i]) for i in self.counted_classes if not np.isnan(iou[i])},
            "confusion": {
                "classes": [self.class_names[i] for i in ids],
                "rows_truth_columns_prediction": self.confusion[np.ix_(ids, ids)].tolist(),
                "predicted_no_class": [int(self.outside[i]) for i in ids],
            },
        }


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)
