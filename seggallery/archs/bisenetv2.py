"""mmsegmentation's BiSeNetV2 backbone (Yu et al. 2021): a wide shallow detail branch, a narrow deep semantic
branch, and a guided aggregation layer that lets each gate the other.

Detail branch: three stages of 3x3 convs (64, 64, 128 channels) down to 1/8. Semantic branch: a stem (a
strided conv beside a max pool, 1/4), gather-and-expansion layers (depthwise convs on 6x expanded channels,
residual) down to 1/32 (16, 32, 64, 128 channels) and a context embedding block (global average pooling
added back to every position). Bilateral guided aggregation (BGA): the detail map, multiplied by the
sigmoid of the upsampled semantic map, plus the semantic map multiplied by the sigmoid of the downsampled
detail map (upsampled), then a 3x3 conv. Returns [BGA output (128, 1/8), semantic stages 1-4 (1/4 .. 1/32)];
the decode head reads index 0, the auxiliary heads of training the others. mmseg's module names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads.common import ConvBNReLU, cat_for_conv


def resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class PlainConv(nn.Module):
    """mmcv's ConvModule without norm and activation: a conv with bias, named `conv`."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SeparableConv(nn.Module):
    """Depthwise 3x3 conv + BN, then pointwise 1x1 conv: + BN (`pointwise_norm`) or with a bias; no activations."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, pointwise_norm: bool = True):
        super().__init__()
        self.depthwise_conv = ConvBNReLU(in_channels, in_channels, 3, stride=stride, groups=in_channels, relu=False)
        self.pointwise_conv = (ConvBNReLU(in_channels, out_channels, 1, relu=False) if pointwise_norm
                               else PlainConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class DetailBranch(nn.Module):
    def __init__(self, channels=(64, 64, 128), in_channels: int = 3):
        super().__init__()
        stages = []
        for i, width in enumerate(channels):
            convs = [ConvBNReLU(in_channels if i == 0 else channels[i - 1], width, 3, stride=2)]
            convs += [ConvBNReLU(width, width, 3) for _ in range(1 if i == 0 else 2)]
            stages.append(nn.Sequential(*convs))
        self.detail_branch = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.detail_branch(x)


class StemBlock(nn.Module):
    """3x3 stride-2 conv, then [1x1 conv -> 3x3 stride-2 conv | 3x3 max pool, stride 2] concatenated, 3x3 conv: 1/4."""

    def __init__(self, in_channels: int = 3, out_channels: int = 16):
        super().__init__()
        self.conv_first = ConvBNReLU(in_channels, out_channels, 3, stride=2)
        self.convs = nn.Sequential(ConvBNReLU(out_channels, out_channels // 2, 1),
                                   ConvBNReLU(out_channels // 2, out_channels, 3, stride=2))
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.fuse_last = ConvBNReLU(2 * out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_first(x)
        return self.fuse_last(cat_for_conv([self.convs(x), self.pool(x)]))


class GELayer(nn.Module):
    """Gather-and-expansion: 3x3 conv, depthwise 3x3 to 6x the channels (a second depthwise one when it
    downsamples), 1x1 projection, plus the input (through a separable conv when it downsamples), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, exp_ratio: int = 6, stride: int = 1):
        super().__init__()
        mid = in_channels * exp_ratio
        self.conv1 = ConvBNReLU(in_channels, in_channels, 3)
        if stride == 1:
            self.dwconv = nn.Sequential(ConvBNReLU(in_channels, mid, 3, groups=in_channels))
            self.shortcut = None
        else:
            self.dwconv = nn.Sequential(ConvBNReLU(in_channels, mid, 3, stride=stride, groups=in_channels, relu=False),
                                        ConvBNReLU(mid, mid, 3, groups=mid))
            self.shortcut = nn.Sequential(SeparableConv(in_channels, out_channels, stride=stride))
        self.conv2 = nn.Sequential(ConvBNReLU(mid, out_channels, 1, relu=False))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.dwconv(self.conv1(x)))
        return self.act(out + (x if self.shortcut is None else self.shortcut(x)))


class CEBlock(nn.Module):
    """Context embedding: x + 1x1 conv(BN(global average of x)), then a 3x3 conv."""

    def __init__(self, channels: int = 128):
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.BatchNorm2d(channels))
        self.conv_gap = ConvBNReLU(channels, channels, 1)
        self.conv_last = ConvBNReLU(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(x + self.conv_gap(self.gap(x)))


class SemanticBranch(nn.Module):
    """stage1 (stem, 1/4), stage2 (1/8), stage3 (1/16), stage4 (1/32), stage4_CEBlock."""

    def __init__(self, channels=(16, 32, 64, 128), in_channels: int = 3, exp_ratio: int = 6):
        super().__init__()
        self.stage1 = StemBlock(in_channels, channels[0])
        for i in range(1, len(channels)):
            layers = [GELayer(channels[i - 1], channels[i], exp_ratio, 2)]
            layers += [GELayer(channels[i], channels[i], exp_ratio, 1) for _ in range(3 if i == len(channels) - 1 else 1)]
            self.add_module(f"stage{i + 1}", nn.Sequential(*layers))
        self.stage4_CEBlock = CEBlock(channels[-1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4, self.stage4_CEBlock):
            x = stage(x)
            outputs.append(x)
        return outputs


class BGALayer(nn.Module):
    """Bilateral guided aggregation of the 1/8 detail map and the 1/32 semantic map (see the module docstring)."""

    def __init__(self, channels: int = 128):
        super().__init__()
        self.detail_dwconv = nn.Sequential(SeparableConv(channels, channels, pointwise_norm=False))
        self.detail_down = nn.Sequential(ConvBNReLU(channels, channels, 3, stride=2, relu=False),
                                         nn.AvgPool2d(kernel_size=3, stride=2, padding=1))
        self.semantic_conv = nn.Sequential(ConvBNReLU(channels, channels, 3, relu=False))
        self.semantic_dwconv = nn.Sequential(SeparableConv(channels, channels, pointwise_norm=False))
        self.conv = ConvBNReLU(channels, channels, 3)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        detail_dwconv = self.detail_dwconv(detail)
        guided_detail = detail_dwconv * torch.sigmoid(resize(self.semantic_conv(semantic), detail_dwconv.shape[2:]))
        guided_semantic = self.detail_down(detail) * torch.sigmoid(self.semantic_dwconv(semantic))
        return self.conv(guided_detail + resize(guided_semantic, guided_detail.shape[2:]))


class BiSeNetV2(nn.Module):
    """Module paths: detail.detail_branch.<0-2>, semantic.stage1-4 and stage4_CEBlock, bga."""

    def __init__(self):
        super().__init__()
        self.detail = DetailBranch()
        self.semantic = SemanticBranch()
        self.bga = BGALayer()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        semantic = self.semantic(x)
        return [self.bga(self.detail(x), semantic[-1]), *semantic[:-1]]
