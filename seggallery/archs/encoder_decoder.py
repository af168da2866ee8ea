"""mmsegmentation's EncoderDecoder at inference: backbone -> (neck) -> decode head -> per-class scores.

The module returns the head's scores at its own resolution (1/8 of the input for FCN, PSPNet and
DeepLabV3 on the D8 backbone and for FastFCN, whose JPU neck rebuilds a 1/8 map from a stride-32
backbone; 1/4 for DeepLabV3+ and UPerNet); upsampling them to the image is the
caller's business (mmseg resizes them to the network input's size, then to the image's).
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import DECODE_HEADS
from .necks import NECKS
from .resnet_v1c import ResNetV1c, timm_key

# Backbone names used in the catalog -> the backbone they build.
BACKBONES = {
    "resnet50_v1c_d8": lambda: ResNetV1c(output_stride=8),  # mmseg "R-50-D8": dilated stages 3 and 4
    "resnet50_v1c": lambda: ResNetV1c(output_stride=32),  # mmseg "R-50" as UPerNet uses it
    "resnet50_v1c_d32": lambda: ResNetV1c(output_stride=32, dilate_strided=True),  # mmseg "R-50-D32" (FastFCN)
}
# Paths of a checkpoint's training-only parts, which inference never runs and which are not built here: the
# auxiliary FCN head on stage 3, and DANet's per-branch classifiers (DAHead's pam/cam losses).
TRAINING_ONLY = ("auxiliary_head.", "decode_head.pam_conv_seg.", "decode_head.cam_conv_seg.")


class EncoderDecoder(nn.Module):
    """Module paths: `backbone` (ResNetV1c: conv1/bn1 stem, layer1..layer4), `neck` where the model has one
    (mmseg's `neck.*` keys; absent otherwise, so it adds no keys) and `decode_head`."""

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
                          neck: str | None = None) -> EncoderDecoder:
    """The catalog's names (`source.backbone`, `.decode_head`, `.neck`) -> the module, with random weights."""
    for kind, name, known in (("backbone", backbone, BACKBONES), ("decode head", decode_head, DECODE_HEADS),
                              ("neck", neck, NECKS)):
        if name is not None and name not in known:
            raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    return EncoderDecoder(BACKBONES[backbone](), DECODE_HEADS[decode_head](num_classes, align_corners),
                          NECKS[neck]() if neck is not None else None)


def from_mmseg_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An mmseg EncoderDecoder state_dict -> this module's, minus the training-only parts.

    The auxiliary FCN head on stage 3 and DAHead's per-branch classifiers only add training losses; they
    are not built here, so their weights (and nothing else: TRAINING_ONLY) are dropped. Backbone stem keys
    are renamed for timm; every other key (neck.*, decode_head.*) is kept as is.
    """
    converted = {}
    for key, value in state_dict.items():
        if key.startswith(TRAINING_ONLY):
            continue
        if key.startswith("backbone."):
            key = "backbone." + timm_key(key[len("backbone.") :])
        converted[key] = value
    return converted
