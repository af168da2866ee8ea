"""Label sets onto one coarse taxonomy (catalog/taxonomy.toml), and the space two label sets share.

Masks of the same label set are compared class by class. Masks of different label sets are compared
in the coarse classes that both can name: a coarse class only one side has (VOC has no `road`) is
merged into `other` for that comparison, so that no model is blamed for a class it was never taught.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..catalog import CATALOG_DIR, CatalogError, LabelSet, label_set

IGNORE = 255  # the ignore id in coarse space (and the largest id a mask lookup table takes)
VOID = "void"  # pseudo coarse class for a label set's own ignore class (CamVid's Unlabelled)
OTHER = "other"


@cache
def _taxonomy() -> dict:
    with open(CATALOG_DIR / "taxonomy.toml", "rb") as f:
        return tomllib.load(f)


@cache
def coarse_labels() -> LabelSet:
    classes = _taxonomy()["coarse"]
    return LabelSet(
        id="coarse",
        name=f"Coarse taxonomy ({len(classes)} classes)",
        names=tuple(c["name"] for c in classes),
        colors=tuple(tuple(c["color"]) for c in classes),
        ignore_index=IGNORE,
    )


def mapped_label_sets() -> list[str]:
    return sorted(_taxonomy()["map"])


def mapping_problems(label_set_id: str) -> list[str]:
    """Everything wrong with one label set's table: unknown names, classes listed twice or never."""
    labels = label_set(label_set_id)
    table = _taxonomy().get("map", {}).get(label_set_id)
    if table is None:
        return [f"taxonomy.toml has no [map.{label_set_id}] table"]
    coarse = set(coarse_labels().names)
    names = [name.strip() for name in labels.names]
    problems, seen = [], {}
    for target, members in table.items():
        if target not in coarse and target != VOID:
            problems.append(f"{label_set_id}: unknown coarse class {target!r}")
        for name in members:
            if name not in names:
                problems.append(f"{label_set_id}: {name!r} (under {target!r}) is not a class of the label set")
            elif name in seen:
                problems.append(f"{label_set_id}: {name!r} is listed under {seen[name]!r} and {target!r}")
            else:
                seen[name] = target
            if target == VOID and name in names and names.index(name) != labels.ignore_index:
                problems.append(f"{label_set_id}: only the ignore class may be void, not {name!r}")
    problems += [f"{label_set_id}: {name!r} is not mapped" for name in names if name not in seen]
    return problems


@cache
def coarse_lut(label_set_id: str) -> np.ndarray:
    """256 entries: class id of the label set -> coarse id (IGNORE for void and ids it does not have)."""
    problems = mapping_problems(label_set_id)
    if problems:
        raise CatalogError("; ".join(problems))
    labels, coarse = label_set(label_set_id), coarse_labels()
    lut = np.full(256, IGNORE, dtype=np.int64)
    names = [name.strip() for name in labels.names]
    for target, members in _taxonomy()["map"][label_set_id].items():
        for name in members:
            lut[names.index(name)] = IGNORE if target == VOID else coarse.names.index(target)
    lut.setflags(write=False)
    return lut


def coarse_classes_of(label_set_id: str) -> set[int]:
    """Coarse ids that the label set can name."""
    lut = coarse_lut(label_set_id)
    return {int(v) for v in lut[: len(label_set(label_set_id))] if v != IGNORE}


@dataclass(frozen=True)
class Space:
    """The classes in which masks of some label sets are compared, and how each label set gets there."""

    labels: LabelSet
    luts: dict[str, np.ndarray]  # label set id -> 256-entry lookup table into `labels`
    native: bool  # True when all masks share one label set (no mapping at all)

    def project(self, mask: np.ndarray, label_set_id: str) -> np.ndarray:
        if self.native:
            return mask
        return self.luts[label_set_id][np.clip(mask, 0, 255)]

    @property
    def description(self) -> str:
        if self.native:
            return f"{self.labels.name}, class by class"
        return f"coarse classes both sides can name ({', '.join(self.labels.names)})"


def shared_space(label_set_ids) -> Space | None:
    """The comparison space of these label sets; None when they have no class in common beyond `other`."""
    ids = list(dict.fromkeys(label_set_ids))
    if len(ids) == 1:
        labels = label_set(ids[0])
        identity = np.arange(256, dtype=np.int64)
        return Space(labels, {ids[0]: identity}, native=True)
    coarse = coarse_labels()
    other = coarse.names.index(OTHER)
    common = set.intersection(*(coarse_classes_of(i) for i in ids)) - {other}
    if not common:
        return None
    kept = [other] + sorted(common)  # new id = position in `kept`
    renumber = np.full(256, IGNORE, dtype=np.int64)
    renumber[: len(coarse)] = kept.index(other)  # coarse classes one side lacks become `other`
    for new_id, coarse_id in enumerate(kept):
        renumber[coarse_id] = new_id
    labels = LabelSet(
        id="coarse:" + "+".join(ids),
        name="coarse classes shared by " + ", ".join(ids),
        names=tuple(coarse.names[i] for i in kept),
        colors=tuple(coarse.colors[i] for i in kept),
        ignore_index=IGNORE,
    )
    luts = {i: renumber[coarse_lut(i)] for i in ids}
    return Space(labels, luts, native=False)


def to_coarse(mask: np.ndarray, label_set_id: str) -> np.ndarray:
    """A mask of any mapped label set in the full coarse taxonomy (IGNORE where void)."""
    return coarse_lut(label_set_id)[np.clip(mask, 0, 255)]
