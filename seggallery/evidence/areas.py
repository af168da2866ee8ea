"""Numbers from predictions: how much of the image each class covers, and the table that lines models up."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..catalog import LabelSet
from ..runtime.results import Prediction


@dataclass(frozen=True)
class ClassArea:
    class_id: int
    name: str
    color: tuple[int, int, int]
    pixels: int
    percent: float


def class_areas(mask: np.ndarray, labels: LabelSet) -> list[ClassArea]:
    """Classes present in `mask`, largest first, with pixel counts and % of the image."""
    counts = np.bincount(mask.ravel(), minlength=len(labels))
    total = mask.size
    present = [int(i) for i in np.flatnonzero(counts)]
    present.sort(key=lambda i: -counts[i])
    return [
        ClassArea(i, _name(labels, i), _color(labels, i), int(counts[i]), 100.0 * counts[i] / total)
        for i in present
    ]


def _name(labels: LabelSet, class_id: int) -> str:
    return labels.names[class_id] if class_id < len(labels) else f"class {class_id}"


def _color(labels: LabelSet, class_id: int) -> tuple[int, int, int]:
    return labels.colors[class_id] if class_id < len(labels) else (255, 255, 255)


def area_table(predictions: list[Prediction]) -> tuple[list[str], list[list]]:
    """Headers and rows: one row per (label set, class), a % and a pixel column per model.

    Models that share a label set share rows, so 'person' of two VOC models is one row; a class of
    another label set gets its own row even when the name is the same, since the definitions differ.
    Rows are ordered by the largest share any model gives them.
    """
    headers = ["class", "label set"]
    for prediction in predictions:
        headers += [f"{prediction.spec.name} %", f"{prediction.spec.name} px"]
    rows: dict[tuple[str, str], list] = {}
    for column, prediction in enumerate(predictions):
        for area in class_areas(prediction.mask, prediction.labels):
            key = (prediction.labels.id, area.name)
            row = rows.setdefault(key, [area.name, prediction.labels.id] + [0.0, 0] * len(predictions))
            row[2 + 2 * column] = round(area.percent, 2)
            row[3 + 2 * column] = area.pixels
    ordered = sorted(rows.values(), key=lambda row: -max(row[2::2]))
    return headers, ordered


TOP_CLASSES = 12  # rows of the readable area table before the "other" row
OTHER = "other"


@dataclass(frozen=True)
class ShareRow:
    name: str
    label_set: str
    color: tuple[int, int, int]
    percent: list[float | None]  # per model; None where the class is not in that model's label set


@dataclass(frozen=True)
class AreaShares:
    """% of the image per class and model, for reading: the `top` classes with the largest share any model
    gives them, largest first, and the rest of each model's image as one "other" row (pixels: area_table)."""

    models: list[str]
    rows: list[ShareRow]
    other: list[float] | None = None  # None when every class found is in `rows`
    hidden: int = 0  # classes folded into "other"
    label_sets: list[str] = field(default_factory=list)

    def headers(self) -> list[str]:
        return ["class", "label set", *(f"{name} %" for name in self.models)]

    def table(self, digits: int = 2) -> list[list]:
        def cell(value):
            return None if value is None else round(value, digits)

        rows = [[row.name, row.label_set, *map(cell, row.percent)] for row in self.rows]
        if self.other is not None:
            rows.append([f"{OTHER} ({self.hidden} classes)", "", *map(cell, self.other)])
        return rows


def area_shares(predictions: list[Prediction], top: int = TOP_CLASSES) -> AreaShares:
    label_sets = [p.labels.id for p in predictions]
    rows: dict[tuple[str, str], ShareRow] = {}
    for column, prediction in enumerate(predictions):
        for area in class_areas(prediction.mask, prediction.labels):
            key = (prediction.labels.id, area.name)
            if key not in rows:
                percent = [0.0 if labels == prediction.labels.id else None for labels in label_sets]
                rows[key] = ShareRow(area.name, prediction.labels.id, area.color, percent)
            rows[key].percent[column] = area.percent
    ordered = sorted(rows.values(), key=lambda row: -max(v for v in row.percent if v is not None))
    shown, rest = ordered[:top], ordered[top:]
    other = None
    if rest:
        other = [max(0.0, 100.0 - sum(row.percent[i] or 0.0 for row in shown)) for i in range(len(predictions))]
    return AreaShares([p.spec.name for p in predictions], shown, other, len(rest), list(dict.fromkeys(label_sets)))
