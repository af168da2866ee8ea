"""Our own architectures (seggallery/archs) with weights from a plain URL, checked against a sha256.

A catalog entry names `source = { url, sha256, file }`: the file is downloaded once into torch hub's
checkpoint cache ($TORCH_HOME/hub/checkpoints/<file>) with its sha256 checked (backends/torchhub.py; a
cached file that later fails to load and no longer matches is replaced), and it is read with
torch.load(weights_only=True). The architecture is chosen by the entry's family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..catalog import ModelSpec
from ..runtime.segmenter import Segmenter
from . import torchhub, weights
from .base import UrlFile, WeightFile


def _enet(num_classes: int) -> torch.nn.Module:
    from ..archs.enet import ENet

    return ENet(num_classes)


# family -> constructor(num_classes); the class count comes from the entry's label set
ARCHITECTURES: dict[str, Callable[[int], torch.nn.Module]] = {"enet": _enet}


def files(spec: ModelSpec) -> list[WeightFile]:
    source = spec.source
    return [WeightFile((UrlFile(source["url"], source["sha256"], source["file"]),))]


def checkpoint_path(spec: ModelSpec) -> Path:
    return torchhub.cache_path(spec.source["file"])


def describe_source(spec: ModelSpec) -> str:
    url = spec.source["url"]
    return f"[{url.rsplit('/', 1)[-1]}]({url})"


def load_state_dict(spec: ModelSpec) -> dict[str, torch.Tensor]:
    # map_location: checkpoints saved from a GPU must also load on a machine without one
    return torch.load(checkpoint_path(spec), map_location="cpu", weights_only=True)


class NativeSegmenter(Segmenter):
    """Resize to the checkpoint's input size (when the photo differs), scale to [0, 1], optional mean/std."""

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        super().__init__(spec, module, device)
        self.input_size = tuple(spec.preprocess["resize"])  # (height, width)
        self.mean = torch.tensor(spec.preprocess.get("mean", [0.0, 0.0, 0.0]), device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.preprocess.get("std", [1.0, 1.0, 1.0]), device=device).view(1, 3, 1, 1)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        tensor = self.upload(image).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        if tuple(tensor.shape[-2:]) != self.input_size:
            tensor = F.interpolate(tensor, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return (tensor - self.mean) / self.std


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    if spec.family not in ARCHITECTURES:
        raise ValueError(f"{spec.id}: no native architecture for family {spec.family!r} (have {', '.join(ARCHITECTURES)})")
    checkpoint = files(spec)
    (path,) = weights.fetch(checkpoint)

    def load() -> torch.nn.Module:
        model = ARCHITECTURES[spec.family](len(spec.label_set))
        model.load_state_dict(load_state_dict(spec), strict=True)
        return model

    model = torchhub.load_repairing(path, load, lambda: weights.fetch(checkpoint), spec.source["sha256"])
    return NativeSegmenter(spec, model, device)
