"""mmsegmentation's CGNet backbone (Wu et al. 2018): a light network of context guided blocks.

A context guided block looks at each position twice, through a depthwise 3x3 conv (the local feature) and
a dilated depthwise 3x3 conv (its surrounding context), concatenates the two (the joint feature), and
reweights its channels by a squeeze-and-excitation vector pooled over the whole image (the global
context). Three levels: a stem of three 3x3 convs at 1/2 (32 channels), 3 blocks at 1/4 (64, dilation 2)
and 21 blocks at 1/8 (128, dilation 4); each level's output is concatenated with its first block's output
and with the input image average-pooled to its size ("input injection") before a BN + PReLU. The decode
head classifies the 1/8 map (256 channels) directly. Module names are mmseg's; BN eps 1e-3, PReLU activations.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads.common import ConvBNReLU, cat_for_conv

BN_EPS = 1e-3


class ConvBNPReLU(ConvBNReLU):
    """mmcv's ConvModule with BN (eps 1e-3) and a PReLU with one slope per channel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, norm_eps=BN_EPS)
        self.activate = nn.PReLU(out_channels)


def bn_prelu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels, eps=BN_EPS), nn.PReLU(channels))


class GlobalContextExtractor(nn.Module):
    """x * sigmoid(fc(average of x over the image)): one weight per channel, the same at every pixel."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class ContextGuidedBlock(nn.Module):
    """conv1x1 -> [f_loc (depthwise 3x3) | f_sur (depthwise 3x3, dilated)] -> BN + PReLU -> f_glo, plus x.

    A downsampling block (each level's first) replaces the 1x1 conv by a stride-2 3x3 one, keeps all its
    output channels per branch, projects the joint feature back with `bottleneck` and has no residual.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int, reduction: int, downsample: bool = False):
        super().__init__()
        channels = out_channels if downsample else out_channels // 2
        self.downsample = downsample
        self.conv1x1 = ConvBNPReLU(in_channels, channels, 3 if downsample else 1, stride=2 if downsample else 1)
        self.f_loc = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.f_sur = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels, eps=BN_EPS)
        self.activate = nn.PReLU(2 * channels)
        if downsample:
            self.bottleneck = nn.Conv2d(2 * channels, out_channels, 1, bias=False)
        self.f_glo = GlobalContextExtractor(out_channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x)
        joint = self.activate(self.bn(torch.cat([self.f_loc(out), self.f_sur(out)], 1)))
        if self.downsample:
            return self.f_glo(self.bottleneck(joint))
        return x + self.f_glo(joint)


class InputInjection(nn.Module):
    """The image, average-pooled (3x3, stride 2, padding 1) `num_downsampling` times."""

    def __init__(self, num_downsampling: int):
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool2d(3, stride=2, padding=1) for _ in range(num_downsampling))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for pool in self.pool:
            x = pool(x)
        return x


class CGNet(nn.Module):
    """mmseg's CGNet with its config's defaults; returns [norm_prelu_0 (35 ch, 1/2), norm_prelu_1 (131, 1/4),
    norm_prelu_2 (256, 1/8)].

    Module paths: stem.0-2, inject_2x, inject_4x, norm_prelu_0, level1.0-2, norm_prelu_1, level2.0-20, norm_prelu_2.
    """

    def __init__(self, in_channels: int = 3, num_channels=(32, 64, 128), num_blocks=(3, 21), dilations=(2, 4),
                 reductions=(8, 16)):
        super().__init__()
        stem_width, width1, width2 = num_channels
        self.stem = nn.ModuleList(ConvBNPReLU(in_channels if i == 0 else stem_width, stem_width, 3, stride=2 if i == 0 else 1)
                                  for i in range(3))
        self.inject_2x = InputInjection(1)
        self.inject_4x = InputInjection(2)
        self.norm_prelu_0 = bn_prelu(stem_width + in_channels)
        self.level1 = nn.ModuleList(
            ContextGuidedBlock(stem_width + in_channels if i == 0 else width1, width1, dilations[0], reductions[0], downsample=i == 0)
            for i in range(num_blocks[0]))
        self.norm_prelu_1 = bn_prelu(2 * width1 + in_channels)
        self.level2 = nn.ModuleList(
            ContextGuidedBlock(2 * width1 + in_channels if i == 0 else width2, width2, dilations[1], reductions[1], downsample=i == 0)
            for i in range(num_blocks[1]))
        self.norm_prelu_2 = bn_prelu(2 * width2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        image_2x, image_4x = self.inject_2x(x), self.inject_4x(x)
        for layer in self.stem:
            x = layer(x)
        level0 = self.norm_prelu_0(cat_for_conv([x, image_2x]))
        x = down1 = self.level1[0](level0)
        for block in self.level1[1:]:
            x = block(x)
        level1 = self.norm_prelu_1(cat_for_conv([x, down1, image_4x]))
        x = down2 = self.level2[0](level1)
        for block in self.level2[1:]:
            x = block(x)
        level2 = self.norm_prelu_2(cat_for_conv([down2, x]))
        return [level0, level1, level2]
