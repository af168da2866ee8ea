"""FastFCN's Joint Pyramid Upsampling (Wu et al. 2019): a 1/8 feature map rebuilt from the 1/8, 1/16 and 1/32 stages
of a strided backbone, instead of computing the last stages at 1/8 (dilation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..heads.common import ConvBNReLU, DepthwiseSeparableConv, cat_for_conv


class JPU(nn.Module):
    """3x3 conv on each of the last three backbone maps -> all resized to the finest (1/8) -> concatenated ->
    four separable 3x3 convs dilated 1, 2, 4, 8 in parallel -> concatenated (4 x 512 channels at 1/8).

    The dilated convolutions on the joint map are the "joint upsampling": each 1/8 cell is computed from the
    upsampled coarse features and the 1/8 ones around it, at several distances. Returns the backbone's maps
    with the last one replaced by that output, as mmseg's JPU does (the head reads the last).

    Module paths (mmcv's names): conv_layers.{0,1,2}.0 (ConvModule), dilation_layers.{0..3}.0
    (DepthwiseSeparableConvModule with no ReLU after the depthwise conv).
    """

    def __init__(self, in_channels: tuple[int, ...] = (512, 1024, 2048), mid_channels: int = 512,
                 dilations: tuple[int, ...] = (1, 2, 4, 8), align_corners: bool = False):
        super().__init__()
        self.align_corners = align_corners
        self.conv_layers = nn.ModuleList(nn.Sequential(ConvBNReLU(c, mid_channels, 3)) for c in in_channels)
        joint = len(in_channels) * mid_channels
        self.dilation_layers = nn.ModuleList(
            nn.Sequential(DepthwiseSeparableConv(joint, mid_channels, dilation=d, depthwise_relu=False)) for d in dilations)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        inputs = features[-len(self.conv_layers):]
        maps = [conv(x) for conv, x in zip(self.conv_layers, inputs)]
        size = maps[0].shape[2:]
        maps[1:] = [F.interpolate(m, size=size, mode="bilinear", align_corners=self.align_corners) for m in maps[1:]]
        joint = cat_for_conv(maps)
        return [*features[:-1], torch.cat([layer(joint) for layer in self.dilation_layers], dim=1)]
