"""PSPNet head (Zhao et al. 2017): the pyramid pooling module adds context at four region sizes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConvBNReLU, DecodeHead, cat_for_conv


class PyramidPooling(nn.ModuleList):
    """For each scale s: average the map over an s x s grid, 1x1 conv, upsample back to the map's size.

    Branch i is `Sequential(AdaptiveAvgPool2d(s), ConvBNReLU)`: its output is the pooled s x s map
    (channels x s x s); forward() returns the four maps upsampled to the input map's size.
    """

    def __init__(self, pool_scales: tuple[int, ...], in_channels: int, channels: int, align_corners: bool):
        super().__init__(nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvBNReLU(in_channels, channels, 1)) for s in pool_scales)
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = x.shape[2:]
        return [F.interpolate(branch(x), size=size, mode="bilinear", align_corners=self.align_corners) for branch in self]


class PSPHead(DecodeHead):
    """last backbone map + its 1x1, 2x2, 3x3 and 6x6 pooled summaries -> 3x3 conv -> 1x1 classifier.

    Module outputs (input H x W, output stride 8): psp_modules.{0,1,2,3} (512 x s x s for s = 1, 2, 3, 6),
    bottleneck (512 x H/8 x W/8), conv_seg (num_classes x H/8 x W/8).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512,
                 pool_scales: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__(channels, num_classes, align_corners)
        self.psp_modules = PyramidPooling(pool_scales, in_channels, channels, align_corners)
        self.bottleneck = ConvBNReLU(in_channels + len(pool_scales) * channels, channels, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        return self.conv_seg(self.bottleneck(cat_for_conv([x, *self.psp_modules(x)])))
