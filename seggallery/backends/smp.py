"""segmentation-models-pytorch checkpoints from smp-hub, with each checkpoint's own eval preprocessing.

An smp-hub repo holds `config.json` (the smp class and its arguments), `model.safetensors` and
`albumentations_config_eval.json`, the transform its card tells users to run before the model.
"""

from __future__ import annotations

import albumentations
import numpy as np
import segmentation_models_pytorch as smp
import torch

from ..catalog import ModelSpec
from ..engine import Segmenter
from . import hub

DEFAULT_FILES = ["config.json", "model.safetensors", "albumentations_config_eval.json"]


def files(spec: ModelSpec) -> list[str]:
    """The repo files this checkpoint needs: the catalog's list, else the smp-hub layout."""
    return list(spec.source.get("files", DEFAULT_FILES))


def pinned_files(spec: ModelSpec) -> list[hub.PinnedFile]:
    return hub.pinned(spec.source["repo"], spec.source["revision"], files(spec))


def is_cached(spec: ModelSpec) -> bool:
    return hub.all_cached(pinned_files(spec))


def fetch(spec: ModelSpec) -> None:
    hub.download(spec.source["repo"], spec.source["revision"], files(spec))


class SmpSegmenter(Segmenter):
    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device, transform):
        super().__init__(spec, module, device)
        self.transform = transform

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        normalized = self.transform(image=image)["image"]  # H x W x 3 float32
        return torch.from_numpy(normalized).permute(2, 0, 1).unsqueeze(0).to(self.device)


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    folder = hub.download(spec.source["repo"], spec.source["revision"], files(spec))
    model = smp.from_pretrained(str(folder))  # reads config.json + model.safetensors, strict
    transform = albumentations.Compose.from_pretrained(str(folder), key="eval")
    return SmpSegmenter(spec, model, device, transform)
