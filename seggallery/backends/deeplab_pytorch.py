"""kazuto1011/deeplab-pytorch's DeepLab v2 checkpoints (GitHub release v1.0), run on seggallery/archs/deeplabv2.

The release files are plain state_dicts of that repository's MSC(DeepLabV2) module (keys `base.layer1...`);
they load into our module with strict keys. Preprocessing is that repository's demo.py: cv2 (bilinear,
uint8) resizes the photo so its long side is `preprocess.size` (513), channels go to BGR and the Caffe
mean is subtracted, without a std. Scores are resized to the network input, then to the photo.

COCO-Stuff checkpoints have 182 outputs, of which 11 (COCO's withdrawn thing classes: street sign, hat,
...) were never supervised; `source.unused_outputs` lists them and `class_scores` drops them, so the
remaining 171 are the catalog's cocostuff171 classes in order.

The release files carry no hash in their names and none is published: an entry without `sha256` says
so in `unpinned_reason`, and its file is then checked only by loading with strict keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..archs.deeplabv2 import deeplabv2_resnet101_msc
from ..catalog import ModelSpec
from ..runtime.label_map import upsample_argmax
from ..runtime.segmenter import Segmenter
from . import torchhub, weights
from .base import UrlFile, WeightFile


def files(spec: ModelSpec) -> list[WeightFile]:
    source = spec.source
    return [WeightFile((UrlFile(source["url"], source.get("sha256"), source["file"]),))]


def checkpoint_path(spec: ModelSpec) -> Path:
    return torchhub.cache_path(spec.source["file"])


def describe_source(spec: ModelSpec) -> str:
    url = spec.source["url"]
    pin = "" if spec.source.get("sha256") else " (no published sha256)"
    return f"[{url.rsplit('/', 1)[-1]}]({url}){pin}"


def resize_long_side(image: np.ndarray, size: int) -> np.ndarray:
    """demo.py's resize: cv2 bilinear on uint8 by the factor that makes the long side `size` (cv2 rounds
    the output size and maps coordinates with the factor itself)."""
    import cv2  # opencv-python-headless (requirements.txt)

    scale = size / max(image.shape[:2])
    return cv2.resize(image, dsize=None, fx=scale, fy=scale)


def outputs_used(spec: ModelSpec) -> list[int]:
    """The network outputs that are the label set's classes, in order."""
    unused = set(spec.source.get("unused_outputs", ()))
    used = [i for i in range(int(spec.source["outputs"])) if i not in unused]
    if len(used) != len(spec.label_set):
        raise ValueError(f"{spec.id}: {len(used)} used outputs for {len(spec.label_set)} classes of {spec.labels}")
    return used


class DeepLabV2Segmenter(Segmenter):
    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        super().__init__(spec, module, device)
        pre = spec.preprocess
        self.size = int(pre["size"])
        self.mean_bgr = torch.tensor(pre["mean_bgr"], device=device, dtype=torch.float32).view(3, 1, 1)
        used = outputs_used(spec)
        self.used = None if len(used) == int(spec.source["outputs"]) else torch.tensor(used, device=device)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        bgr = self.upload(resize_long_side(image, self.size)).permute(2, 0, 1).flip(0).float()
        return (bgr - self.mean_bgr).unsqueeze(0)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        return self.module(inputs), tuple(inputs.shape[-2:])

    def class_scores(self, outputs: tuple[torch.Tensor, tuple[int, int]]) -> torch.Tensor:
        scores = outputs[0]
        return scores if self.used is None else scores.index_select(1, self.used)

    def postprocess(self, outputs: tuple[torch.Tensor, tuple[int, int]], size: tuple[int, int]) -> torch.Tensor:
        return upsample_argmax(self.class_scores(outputs), size, via=outputs[1])


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    checkpoint = files(spec)
    (path,) = weights.fetch(checkpoint)

    def load() -> torch.nn.Module:
        with torch.device("meta"):  # no initialisation of 43 M parameters that the checkpoint replaces
            model = deeplabv2_resnet101_msc(int(spec.source["outputs"]))
        model.load_state_dict(load_state_dict(path), strict=True, assign=True)
        return model

    model = torchhub.load_repairing(path, load, lambda: weights.fetch(checkpoint), spec.source.get("sha256"))
    return DeepLabV2Segmenter(spec, model, device)
