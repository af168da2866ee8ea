"""mmsegmentation's UNet backbone (Ronneberger et al. 2015, padded convolutions), as its "s5-d16" configs build it.

Five encoder levels of two 3x3 conv + BN + ReLU each (64, 128, 256, 512, 1024 channels); every level after
the first starts with a 2x2 max pool, so the deepest map is 1/16 of the input. Four decoder levels climb
back: each upsamples the map from below by 2 (bilinear, then a 1x1 conv + BN + ReLU that halves its
channels: mmseg's InterpConv), concatenates the encoder map of its level (the skip) and fuses the two with
two 3x3 convs. Module and attribute names are mmseg's (`encoder.<i>`, `decoder.<i>.upsample.interp_upsample`,
`decoder.<i>.conv_block.convs`, ConvModule's conv / bn / activate), so the zoo's weights load unrenamed.

The input's height and width must be multiples of 16 (four poolings); mmseg's UNet asserts it, SegGallery's
mmseg backend pads the input to such a size (catalog `preprocess.size_divisor`).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .heads.common import ConvBNReLU, cat_for_conv


class BasicConvBlock(nn.Module):
    """`num_convs` 3x3 conv + BN + ReLU; the first one maps in_channels to out_channels."""

    def __init__(self, in_channels: int, out_channels: int, num_convs: int = 2):
        super().__init__()
        widths = [in_channels] + [out_channels] * num_convs
        self.convs = nn.Sequential(*(ConvBNReLU(a, b, 3) for a, b in itertools.pairwise(widths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)


class Upsample2x(nn.Module):
    """Bilinear x2 (align_corners=False), as mmseg's Upsample(scale_factor=2) computes the size: int(side * 2.0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=[2 * side for side in x.shape[-2:]], mode="bilinear", align_corners=False)


class InterpConv(nn.Module):
    """mmseg's InterpConv: bilinear x2, then a 1x1 conv + BN + ReLU (`interp_upsample.0` and `.1`)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.interp_upsample = nn.Sequential(Upsample2x(), ConvBNReLU(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.interp_upsample(x)


class UpConvBlock(nn.Module):
    """One decoder level: upsample the deeper map to the skip's size and channels, concatenate [skip, it], fuse."""

    def __init__(self, in_channels: int, skip_channels: int, num_convs: int = 2):
        super().__init__()
        self.conv_block = BasicConvBlock(2 * skip_channels, skip_channels, num_convs)
        self.upsample = InterpConv(in_channels, skip_channels)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(cat_for_conv([skip, self.upsample(x)]))


class UNet(nn.Module):
    """Returns the decoder's maps, deepest first: [1/16 (the encoder's bottom, 1024 ch), 1/8 (512), 1/4 (256),
    1/2 (128), 1/1 (64)], as mmseg's UNet does; the decode head of the s5-d16 models reads index 4."""

    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_stages: int = 5, num_convs: int = 2):
        super().__init__()
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(num_stages):
            width = base_channels * 2**i
            block = [BasicConvBlock(in_channels, width, num_convs)]
            if i > 0:
                block.insert(0, nn.MaxPool2d(kernel_size=2))
                self.decoder.append(UpConvBlock(width, width // 2, num_convs))
            self.encoder.append(nn.Sequential(*block))
            in_channels = width
        self.size_divisor = 2 ** (num_stages - 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(f"UNet needs an input whose sides are multiples of {self.size_divisor}, not {h} x {w}")
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        outputs = [x]
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](skips[i], x)
            outputs.append(x)
        return outputs
