"""FCN head (Long et al. 2015, as mmseg builds it on a dilated backbone): convolutions, then a classifier."""

from __future__ import annotations

import torch
from torch import nn

from .common import ConvBNReLU, DecodeHead, cat_for_conv


class FCNHead(DecodeHead):
    """last backbone map -> two 3x3 convs -> concat with that map -> 3x3 conv -> 1x1 classifier.

    Module outputs (input H x W, output stride 8): convs (512 x H/8 x W/8), conv_cat (512 x H/8 x W/8),
    conv_seg = the coarse score map (num_classes x H/8 x W/8).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512):
        super().__init__(channels, num_classes, align_corners)
        self.convs = nn.Sequential(ConvBNReLU(in_channels, channels, 3), ConvBNReLU(channels, channels, 3))
        self.conv_cat = ConvBNReLU(in_channels + channels, channels, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        return self.conv_seg(self.conv_cat(cat_for_conv([x, self.convs(x)])))
