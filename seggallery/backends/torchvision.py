"""torchvision's models, loaded through its own weights API (torch hub cache, hash-checked).

Semantic segmentation (FCN, DeepLabV3, LR-ASPP) runs here; instance segmentation (Mask R-CNN, catalog
task "instance") through torchvision_instances.py. Both load the same way: the catalog names the builder
and the weights enum, torchvision downloads into torch hub's cache and checks the file name's sha256 prefix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision.models
from torchvision.transforms import functional as TF

from ..catalog import ModelSpec
from ..runtime.segmenter import Segmenter
from . import torchhub, weights
from .base import UrlFile, WeightFile
from .torchvision_instances import TorchvisionInstanceSegmenter


def weights_enum(spec: ModelSpec):
    """`"FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"` -> that torchvision Weights member."""
    return torchvision.models.get_weight(spec.source["weights"])


def builder(spec: ModelSpec):
    """The catalog's `builder`, e.g. "fcn_resnet50" -> torchvision.models.segmentation.fcn_resnet50."""
    return torchvision.models.get_model_builder(spec.source["builder"])


def files(spec: ModelSpec) -> list[WeightFile]:
    # torchvision's file names end in the first hex digits of the file's sha256: that is what is checked.
    url = weights_enum(spec).url
    name = torchhub.file_name(url)
    return [WeightFile((UrlFile(url, torchhub.name_hash_prefix(name), name),))]


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where torch.hub keeps this checkpoint: $TORCH_HOME/hub/checkpoints/<file name of the URL>."""
    return torchhub.cache_path(files(spec)[0].name)


def describe_source(spec: ModelSpec) -> str:
    return f"torchvision `{spec.source['weights']}`"


class TorchvisionSegmenter(Segmenter):
    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        super().__init__(spec, module, device)
        # The checkpoint's own eval preprocessing: resize short side, scale to [0, 1], ImageNet mean/std.
        self.transforms = weights_enum(spec).transforms()
        # transforms() rebuilds mean/std on the device and checks std != 0 on every call: two blocking
        # copies and a host sync on a GPU. The same arithmetic with constants made once needs none.
        self.mean = torch.tensor(self.transforms.mean).view(-1, 1, 1).to(device)
        self.std = torch.tensor(self.transforms.std).view(-1, 1, 1).to(device)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """weights.transforms() on the device, operation for operation (tests check the result is identical)."""
        transforms = self.transforms
        tensor = self.upload(image).permute(2, 0, 1).contiguous()
        resized = TF.resize(tensor, transforms.resize_size, interpolation=transforms.interpolation, antialias=transforms.antialias)
        scaled = resized.to(torch.float32) / 255.0  # convert_image_dtype, uint8 -> float
        return scaled.sub_(self.mean).div_(self.std).unsqueeze(0)  # normalize

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.module(inputs)["out"]


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    checkpoint = files(spec)
    (path,) = weights.fetch(checkpoint)
    build_model = builder(spec)
    # torchvision's own weights API loads the cached file strictly (weights only: see seggallery.safety)
    model = torchhub.load_repairing(path, lambda: build_model(weights=weights_enum(spec)), lambda: weights.fetch(checkpoint),
                                    torchhub.name_hash_prefix(path.name))
    if spec.task == "instance":
        return TorchvisionInstanceSegmenter(spec, model, device, weights_enum(spec))
    model.aux_classifier = None  # the auxiliary head only helps training: skip it at inference
    return TorchvisionSegmenter(spec, model, device)
