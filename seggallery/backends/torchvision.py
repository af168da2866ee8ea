"""torchvision's segmentation models, loaded through its own weights API (torch hub cache, hash-checked)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torchvision.models import segmentation as tv_segmentation
from torchvision.transforms import functional as TF

from .. import integrity
from ..catalog import ModelSpec
from ..engine import Segmenter
from . import WeightsUnavailable


def weights_enum(spec: ModelSpec):
    """`"FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"` -> that torchvision Weights member."""
    enum_name, member = spec.source["weights"].split(".")
    return getattr(getattr(tv_segmentation, enum_name), member)


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where torch.hub keeps this checkpoint: $TORCH_HOME/hub/checkpoints/<file name of the URL>."""
    url = weights_enum(spec).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def is_cached(spec: ModelSpec) -> bool:
    return checkpoint_path(spec).is_file()


def fetch(spec: ModelSpec) -> None:
    path = checkpoint_path(spec)
    if path.is_file():
        return
    url = weights_enum(spec).url
    path.parent.mkdir(parents=True, exist_ok=True)
    # torchvision's file names end in the first hex digits of the file's sha256: torch.hub checks them.
    hash_prefix = torch.hub.HASH_REGEX.search(path.name).group(1)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=hash_prefix, progress=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a hash mismatch is a RuntimeError
        raise WeightsUnavailable(f"{url}: {error}") from error


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
    fetch(spec)
    model = _model_from_cache(spec)
    model.aux_classifier = None  # the auxiliary head only helps training: skip it at inference
    return TorchvisionSegmenter(spec, model, device)


def _model_from_cache(spec: ModelSpec) -> torch.nn.Module:
    """The model with its cached weights (loaded strictly, weights only: see seggallery.safety).

    A file that fails to load and no longer matches the hash in its name is damaged: it is removed and
    fetched once more. A file that matches its hash and still fails is a real error and is raised as is.
    """
    builder = getattr(tv_segmentation, spec.source["builder"])
    try:
        return builder(weights=weights_enum(spec))
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
        path = checkpoint_path(spec)
        if isinstance(error, torch.OutOfMemoryError) or integrity.torch_hub_file_intact(path):
            raise
        path.unlink(missing_ok=True)
        damaged = f"the cached {path.name} was damaged (it fails to load and no longer matches its hash) and has been removed"
        try:
            fetch(spec)
        except WeightsUnavailable as fetch_error:
            raise WeightsUnavailable(f"{damaged}; fetching it again failed: {fetch_error}") from error
    return builder(weights=weights_enum(spec))
