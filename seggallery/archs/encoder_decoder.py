"""mmsegmentation's EncoderDecoder at inference: backbone -> (neck) -> decode head -> per-class scores.

The module returns the head's scores at its own resolution (1/8 of the input for FCN, PSPNet, DeepLabV3,
DANet and CCNet on the D8 backbone, for FastFCN, whose JPU neck rebuilds a 1/8 map from a stride-32
backbone, and for CGNet, Fast-SCNN and BiSeNetV2; 1/4 for DeepLabV3+ and UPerNet, 1/2 for ERFNet, 1/1 for
U-Net); upsampling them to the image is the caller's business (mmseg resizes them to the network input's
size, then to the image's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import torch
from torch import nn

from .bisenetv2 import BiSeNetV2
from .cgnet import CGNet
from .erfnet import ERFNet
from .fast_scnn import FastSCNN
from .heads import DECODE_HEADS
from .necks import NECKS
from .resnet_v1c import MMSEG_STEM_TO_TIMM, ResNetV1c
from .unet import UNet


@dataclasses.dataclass(frozen=True)
class Backbone:
    """How to build a catalog backbone, and which prefixes of mmseg's key names it calls otherwise
    (ResNetV1c is timm's resnet50c, whose stem is named differently; the others keep mmseg's names)."""

    build: Callable[[], nn.Module]
    mmseg_renames: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def our_key(self, mmseg_key: str) -> str:
        for old, new in self.mmseg_renames.items():
            if mmseg_key.startswith(old):
                return new + mmseg_key[len(old):]
        return mmseg_key

    def mmseg_key(self, our_key: str) -> str:
        for old, new in self.mmseg_renames.items():
            if our_key.startswith(new):
                return old + our_key[len(new):]
        return our_key


# Backbone names used in the catalog -> the backbone they build.
BACKBONES = {
    "resnet50_v1c_d8": Backbone(lambda: ResNetV1c(output_stride=8), MMSEG_STEM_TO_TIMM),  # "R-50-D8": dilated stages 3, 4
    "resnet50_v1c": Backbone(lambda: ResNetV1c(output_stride=32), MMSEG_STEM_TO_TIMM),  # "R-50" as UPerNet uses it
    "resnet50_v1c_d32": Backbone(lambda: ResNetV1c(output_stride=32, dilate_strided=True),  # "R-50-D32" (FastFCN)
                                 MMSEG_STEM_TO_TIMM),
    "unet_s5_d16": Backbone(UNet),  # 5 levels, 4 max-poolings (1/16 at the bottom)
    "erfnet": Backbone(ERFNet),
    "cgnet": Backbone(CGNet),  # CGNet-M3N21
    "fast_scnn": Backbone(FastSCNN),
    "bisenetv2": Backbone(BiSeNetV2),
}
# Paths of a checkpoint's training-only parts, which inference never runs and which are not built here: the
# auxiliary FCN heads, and DANet's per-branch classifiers (DAHead's pam/cam losses).
TRAINING_ONLY = ("auxiliary_head.", "decode_head.pam_conv_seg.", "decode_head.cam_conv_seg.")


class EncoderDecoder(nn.Module):
    """Module paths: `backbone` (see the backbone's class: ResNetV1c, UNet, ERFNet, CGNet, FastSCNN, BiSeNetV2),
    `neck` where the model has one (mmseg's `neck.*` keys; absent otherwise, so it adds no keys) and `decode_head`."""

    def __init__(self, backbone: nn.Module, decode_head: nn.Module, neck: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        if neck is not None:
            self.neck = neck
        self.decode_head = decode_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        if hasattr(self, "neck"):
            features = self.neck(features)
        return self.decode_head(features)


def build_encoder_decoder(backbone: str, decode_head: str, num_classes: int, align_corners: bool,
                          head_args: Mapping | None = None, neck: str | None = None) -> EncoderDecoder:
    """The catalog's names (`source.backbone`, `.decode_head`, `.neck`) -> the module, with random weights.
    `head_args`: the catalog's `source.head_args`, keyword arguments of the head class (the config's values
    where they differ from the head's defaults)."""
    for kind, name, known in (("backbone", backbone, BACKBONES), ("decode head", decode_head, DECODE_HEADS),
                              ("neck", neck, NECKS)):
        if name is not None and name not in known:
            raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    head = DECODE_HEADS[decode_head](num_classes, align_corners, **dict(head_args or {}))
    return EncoderDecoder(BACKBONES[backbone].build(), head, NECKS[neck]() if neck is not None else None)


def from_mmseg_state_dict(state_dict: dict[str, torch.Tensor], backbone: str) -> dict[str, torch.Tensor]:
    """An mmseg EncoderDecoder state_dict -> this module's, minus the training-only parts.

    The auxiliary FCN heads (on an earlier backbone map) and DAHead's per-branch classifiers only add
    training losses; they are not built here, so their weights (and nothing else: TRAINING_ONLY) are
    dropped. Backbone keys are renamed where our backbone names them otherwise (`Backbone.mmseg_renames`);
    every other key (neck.*, decode_head.*) is kept as is.
    """
    renames = BACKBONES[backbone]
    converted = {}
    for key, value in state_dict.items():
        if key.startswith(TRAINING_ONLY):
            continue
        if key.startswith("backbone."):
            key = "backbone." + renames.our_key(key[len("backbone."):])
        converted[key] = value
    return converted
