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
from ..runtime.segmenter import Segmenter
from . import weights
from .base import HubFile, WeightFile, hub_files, hub_source_text

DEFAULT_FILES = ["config.json", "model.safetensors", "albumentations_config_eval.json"]


def file_names(spec: ModelSpec) -> list[str]:
    """The repo files this checkpoint needs: the catalog's list, else the smp-hub layout."""
    return list(spec.source.get("files", DEFAULT_FILES))


def files(spec: ModelSpec) -> list[WeightFile]:
    source = spec.source
    return [WeightFile((HubFile(source["repo"], source["revision"], name),)) for name in file_names(spec)]


def describe_source(spec: ModelSpec) -> str:
    return hub_source_text(hub_files(files(spec))[0])


def split_normalize(transform: albumentations.Compose) -> tuple[albumentations.Compose, np.ndarray | None]:
    """The eval transform as (what runs on the host, its final Normalize as a 256 x 3 lookup table).

    albumentations normalises a uint8 photo through exactly such a table per channel (albucore's
    normalize_lut), so the table, read off a 0..255 ramp by the checkpoint's own Normalize, gives the same
    floats wherever it is indexed. A transform that does not end with a per-pixel ("standard") Normalize
    stays whole on the host.
    """
    steps = list(transform.transforms)
    last = steps[-1] if steps else None
    if not isinstance(last, albumentations.Normalize) or last.normalization != "standard":
        return transform, None
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)  # 256 x 1 x 3
    table = last(image=ramp)["image"][:, 0, :].astype(np.float32)
    return albumentations.Compose(steps[:-1], p=transform.p), table


class SmpSegmenter(Segmenter):
    """The host runs the transform up to its Normalize on the uint8 photo (the resize); the photo goes to the
    device as uint8 (a quarter of the float32 bytes) and is normalised there through the lookup table."""

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device, transform):
        super().__init__(spec, module, device)
        self.host_transform, table = split_normalize(transform)
        self.table = None if table is None else torch.from_numpy(table).to(device)  # 256 x 3

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        prepared = self.host_transform(image=image)["image"]  # H x W x 3: uint8, or float32 without a table
        if self.table is None:
            return torch.from_numpy(prepared).permute(2, 0, 1).unsqueeze(0).to(self.device)
        pixels = self.upload(prepared).long()
        channels = torch.arange(3, device=self.device)
        return self.table[pixels, channels].permute(2, 0, 1).unsqueeze(0)  # the same strides as the model card's


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    names = file_names(spec)
    folder = weights.snapshot_folder(weights.fetch(files(spec))[0], names[0])
    model = smp.from_pretrained(str(folder))  # reads config.json + model.safetensors, strict
    transform = albumentations.Compose.from_pretrained(str(folder), key="eval")
    return SmpSegmenter(spec, model, device, transform)
