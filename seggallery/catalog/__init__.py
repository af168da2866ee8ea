"""What exists: the model catalog (models/*.toml) and the label sets (labels/*.json), as plain data.

Nothing here imports torch: the catalog is read by the CLI's `models` listing, the README table
and the UI before any model is loaded.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_DIR = Path(__file__).parent
BACKENDS = ("torchvision", "smp", "transformers", "mmseg", "native", "deeplab_pytorch")


@dataclass(frozen=True)
class LabelSet:
    id: str
    name: str
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int | None = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def palette(self) -> list[int]:
        """Flat RGB list as PIL's Image.putpalette wants it."""
        return [channel for color in self.colors for channel in color]


@dataclass(frozen=True)
class ModelSpec:
    """One catalog checkpoint: what it is, where its weights live, how it was evaluated."""

    id: str
    name: str
    family: str
    backend: str
    labels: str
    source: dict
    preprocess: dict
    license: str
    paper: str
    commercial_use: bool = True  # False: the weights' licence does not allow commercial use (shown with the model)
    metrics: tuple[dict, ...] = ()
    notes: str = ""  # what sets this checkpoint apart, shown under it in the Explanations tab
    task: str = "semantic"  # semantic (a class per pixel), instance (objects), panoptic (objects + stuff)
    precision: str = "auto"  # lowest precision allowed: auto (any), bf16 (no fp16), fp32 (no autocast)
    precision_reason: str = ""  # why an entry limits its precision

    @property
    def label_set(self) -> LabelSet:
        return label_set(self.labels)

    @property
    def licence_note(self) -> str:
        """What the model picker and the model listings add to a model whose weights are not for commercial use."""
        return "" if self.commercial_use else "weights not for commercial use"


class CatalogError(ValueError):
    """A catalog or label file is malformed."""


PRECISION_LIMITS = ("auto", "bf16", "fp32")
TASKS = ("semantic", "instance", "panoptic")
_REQUIRED = ("id", "name", "family", "backend", "labels", "source", "preprocess", "license", "paper")


def _spec_from_entry(entry: dict) -> ModelSpec:
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise CatalogError(f"catalog entry {entry.get('id', '?')!r} lacks {', '.join(missing)}")
    if entry["backend"] not in BACKENDS:
        raise CatalogError(f"{entry['id']}: unknown backend {entry['backend']!r}")
    precision = entry.get("precision", "auto")
    if precision not in PRECISION_LIMITS:
        raise CatalogError(f"{entry['id']}: precision must be one of {', '.join(PRECISION_LIMITS)}, not {precision!r}")
    if precision != "auto" and not entry.get("precision_reason"):
        raise CatalogError(f"{entry['id']}: an entry that limits its precision says why in precision_reason")
    if not isinstance(entry.get("commercial_use", True), bool):
        raise CatalogError(f"{entry['id']}: commercial_use must be true or false")
    task = entry.get("task", "semantic")
    if task not in TASKS:
        raise CatalogError(f"{entry['id']}: task must be one of {', '.join(TASKS)}, not {task!r}")
    for metric in entry.get("metrics", ()):
        if not {"dataset", "source"} <= metric.keys():
            raise CatalogError(f"{entry['id']}: every published metric needs a dataset and a source")
    return ModelSpec(
        id=entry["id"],
        name=entry["name"],
        family=entry["family"],
        backend=entry["backend"],
        labels=entry["labels"],
        source=dict(entry["source"]),
        preprocess=dict(entry["preprocess"]),
        license=entry["license"],
        paper=entry["paper"],
        commercial_use=entry.get("commercial_use", True),
        metrics=tuple(entry.get("metrics", ())),
        notes=entry.get("notes", ""),
        task=task,
        precision=precision,
        precision_reason=entry.get("precision_reason", ""),
    )


@cache
def catalog() -> dict[str, ModelSpec]:
    """All catalog entries by id: models/<backend>.toml in BACKENDS order, each in file order."""
    specs: dict[str, ModelSpec] = {}
    for backend in BACKENDS:
        path = CATALOG_DIR / "models" / f"{backend}.toml"
        if path.exists():
            with open(path, "rb") as f:
                _add_entries(specs, tomllib.load(f).get("model", []), backend)
    return specs


def _add_entries(specs: dict[str, ModelSpec], entries: list[dict], backend: str) -> None:
    for entry in entries:
        spec = _spec_from_entry(entry)
        if spec.backend != backend:
            raise CatalogError(f"{spec.id}: backend {spec.backend!r} listed in models/{backend}.toml")
        if spec.id in specs:
            raise CatalogError(f"duplicate catalog id {spec.id!r}")
        if spec.id != spec.id.lower() or " " in spec.id:
            raise CatalogError(f"catalog id {spec.id!r} must be a lowercase slug")
        label_set(spec.labels)  # fail early on a typo'd label set
        specs[spec.id] = spec


def get_spec(model_id: str) -> ModelSpec:
    try:
        return catalog()[model_id]
    except KeyError:
        raise KeyError(f"unknown model id {model_id!r}; `python -m seggallery models` lists them") from None


@cache
def presets() -> dict[str, dict]:
    """Named model selections for the UI (presets.toml): {name: {"models": [...], "description": ...}}."""
    with open(CATALOG_DIR / "presets.toml", "rb") as f:
        data = tomllib.load(f)["preset"]
    result = {}
    for preset in data:
        for model_id in preset["models"]:
            get_spec(model_id)
        result[preset["name"]] = preset
    return result


@cache
def label_set(label_set_id: str) -> LabelSet:
    path = CATALOG_DIR / "labels" / f"{label_set_id}.json"
    if not path.exists():
        raise CatalogError(f"unknown label set {label_set_id!r} (no {path.name} in catalog/labels)")
    data = json.loads(path.read_text())
    classes = data["classes"]
    return LabelSet(
        id=data["id"],
        name=data["name"],
        names=tuple(c["name"] for c in classes),
        colors=tuple(tuple(c["color"]) for c in classes),
        ignore_index=data.get("ignore_index"),
    )


def label_set_ids() -> list[str]:
    return sorted(p.stem for p in (CATALOG_DIR / "labels").glob("*.json"))
