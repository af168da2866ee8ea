"""Fast-SCNN's head: mmseg's DepthwiseSeparableFCNHead, an FCN head whose convolutions are depthwise separable."""

from __future__ import annotations

from torch import nn

from .common import DepthwiseSeparableConv
from .fcn import FCNHead


class DepthwiseSeparableFCNHead(FCNHead):
    """FCNHead (same arguments) with each 3x3 conv + BN + ReLU replaced by a depthwise 3x3 conv + BN (no
    activation, mmseg's dw_act_cfg=None) followed by a pointwise 1x1 conv + BN + ReLU. mmseg builds these
    convolutions without dilation.

    Module outputs: convs.<i>.depthwise_conv / .pointwise_conv, conv_seg (num_classes x h x w).
    """

    @staticmethod
    def conv_module(in_channels: int, out_channels: int, kernel_size: int, dilation: int, norm_eps: float) -> nn.Module:
        if kernel_size != 3 or norm_eps != 1e-5:
            raise ValueError("DepthwiseSeparableFCNHead is built here with 3x3 convolutions and BN eps 1e-5 only")
        return DepthwiseSeparableConv(in_channels, out_channels, depthwise_relu=False)
