"""Building blocks shared by the mmsegmentation decode heads, named as in mmcv/mmseg.

The attribute names (conv / bn / activate, depthwise_conv / pointwise_conv, conv_seg) are those of
mmcv's ConvModule and DepthwiseSeparableConvModule and mmseg's BaseDecodeHead, so that the published
checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cat_for_conv(maps: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat(maps, dim=1) for a convolution to read, exactly as that convolution would see it.

    Under autocast the convolution casts its input to the autocast dtype anyway; concatenating bf16 maps with
    fp32 ones (upsampled branches) would first build the whole concatenation in fp32 and then cast it, about a
    sixth of a PSPNet's time on a CPU. Each map is cast first instead (the same values) and put in the first
    map's memory layout, so the concatenation is one copy in the layout the convolution wants.

    That layout is channels_last if any map is in it (the model's weights are): the first map may be an image
    pool's 1 x 1 result resized, whose layout is the default one; concatenating in that layout and converting
    after (2,560 channels of 128 x 171 in an ASPP head) took about 320 ms on a CPU.
    """
    device = maps[0].device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
    layout = torch.channels_last if any(m.dim() == 4 and m.is_contiguous(memory_format=torch.channels_last)
                                        and not m.is_contiguous() for m in maps) else torch.contiguous_format
    if dtype is None and layout == torch.contiguous_format:
        return torch.cat(maps, dim=1)
    return torch.cat([m.to(dtype=dtype or m.dtype, memory_format=layout) for m in maps], dim=1)


class ConvBNReLU(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU: mmcv's ConvModule with norm_cfg=BN (`norm_eps`: its eps; `relu=False`:
    act_cfg=None, no activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1, groups: int = 1,
                 stride: int = 1, padding: int | None = None, norm_eps: float = 1e-5, relu: bool = True):
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size // 2)  # keeps the map's size
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=norm_eps)
        self.activate = nn.ReLU() if relu else nn.Identity()  # not in place, so that a hook on `bn` sees its own output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class DepthwiseSeparableConv(nn.Module):
    """A 3x3 conv split in two: one filter per channel (depthwise), then a 1x1 conv mixing channels.

    `depthwise_relu=False`: no activation after the depthwise half (mmcv's dw_act_cfg=None, as Fast-SCNN and FastFCN's JPU have it)."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1, stride: int = 1, depthwise_relu: bool = True):
        super().__init__()
        self.depthwise_conv = ConvBNReLU(in_channels, in_channels, 3, dilation=dilation, groups=in_channels,
                                         stride=stride, relu=depthwise_relu)
        self.pointwise_conv = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class Scale(nn.Module):
    """x times one learned number: mmcv's Scale (its parameter is `scale`). The attention modules start it at 0,
    so that training begins from the plain features and lets the attention in gradually."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class DecodeHead(nn.Module):
    """What every head ends with: a 1x1 conv from `channels` features to one score per class.

    (mmseg applies dropout before `conv_seg` while training; at inference it is the identity.)
    """

    def __init__(self, channels: int, num_classes: int, align_corners: bool):
        super().__init__()
        self.align_corners = align_corners
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def resize(self, x: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=self.align_corners)
