"""DeepLabV3 head (Chen et al. 2017): atrous spatial pyramid pooling, i.e. parallel dilated convolutions."""

from __future__ import annotations

import torch
from torch import nn

from .common import ConvBNReLU, DecodeHead, cat_for_conv


class ASPPHead(DecodeHead):
    """image pooling + 1x1 conv + 3x3 convs dilated 12, 24, 36 in parallel -> concat -> 3x3 conv -> classifier.

    Module outputs (input H x W, output stride 8): image_pool (512 x 1 x 1: the whole image's average),
    aspp_modules.{0,1,2,3} (512 x H/8 x W/8 for dilation 1, 12, 24, 36), bottleneck (512 x H/8 x W/8),
    conv_seg (num_classes x H/8 x W/8).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512,
                 dilations: tuple[int, ...] = (1, 12, 24, 36)):
        super().__init__(channels, num_classes, align_corners)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNReLU(in_channels, channels, 1))
        self.aspp_modules = nn.ModuleList(self.branch(in_channels, channels, d) for d in dilations)
        self.bottleneck = ConvBNReLU((len(dilations) + 1) * channels, channels, 3)

    @staticmethod
    def branch(in_channels: int, channels: int, dilation: int) -> nn.Module:
        """A 1x1 conv for dilation 1, else a 3x3 conv with that dilation."""
        return ConvBNReLU(in_channels, channels, 1 if dilation == 1 else 3, dilation=dilation)

    def aspp(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.resize(self.image_pool(x), x.shape[2:])
        return self.bottleneck(cat_for_conv([pooled, *(branch(x) for branch in self.aspp_modules)]))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv_seg(self.aspp(features[-1]))
