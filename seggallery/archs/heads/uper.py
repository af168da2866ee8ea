"""UPerNet head (Xiao et al. 2018): a pyramid pooling module on the last stage, then a feature pyramid
network that merges all four stages top-down."""

from __future__ import annotations

import torch
from torch import nn

from .common import ConvBNReLU, DecodeHead, cat_for_conv
from .psp import PyramidPooling


class UPerHead(DecodeHead):
    """PPM on stage 4 (1/32); 1x1 lateral convs on stages 1-3; top-down: each level plus the upsampled one
    above; a 3x3 conv per level; all four upsampled to 1/4, concatenated, fused by a 3x3 conv; classifier.

    Module outputs (input H x W): psp_modules.{0,1,2,3} (512 x s x s, s = 1, 2, 3, 6), bottleneck (512 x H/32
    x W/32: the PPM output, top of the pyramid), lateral_convs.{0,1,2} (512 x H/4, H/8, H/16), fpn_convs.{0,1,2}
    (512 x H/4, H/8, H/16; their inputs are the top-down merged levels), fpn_bottleneck (512 x H/4 x W/4),
    conv_seg (num_classes x H/4 x W/4).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: tuple[int, ...] = (256, 512, 1024, 2048),
                 channels: int = 512, pool_scales: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__(channels, num_classes, align_corners)
        self.psp_modules = PyramidPooling(pool_scales, in_channels[-1], channels, align_corners)
        self.bottleneck = ConvBNReLU(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvBNReLU(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvBNReLU(channels, channels, 3) for _ in in_channels[:-1])
        self.fpn_bottleneck = ConvBNReLU(len(in_channels) * channels, channels, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        top = features[-1]
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        laterals.append(self.bottleneck(cat_for_conv([top, *self.psp_modules(top)])))
        for i in range(len(laterals) - 1, 0, -1):  # top-down: coarse context flows into finer levels
            laterals[i - 1] = laterals[i - 1] + self.resize(laterals[i], laterals[i - 1].shape[2:])
        levels = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        size = levels[0].shape[2:]
        fused = cat_for_conv([levels[0], *(self.resize(level, size) for level in levels[1:])])
        return self.conv_seg(self.fpn_bottleneck(fused))
