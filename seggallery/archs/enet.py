"""ENet (Paszke et al., 2016, https://arxiv.org/abs/1606.02147), laid out so that the CamVid checkpoint
of davidtvs/PyTorch-ENet (commit 921e40c1, `save/ENet_default`) loads strictly into it.

The network is the paper's Table 1: an initial block, five stages of bottlenecks and a full-resolution
transposed convolution. A bottleneck keeps a main branch (identity, max-pooling or max-unpooling) and adds
an extension branch: 1x1 projection -> main convolution -> 1x1 expansion, each followed by batch norm
and PReLU. Module names follow the checkpoint: `ext_conv1..3` are (conv, BN, PReLU) sequences, the
asymmetric 5x5 is a 5x1 + 1x5 pair inside `ext_conv2`, `out_prelu` acts after the branches are added.
Dropout (spatial, p 0.01 / 0.1 in training) is the identity at inference and is left out.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_prelu(in_channels: int, out_channels: int, **conv_args) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, bias=False, **conv_args), nn.BatchNorm2d(out_channels), nn.PReLU()]


class InitialBlock(nn.Module):
    """3x3 stride-2 convolution (13 maps) beside a stride-2 max pool of the RGB input (3 maps): 16 maps at 1/2."""

    def __init__(self, in_channels: int = 3, out_channels: int = 16):
        super().__init__()
        self.main_branch = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=False)
        self.ext_branch = nn.MaxPool2d(3, stride=2, padding=1)
        self.batch_norm = nn.BatchNorm2d(out_channels)
        self.out_prelu = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_prelu(self.batch_norm(torch.cat([self.main_branch(x), self.ext_branch(x)], 1)))


class RegularBottleneck(nn.Module):
    """Same size in and out. The middle convolution is a plain 3x3, a dilated 3x3 or an asymmetric 5x1 + 1x5."""

    def __init__(self, channels: int, dilation: int = 1, asymmetric: bool = False, internal_ratio: int = 4):
        super().__init__()
        inner = channels // internal_ratio
        self.ext_conv1 = nn.Sequential(*conv_bn_prelu(channels, inner, kernel_size=1))
        if asymmetric:
            self.ext_conv2 = nn.Sequential(
                *conv_bn_prelu(inner, inner, kernel_size=(5, 1), padding=(2, 0)),
                *conv_bn_prelu(inner, inner, kernel_size=(1, 5), padding=(0, 2)),
            )
        else:
            self.ext_conv2 = nn.Sequential(*conv_bn_prelu(inner, inner, kernel_size=3, padding=dilation, dilation=dilation))
        self.ext_conv3 = nn.Sequential(*conv_bn_prelu(inner, channels, kernel_size=1))
        self.out_prelu = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_prelu(x + self.ext_conv3(self.ext_conv2(self.ext_conv1(x))))


class DownsamplingBottleneck(nn.Module):
    """Halves the size. Main branch: 2x2 max pool (its indices are kept for the decoder), zero-padded to
    the new channel count; extension: 2x2 stride-2 projection, 3x3 convolution, 1x1 expansion."""

    def __init__(self, in_channels: int, out_channels: int, internal_ratio: int = 4):
        super().__init__()
        inner = in_channels // internal_ratio
        self.main_max1 = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)
        self.ext_conv1 = nn.Sequential(*conv_bn_prelu(in_channels, inner, kernel_size=2, stride=2))
        self.ext_conv2 = nn.Sequential(*conv_bn_prelu(inner, inner, kernel_size=3, padding=1))
        self.ext_conv3 = nn.Sequential(*conv_bn_prelu(inner, out_channels, kernel_size=1))
        self.out_prelu = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = self.main_max1(x)
        ext = self.ext_conv3(self.ext_conv2(self.ext_conv1(x)))
        main = nn.functional.pad(main, (0, 0, 0, 0, 0, ext.shape[1] - main.shape[1]))  # zero channels
        return self.out_prelu(main + ext), indices


class UpsamplingBottleneck(nn.Module):
    """Doubles the size. Main branch: 1x1 convolution + BN, then max-unpooling with the indices of the
    matching downsampling block; extension: 1x1 projection, 3x3 stride-2 transposed convolution, 1x1 expansion."""

    def __init__(self, in_channels: int, out_channels: int, internal_ratio: int = 4):
        super().__init__()
        inner = in_channels // internal_ratio
        self.main_conv1 = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.main_unpool1 = nn.MaxUnpool2d(2)
        self.ext_conv1 = nn.Sequential(*conv_bn_prelu(in_channels, inner, kernel_size=1))
        self.ext_conv2 = nn.Sequential(
            nn.ConvTranspose2d(inner, inner, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(inner),
            nn.PReLU(),
        )
        self.ext_conv3 = nn.Sequential(*conv_bn_prelu(inner, out_channels, kernel_size=1))
        self.out_prelu = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
        main = self.main_unpool1(self.main_conv1(x), indices, output_size=size)
        ext = self.ext_conv3(self.ext_conv2(self.ext_conv1(x)))
        return self.out_prelu(main + ext)


# Stages 2 and 3 repeat this pattern (stage 3 without the downsampling block): (name, dilation, asymmetric).
_STAGE_PATTERN = [("regular", 1, False), ("dilated", 2, False), ("asymmetric", 1, True), ("dilated", 4, False),
                  ("regular", 1, False), ("dilated", 8, False), ("asymmetric", 1, True), ("dilated", 16, False)]


class ENet(nn.Module):
    """Input N x 3 x H x W (RGB in [0, 1], H and W multiples of 8); output N x num_classes x H x W logits."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.initial_block = InitialBlock(3, 16)
        self.downsample1_0 = DownsamplingBottleneck(16, 64)
        self.stage1 = [f"regular1_{index}" for index in range(1, 5)]
        for name in self.stage1:
            setattr(self, name, RegularBottleneck(64))
        self.downsample2_0 = DownsamplingBottleneck(64, 128)
        self.stages2_3 = []
        for stage, first in ((2, 1), (3, 0)):
            for offset, (kind, dilation, asymmetric) in enumerate(_STAGE_PATTERN):
                name = f"{kind}{stage}_{first + offset}"
                setattr(self, name, RegularBottleneck(128, dilation, asymmetric))
                self.stages2_3.append(name)
        self.upsample4_0 = UpsamplingBottleneck(128, 64)
        self.regular4_1 = RegularBottleneck(64)
        self.regular4_2 = RegularBottleneck(64)
        self.upsample5_0 = UpsamplingBottleneck(64, 16)
        self.regular5_1 = RegularBottleneck(16)
        self.transposed_conv = nn.ConvTranspose2d(16, num_classes, 3, stride=2, padding=1, output_padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        input_size = x.shape[-2:]
        x = self.initial_block(x)
        size1 = x.shape
        x, indices1 = self.downsample1_0(x)
        for name in self.stage1:
            x = getattr(self, name)(x)
        size2 = x.shape
        x, indices2 = self.downsample2_0(x)
        for name in self.stages2_3:
            x = getattr(self, name)(x)
        x = self.upsample4_0(x, indices2, size2)
        x = self.regular4_2(self.regular4_1(x))
        x = self.upsample5_0(x, indices1, size1)
        x = self.regular5_1(x)
        return self.transposed_conv(x, output_size=input_size)
