"""mmsegmentation's EncoderDecoder at inference: backbone -> decode head -> per-class scores.

The module returns the head's scores at its own resolution (1/8 of the input for FCN, PSPNet and
DeepLabV3 on the D8 backbone, 1/4 for DeepLabV3+ and UPerNet); upsampling them to the image is the
caller's business (mmseg resizes them to the network input's size, then to the image's).
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import DECODE_HEADS
from .resnet_v1c import ResNetV1c, timm_key

# Backbone names used in the catalog -> the backbone they build.
BACKBONES = {
    "resnet50_v1c_d8": lambda: ResNetV1c(output_stride=8),  # mmseg "R-50-D8": dilated stages 3 and 4
    "resnet50_v1c": lambda: ResNetV1c(output_stride=32),  # mmseg "R-50" as UPerNet uses it
}


class EncoderDecoder(nn.Module):
    """Module paths: `backbone` (ResNetV1c: conv1/bn1 stem, layer1..layer4) and `decode_head`."""

    def __init__(self, backbone: nn.Module, decode_head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_head(self.backbone(x))


def build_encoder_decoder(backbone: str, decode_head: str, num_classes: int, align_corners: bool) -> EncoderDecoder:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    if decode_head not in DECODE_HEADS:
        raise ValueError(f"unknown decode head {decode_head!r}; known: {', '.join(DECODE_HEADS)}")
    return EncoderDecoder(BACKBONES[backbone](), DECODE_HEADS[decode_head](num_classes, align_corners))


def from_mmseg_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An mmseg EncoderDecoder state_dict -> this module's, minus the auxiliary head.

    The auxiliary FCN head on stage 3 only adds a training loss; it is not built here, so its weights
    (and nothing else) are dropped. Backbone stem keys are renamed for timm; every other key is kept as is.
    """
    converted = {}
    for key, value in state_dict.items():
        if key.startswith("auxiliary_head."):
            continue
        if key.startswith("backbone."):
            key = "backbone." + timm_key(key[len("backbone.") :])
        converted[key] = value
    return converted
