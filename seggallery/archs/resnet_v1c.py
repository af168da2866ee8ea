"""mmsegmentation's ResNetV1c-50 backbone, which is timm's resnet50c.

ResNet-V1c replaces the 7x7 stem convolution by three 3x3 convolutions (32, 32, 64 channels). For the
"D8" models, stages 3 and 4 keep stride 1 and dilate their 3x3 convolutions by 2 and 4 instead, so the
last map is 1/8 of the input; the first block of a dilated stage uses half that dilation (mmseg's
contract_dilation=True). timm's resnet50c with output_stride=8 builds exactly this network: same convs,
strides, dilations and paddings, and the same outputs to the last bit for the same weights (checked
against mmseg's ResNetV1c in tests/test_backend_mmseg.py). Only the stem's names differ.

FastFCN's "R-50-D32" is the strided network (output stride 32) whose stages 3 and 4 are dilated all the
same (2 and 4, the first block of each at half that, stride 2 kept): `dilate_strided=True` sets those
dilations on timm's strided network (the 3x3 conv of each block; the 1x1 shortcut is unaffected).
"""

from __future__ import annotations

import torch
from timm.models.resnet import Bottleneck, ResNet

# timm's `resnet50c` registration, verbatim.
RESNET50C = dict(block=Bottleneck, layers=(3, 4, 6, 3), stem_width=32, stem_type="deep")

# mmseg keeps the deep stem in one Sequential `stem` (conv, bn, relu, conv, bn, relu, conv, bn, relu);
# timm splits it into `conv1` (conv, bn, relu, conv, bn, relu, conv) and `bn1`. Every other name agrees.
MMSEG_STEM_TO_TIMM = {
    "stem.0.": "conv1.0.",
    "stem.1.": "conv1.1.",
    "stem.3.": "conv1.3.",
    "stem.4.": "conv1.4.",
    "stem.6.": "conv1.6.",
    "stem.7.": "bn1.",
}


class ResNetV1c(ResNet):
    """ResNet-50-C returning the outputs of its four stages (1/4, 1/8, 1/8 or 1/16, 1/8 or 1/32).

    Module paths: conv1 + bn1 + act1 (stem) -> maxpool -> layer1 (256 ch) -> layer2 (512) -> layer3 (1024)
    -> layer4 (2048).
    """

    def __init__(self, output_stride: int = 8, dilate_strided: bool = False):
        super().__init__(**RESNET50C, output_stride=output_stride, num_classes=0, global_pool="")
        self.output_stride = output_stride
        if dilate_strided:
            if output_stride != 32:
                raise ValueError("dilate_strided applies to the strided network (output_stride=32)")
            for layer, dilation in ((self.layer3, 2), (self.layer4, 4)):
                dilate(layer, dilation)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]


def dilate(layer: torch.nn.Sequential, dilation: int) -> None:
    """Dilate the 3x3 convs of a stage's blocks (padding = dilation keeps the size), the first block's by half
    (mmseg's contract_dilation=True), as mmseg's ResLayer builds a stage with that dilation."""
    for index, block in enumerate(layer):
        rate = dilation // 2 if index == 0 else dilation
        block.conv2.dilation = (rate, rate)
        block.conv2.padding = (rate, rate)
