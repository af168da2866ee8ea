"""DeepLabV3+ head (Chen et al. 2018): ASPP with separable convolutions plus a decoder that brings back
the sharp edges of the stride-4 features."""

from __future__ import annotations

import torch
from torch import nn

from .aspp import ASPPHead
from .common import ConvBNReLU, DepthwiseSeparableConv, cat_for_conv


class DepthwiseSeparableASPPHead(ASPPHead):
    """ASPP (separable dilated convs) at 1/8 -> upsample to 1/4 -> concat with the 48-channel projection of
    stage 1 -> two separable 3x3 convs -> classifier.

    Module outputs (input H x W): image_pool (512 x 1 x 1), aspp_modules.{0,1,2,3} (512 x H/8 x W/8),
    bottleneck (512 x H/8 x W/8, the ASPP output), c1_bottleneck (48 x H/4 x W/4, the low-level branch),
    sep_bottleneck (512 x H/4 x W/4; its input is the fusion, 560 x H/4 x W/4), conv_seg (num_classes x H/4 x W/4).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512,
                 dilations: tuple[int, ...] = (1, 12, 24, 36), c1_in_channels: int = 256, c1_channels: int = 48):
        super().__init__(num_classes, align_corners, in_channels, channels, dilations)
        self.c1_bottleneck = ConvBNReLU(c1_in_channels, c1_channels, 1)
        self.sep_bottleneck = nn.Sequential(
            DepthwiseSeparableConv(channels + c1_channels, channels),
            DepthwiseSeparableConv(channels, channels),
        )

    @staticmethod
    def branch(in_channels: int, channels: int, dilation: int) -> nn.Module:
        if dilation == 1:
            return ConvBNReLU(in_channels, channels, 1)
        return DepthwiseSeparableConv(in_channels, channels, dilation=dilation)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        context = self.aspp(features[-1])
        low_level = self.c1_bottleneck(features[0])
        fused = cat_for_conv([self.resize(context, low_level.shape[2:]), low_level])
        return self.conv_seg(self.sep_bottleneck(fused))
