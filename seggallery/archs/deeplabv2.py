"""DeepLab v2 (Chen et al. 2016) as kazuto1011/deeplab-pytorch builds it: dilated ResNet-101 + ASPP + MSC.

- Backbone: the MSRA ResNet-101 (stride on the first 1x1 conv of each stage, Caffe's ceil-mode max pool);
  stages 4 and 5 keep stride 1 and dilate their 3x3 convs by 2 and 4, so the last map is 1/8 of the input.
- ASPP (DeepLab v2's version): four 3x3 convs straight to class scores at dilation 6, 12, 18 and 24,
  summed. Each branch is a whole classifier with its own field of view; `branches` returns them apart.
- MSC: the network runs on the input at scales 1.0, 0.75 and 0.5; the smaller scores are resized
  (bilinear, align_corners=False) to the full-scale map and the pixel-wise maximum is taken.

Module names follow that repository (layer1 ... layer5, blockN.reduce / conv3x3 / increase / shortcut,
aspp.c0 ... c3, all under `base.` inside MSC), so its released checkpoints load with strict keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RATES = (6, 12, 18, 24)
BLOCKS = (3, 4, 23, 3)  # ResNet-101
SCALES = (0.5, 0.75)  # the extra input scales; 1.0 is always run


class ConvBnReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, dilation: int, relu: bool = True):
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_ch, eps=1e-5))
        if relu:
            self.add_module("relu", nn.ReLU())


class Bottleneck(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int, downsample: bool):
        super().__init__()
        mid = out_ch // 4
        self.reduce = ConvBnReLU(in_ch, mid, 1, stride, 0, 1)
        self.conv3x3 = ConvBnReLU(mid, mid, 3, 1, dilation, dilation)
        self.increase = ConvBnReLU(mid, out_ch, 1, 1, 0, 1, relu=False)
        self.shortcut = ConvBnReLU(in_ch, out_ch, 1, stride, 0, 1, relu=False) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))


class ResLayer(nn.Sequential):
    def __init__(self, blocks: int, in_ch: int, out_ch: int, stride: int, dilation: int):
        super().__init__()
        for i in range(blocks):
            self.add_module(f"block{i + 1}", Bottleneck(in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1, dilation, i == 0))


class Stem(nn.Sequential):
    def __init__(self, out_ch: int):
        super().__init__()
        self.add_module("conv1", ConvBnReLU(3, out_ch, 7, 2, 3, 1))
        self.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))


class ASPP(nn.Module):
    """DeepLab v2's ASPP: parallel dilated 3x3 classifiers c0..c3, their scores summed."""

    def __init__(self, in_ch: int, num_classes: int, rates=RATES):
        super().__init__()
        for i, rate in enumerate(rates):
            self.add_module(f"c{i}", nn.Conv2d(in_ch, num_classes, 3, 1, padding=rate, dilation=rate, bias=True))
        self.rates = tuple(rates)

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each rate's own class scores, in rate order (the Explanations tab shows them apart)."""
        return [branch(x) for branch in self.children()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(self.branches(x))


class DeepLabV2(nn.Sequential):
    """One scale: dilated ResNet-101 (output stride 8), then ASPP."""

    def __init__(self, num_classes: int, blocks=BLOCKS, rates=RATES):
        super().__init__()
        ch = [64 * 2**p for p in range(6)]
        self.add_module("layer1", Stem(ch[0]))
        self.add_module("layer2", ResLayer(blocks[0], ch[0], ch[2], 1, 1))
        self.add_module("layer3", ResLayer(blocks[1], ch[2], ch[3], 2, 1))
        self.add_module("layer4", ResLayer(blocks[2], ch[3], ch[4], 1, 2))
        self.add_module("layer5", ResLayer(blocks[3], ch[4], ch[5], 1, 4))
        self.add_module("aspp", ASPP(ch[5], num_classes, rates))


class MSC(nn.Module):
    """Multi-scale inputs with max fusion (eval mode): scores at the full-scale map's size."""

    def __init__(self, base: nn.Module, scales=SCALES):
        super().__init__()
        self.base = base
        self.scales = tuple(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.base(x)
        size = logits.shape[-2:]
        fused = [logits]
        for scale in self.scales:
            small = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            fused.append(F.interpolate(self.base(small), size=size, mode="bilinear", align_corners=False))
        return torch.stack(fused).max(0).values


def deeplabv2_resnet101_msc(num_classes: int) -> MSC:
    return MSC(DeepLabV2(num_classes))
