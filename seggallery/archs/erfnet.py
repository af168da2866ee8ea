"""mmsegmentation's ERFNet backbone (Romera et al. 2017): ENet's successor built from factorised residual blocks.

Encoder: a downsampler (a stride-2 3x3 conv beside a 2x2 max pool, concatenated: 16 channels at 1/2), a
second one (64 at 1/4), five non-bottleneck-1D blocks, a third downsampler (128 at 1/8) and eight more
blocks dilated 2, 4, 8, 16, 2, 4, 8, 16. A non-bottleneck-1D block is a residual block whose two 3x3
convs are each factorised into a 3x1 and a 1x3 conv (the second pair dilated). Decoder: two transposed
3x3 convs (x2 each: 64 channels at 1/4, then 16 at 1/2), each followed by two blocks; the decode head
reads the 1/2 map. Module names are mmseg's (`encoder.<i>`, `decoder.<i>`, `convs_layers.<j>`), BN eps 1e-3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads.common import cat_for_conv

BN_EPS = 1e-3


class DownsamplerBlock(nn.Module):
    """[3x3 stride-2 conv (out - in channels), 2x2 max pool (in channels, resized to the conv's size)] -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv(x)
        pool = self.pool(x)
        if pool.shape[-2:] != conv.shape[-2:]:  # odd sides: the conv rounds up, the pool down
            pool = F.interpolate(pool, size=conv.shape[-2:], mode="bilinear", align_corners=False)
        return self.act(self.bn(cat_for_conv([conv, pool])))


class NonBottleneck1d(nn.Module):
    """x + (3x1, ReLU, 1x3, BN, ReLU, 3x1 dilated, ReLU, 1x3 dilated, BN, dropout), then ReLU.

    `convs_layers` keeps mmseg's indices: 0, 2, 5, 7 are the convs, 3 and 8 the BNs (the ReLUs and the
    dropout, identity at inference, hold no weights).
    """

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.act = nn.ReLU()
        layers: list[nn.Module] = []
        for index, d in enumerate((1, dilation)):
            layers += [
                nn.Conv2d(channels, channels, (3, 1), padding=(d, 0), dilation=(d, 1)),
                self.act,
                nn.Conv2d(channels, channels, (1, 3), padding=(0, d), dilation=(1, d)),
                nn.BatchNorm2d(channels, eps=BN_EPS),
                self.act if index == 0 else nn.Identity(),
            ]
        self.convs_layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs_layers(x) + x)


class UpsamplerBlock(nn.Module):
    """Transposed 3x3 conv, stride 2 (exactly doubles the size) -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ERFNet(nn.Module):
    """mmseg's ERFNet with its config's defaults; returns [the decoder's 16-channel map at 1/2].

    Module paths: encoder.0 (1/2), encoder.1 (1/4), encoder.2-6 (blocks at 1/4), encoder.7 (1/8),
    encoder.8-15 (dilated blocks at 1/8), decoder.0 (1/4), decoder.1-2, decoder.3 (1/2), decoder.4-5.
    """

    def __init__(self, in_channels: int = 3):
        super().__init__()
        dilations = (2, 4, 8, 16)
        self.encoder = nn.Sequential(
            DownsamplerBlock(in_channels, 16),
            DownsamplerBlock(16, 64),
            *(NonBottleneck1d(64) for _ in range(5)),
            DownsamplerBlock(64, 128),
            *(NonBottleneck1d(128, d) for _ in range(2) for d in dilations),
        )
        self.decoder = nn.Sequential(
            UpsamplerBlock(128, 64), NonBottleneck1d(64), NonBottleneck1d(64),
            UpsamplerBlock(64, 16), NonBottleneck1d(16), NonBottleneck1d(16),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.decoder(self.encoder(x))]
