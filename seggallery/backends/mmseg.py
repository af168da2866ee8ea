"""OpenMMLab mmsegmentation model-zoo checkpoints, run on SegGallery's own PyTorch modules (no mmcv).

A catalog entry names the published file (`source.url`, whose name ends in the first 8 hex digits of
its sha256), the architecture (`source.backbone`, `source.decode_head`, `source.align_corners` and, where
the model has one, `source.neck`) and, optionally, a copy of the file on the Hugging Face Hub
(`source.mirror = {repo, filename, revision}`) for hosts that cannot reach download.openmmlab.com. Preprocessing is mmseg's test pipeline, from the
entry's `preprocess`: keep-ratio resize (cv2 bilinear on uint8, as mmcv.imrescale) so that the image
fits `scale`, RGB mean/std normalisation, whole-image inference; the scores are resized to the network
input's size and then to the image's, as mmseg's EncoderDecoder does.

An entry with `preprocess.size_divisor` (U-Net, whose four poolings need sides that are multiples of 16)
has its network input padded with zeros (after normalisation) on the right and at the bottom to such a
size, and the scores cropped back to the unpadded input before resizing. mmseg's UNet refuses other
sizes instead (an assertion); on Cityscapes' 2048 x 1024 frames, where its numbers come from, nothing is
padded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..archs.encoder_decoder import EncoderDecoder, build_encoder_decoder, from_mmseg_state_dict
from ..catalog import ModelSpec
from ..runtime.label_map import upsample_argmax
from ..runtime.segmenter import Segmenter
from . import torchhub, weights
from .base import HubFile, UrlFile, WeightFile


def checkpoint_name(spec: ModelSpec) -> str:
    return torchhub.file_name(spec.source["url"])


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where torch.hub keeps the official file: $TORCH_HOME/hub/checkpoints/<its published name>."""
    return torchhub.cache_path(checkpoint_name(spec))


def hash_prefix(spec: ModelSpec) -> str:
    """The sha256 prefix in the published file name (`..._20200617_010715-52dc5306.pth` -> 52dc5306)."""
    prefix = torchhub.name_hash_prefix(checkpoint_name(spec))
    if prefix is None:
        raise ValueError(f"{spec.id}: {checkpoint_name(spec)} carries no sha256 prefix")
    return prefix


def files(spec: ModelSpec) -> list[WeightFile]:
    """The checkpoint: from its Hub mirror when the entry names one (tried first, checked against the published
    sha256 prefix), else from the published URL."""
    official = UrlFile(spec.source["url"], hash_prefix(spec), checkpoint_name(spec))
    mirror = spec.source.get("mirror")
    if mirror is None:
        return [WeightFile((official,))]
    copy = HubFile(mirror["repo"], mirror["revision"], mirror["filename"], sha256=hash_prefix(spec), label="mirror")
    return [WeightFile((copy, official))]


def describe_source(spec: ModelSpec) -> str:
    url = spec.source["url"]
    return f"[{checkpoint_name(spec)}]({url})"


# Plain-data numpy types that some older training scripts left in a checkpoint's `meta` (a seed, a
# learning rate). Allowing them keeps the loader in weights_only mode: nothing in the file can run code.
_NUMPY_DATA_GLOBALS = {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype"}


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The `state_dict` of an mmseg checkpoint ({'meta': ..., 'state_dict': ...}), read with weights_only=True."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        if not unsafe <= _NUMPY_DATA_GLOBALS:
            raise ValueError(f"{path.name} holds Python objects that a weights file should not: {sorted(unsafe)}") from None
        with torch.serialization.safe_globals(_numpy_data_types()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path.name} is not an mmsegmentation checkpoint (no 'state_dict')")
    return checkpoint["state_dict"]


def _numpy_data_types() -> list:
    """numpy's scalar constructor, np.dtype and the classes of the numeric dtypes it may build."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    numeric = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
               np.float16, np.float32, np.float64, np.complex64, np.complex128]
    return [scalar, np.dtype, *{type(np.dtype(t)) for t in numeric}]


def build_module(spec: ModelSpec) -> EncoderDecoder:
    source = spec.source
    return build_encoder_decoder(source["backbone"], source["decode_head"], len(spec.label_set), source["align_corners"],
                                 source.get("head_args"), neck=source.get("neck"))


def load_module(spec: ModelSpec, path: Path) -> EncoderDecoder:
    return module_from_state_dict(spec, load_state_dict(path))


def module_from_state_dict(spec: ModelSpec, mmseg_state: dict[str, torch.Tensor]) -> EncoderDecoder:
    """Our module with an mmseg checkpoint's weights: every key must match (strict) but the training-only parts'."""
    with torch.device("meta"):  # no time spent initialising weights that are overwritten at once
        module = build_module(spec)
    module.load_state_dict(from_mmseg_state_dict(mmseg_state, spec.source["backbone"]), strict=True, assign=True)
    return module


def rescale(image: np.ndarray, scale: tuple[int, int]) -> np.ndarray:
    """mmcv.imrescale(image, scale, 'bilinear'): the largest keep-ratio size whose long side fits
    max(scale) and short side fits min(scale), sizes rounded half up, cv2 bilinear on uint8."""
    import cv2  # opencv-python-headless, as albumentations installs it

    h, w = image.shape[:2]
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    size = (int(w * factor + 0.5), int(h * factor + 0.5))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def pad_to_multiple(inputs: torch.Tensor, divisor: int) -> torch.Tensor:
    """N x C x H x W, zero-padded on the right and at the bottom to sides divisible by `divisor` (itself if they are)."""
    h, w = inputs.shape[-2:]
    bottom, right = -h % divisor, -w % divisor
    if not (bottom or right):
        return inputs
    return torch.nn.functional.pad(inputs, (0, right, 0, bottom))


def crop_to_fraction(scores: torch.Tensor, size: tuple[int, int], padded_size: tuple[int, int]) -> torch.Tensor:
    """The part of scores computed for a padded input that covers the unpadded `size` (top-left), rounded up."""
    rows = -(-scores.shape[-2] * size[0] // padded_size[0])
    cols = -(-scores.shape[-1] * size[1] // padded_size[1])
    return scores[..., :rows, :cols]


class MmsegSegmenter(Segmenter):
    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        super().__init__(spec, module, device)
        pre = spec.preprocess
        self.scale = tuple(pre["scale"])
        self.mean = torch.tensor(pre["mean"], device=device).view(3, 1, 1)
        self.std = torch.tensor(pre["std"], device=device).view(3, 1, 1)
        self.align_corners = bool(spec.source["align_corners"])
        self.size_divisor = int(pre.get("size_divisor", 1))

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        resized = self.upload(rescale(image, self.scale))  # resized on the host exactly as mmcv does, normalised on the device
        return ((resized.permute(2, 0, 1).float() - self.mean) / self.std).unsqueeze(0)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        size = tuple(inputs.shape[-2:])
        padded = pad_to_multiple(inputs, self.size_divisor)
        if padded is inputs:
            return self.module(inputs), size
        scores = self.module(padded)
        return crop_to_fraction(scores, size, tuple(padded.shape[-2:])), size

    def class_scores(self, outputs: tuple[torch.Tensor, tuple[int, int]]) -> torch.Tensor:
        return outputs[0]

    def postprocess(self, outputs: tuple[torch.Tensor, tuple[int, int]], size: tuple[int, int]) -> torch.Tensor:
        scores, input_size = outputs
        return upsample_argmax(scores, size, via=input_size, align_corners=self.align_corners)


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    (checkpoint,) = files(spec)
    path = weights.fetch_file(checkpoint)
    module = torchhub.load_repairing(path, lambda: load_module(spec, weights.fetch_file(checkpoint)),
                                     lambda: weights.fetch_file(checkpoint), hash_prefix(spec))
    return MmsegSegmenter(spec, module, device)
