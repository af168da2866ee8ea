"""Class focus: which classes of each model to show when the user asks for one class by name.

A model whose label set has a class of that name shows it; a model of another label set shows its classes
in the same coarse class (catalog/taxonomy.toml: VOC's `person` finds ADE20K's `person`, Cityscapes' `person`
and `rider`), and says it matched that way; `other` is never matched across label sets (it means nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import CatalogError, LabelSet
from ..runtime.results import Prediction
from .taxonomy import IGNORE, OTHER, coarse_labels, coarse_lut


@dataclass(frozen=True)
class Focus:
    """The classes of one model that stand for the asked class, and how they were found."""

    ids: frozenset[int]
    how: str  # "same name", "coarse class <name>" or "not in this label set"


def classes_found(predictions: list[Prediction]) -> list[str]:
    """Every class any model found, by name, largest share first (a model's share of the photo)."""
    share: dict[str, float] = {}
    for prediction in predictions:
        ids, counts = np.unique(prediction.mask, return_counts=True)
        for class_id, count in zip(ids.tolist(), counts.tolist()):
            if 0 <= class_id < len(prediction.labels):
                name = prediction.labels.names[class_id].strip()
                share[name] = max(share.get(name, 0.0), count / prediction.mask.size)
    return sorted(share, key=lambda name: -share[name])


def _coarse_of(name: str, labels: LabelSet) -> int | None:
    names = [n.strip().lower() for n in labels.names]
    if name.lower() not in names:
        return None
    try:
        coarse = int(coarse_lut(labels.id)[names.index(name.lower())])
    except CatalogError:
        return None
    return None if coarse == IGNORE else coarse


def focus_for(prediction: Prediction, name: str, sources: list[LabelSet]) -> Focus:
    """The classes of `prediction` that stand for `name`, a class of one of the `sources` label sets."""
    labels = prediction.labels
    names = [n.strip().lower() for n in labels.names]
    if name.strip().lower() in names:
        return Focus(frozenset({names.index(name.strip().lower())}), "same name")
    coarse = next((c for c in (_coarse_of(name.strip(), source) for source in sources) if c is not None), None)
    coarse_name = coarse_labels().names[coarse] if coarse is not None else None
    if coarse is None or coarse_name == OTHER:
        return Focus(frozenset(), "not in this label set")
    try:
        lut = coarse_lut(labels.id)
    except CatalogError:
        return Focus(frozenset(), "not in this label set")
    ids = frozenset(int(i) for i in np.flatnonzero(lut[: len(labels)] == coarse))
    return Focus(ids, f"coarse class {coarse_name}" if ids else "not in this label set")
