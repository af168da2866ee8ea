"""Numbers from instances: one row per object (class, score, pixel area, box), the count per class, and
the instance id map (which object each pixel shows) that the instance PNG stores.

Only objects scoring at least the threshold count, as in the overlay; each pixel belongs to the
highest-scoring of them that covers it, the same rule as the semantic reading (runtime.semantic_reading).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..catalog import LabelSet
from ..runtime.results import Instances
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD


@dataclass(frozen=True)
class InstanceRow:
    instance_id: int  # 1, 2, ... in the order of the kept objects, best first (0 is background in the id map)
    class_id: int
    name: str
    score: float
    pixels: int  # the object's own mask
    visible_pixels: int  # where it is the best object covering the pixel (its area in the id map)
    box: tuple[float, float, float, float] | None  # x0, y0, x1, y1 in pixels

    def to_dict(self) -> dict:
        return {"id": self.instance_id, "class_id": self.class_id, "class": self.name, "score": round(self.score, 6),
                "pixels": self.pixels, "visible_pixels": self.visible_pixels,
                "box": None if self.box is None else [round(v, 2) for v in self.box]}


def best_first(instances: Instances, threshold: float = DEFAULT_SCORE_THRESHOLD) -> Instances:
    """The objects at or above the threshold, highest score first (ties keep their order)."""
    kept = instances.above(threshold)
    order = np.argsort(-kept.scores, kind="stable")
    return Instances(kept.masks[order], kept.labels[order], kept.scores[order],
                     None if kept.boxes is None else kept.boxes[order])


def instance_id_map(instances: Instances, threshold: float = DEFAULT_SCORE_THRESHOLD) -> np.ndarray:
    """H x W: 0 where no kept object is, else the id (1-based, best first) of the best object covering the pixel."""
    kept = best_first(instances, threshold)
    height, width = instances.masks.shape[1:]
    if len(kept) == 0:
        return np.zeros((height, width), np.int32)
    first = kept.masks.argmax(0)  # first covering object in best-first order
    return np.where(kept.masks.any(0), first + 1, 0).astype(np.int32)


def instance_rows(instances: Instances, labels: LabelSet, threshold: float = DEFAULT_SCORE_THRESHOLD) -> list[InstanceRow]:
    kept = best_first(instances, threshold)
    visible = np.bincount(instance_id_map(instances, threshold).ravel(), minlength=len(kept) + 1)
    rows = []
    for index in range(len(kept)):
        class_id = int(kept.labels[index])
        name = labels.names[class_id] if 0 <= class_id < len(labels) else f"class {class_id}"
        box = None if kept.boxes is None else tuple(float(v) for v in kept.boxes[index])
        rows.append(InstanceRow(index + 1, class_id, name, float(kept.scores[index]), int(kept.masks[index].sum()),
                                int(visible[index + 1]), box))
    return rows


def count_per_class(rows: list[InstanceRow]) -> dict[str, int]:
    """Class name -> number of objects, most first."""
    return dict(Counter(row.name for row in rows).most_common())


def instances_report(instances: Instances, labels: LabelSet, threshold: float = DEFAULT_SCORE_THRESHOLD) -> dict:
    """What report.json and <id>_instances.json say about a model's objects."""
    rows = instance_rows(instances, labels, threshold)
    return {"score_threshold": threshold, "count": len(rows), "below_threshold": len(instances) - len(rows),
            "count_per_class": count_per_class(rows), "objects": [row.to_dict() for row in rows]}
