"""What running a model gives: a Prediction, or a Failure that says why and what fixes it.

A Prediction always carries a label map at the photo's size (for instance and panoptic models: their
semantic reading), so that every piece of evidence can treat all models alike; models that find objects
also carry their Instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..catalog import LabelSet, ModelSpec


class WeightsUnavailable(RuntimeError):
    """The weights are not in the local cache and could not be downloaded."""


@dataclass
class Instances:
    """The objects an instance or panoptic model found, at the photo's size, best first."""

    masks: np.ndarray  # N x H x W bool
    labels: np.ndarray  # N class ids of the spec's label set
    scores: np.ndarray  # N confidences in [0, 1]
    boxes: np.ndarray | None = None  # N x 4 (x0, y0, x1, y1) in pixels

    def __post_init__(self):
        count = len(self.masks)
        if len(self.labels) != count or len(self.scores) != count or (self.boxes is not None and len(self.boxes) != count):
            raise ValueError(f"instances disagree on their number: {count} masks, {len(self.labels)} labels, "
                             f"{len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.masks)

    def above(self, threshold: float) -> Instances:
        keep = self.scores >= threshold
        return Instances(self.masks[keep], self.labels[keep], self.scores[keep],
                         None if self.boxes is None else self.boxes[keep])


def first_use_summary(timings_ms: dict[str, float]) -> str:
    """What a cold call spent before running: 'weights downloaded in 12.3 s, loaded in 850 ms'."""
    parts = [f"weights downloaded in {timings_ms['download'] / 1000:.1f} s"] if "download" in timings_ms else []
    if "load" in timings_ms:
        parts.append(f"loaded in {timings_ms['load']:.0f} ms")
    return ", ".join(parts)


@dataclass
class Prediction:
    """One model's answer for one image: a label map at the image's size plus how it was obtained."""

    spec: ModelSpec
    mask: np.ndarray  # H x W, int32 class ids of spec.label_set
    timings_ms: dict[str, float]  # preprocess / forward / postprocess / total (+ download and load on a cold call)
    device: str
    precision: str
    cold: bool  # the model was loaded (and maybe downloaded) during this call
    confidence: np.ndarray | None = None  # h x w max class probability at the model's output resolution
    entropy: np.ndarray | None = None  # h x w entropy / log(C), same resolution (evidence.uncertainty)
    notes: list[str] = field(default_factory=list)  # what was done differently, for the user (e.g. an OOM retry)
    precision_note: str = ""  # why this precision: device, catalog opt-out, measured fp32 agreement
    torch_device: str = "cpu"  # where it ran, as torch names it ("cuda:0"): overlays are composited there
    instances: Instances | None = None  # instance / panoptic tasks: the objects behind `mask`
    top_class_ids: np.ndarray | None = None  # k x h x w: the k most probable classes, on the grid of `confidence`
    top_class_probs: np.ndarray | None = None  # k x h x w: their probabilities

    @property
    def labels(self) -> LabelSet:
        return self.spec.label_set

    @property
    def task(self) -> str:
        return self.spec.task


@dataclass
class Failure:
    """A model that could not run, with the reason and the command that fixes it."""

    spec: ModelSpec
    reason: str
    fix: str = ""


Result = Prediction | Failure


def fetch_command(spec: ModelSpec) -> str:
    return f"python -m seggallery fetch {spec.id}"


def describe_failure(spec: ModelSpec, error: BaseException) -> tuple[str, str]:
    """A reason a user can act on, and the command that fixes it (empty when there is none)."""
    if isinstance(error, WeightsUnavailable):
        return (
            f"The weights of {spec.name} are not in the local cache and could not be downloaded: {error}",
            f"{fetch_command(spec)}   (run it where the network can reach the weights' host)",
        )
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return (
            f"{spec.name} ran out of memory on this device, also at a lower resolution.",
            "Use a smaller image, fewer models at once, or SEGGALLERY_DEVICE=cpu.",
        )
    if isinstance(error, ImportError):
        return (f"{spec.name} needs a package that is not installed: {error}", "pip install -r requirements.txt")
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (f"{spec.name} failed: {type(error).__name__}: {message}"[:500], "")
