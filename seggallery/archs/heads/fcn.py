"""FCN head (Long et al. 2015, as mmseg's FCNHead builds it): convolutions on one backbone map, then a classifier."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .common import ConvBNReLU, DecodeHead, cat_for_conv


class FCNHead(DecodeHead):
    """backbone map `in_index` -> `num_convs` k x k convs -> (concat with that map -> k x k conv) -> 1x1 classifier.

    The arguments are mmseg's FCNHead's, with its defaults for the R50-D8 models: the last of four maps
    (2048 channels at 1/8), two 3x3 convs to 512 channels, the input concatenated back and fused by a
    third. The real-time and U-Net entries set them in the catalog's `source.head_args`: e.g. U-Net reads
    its full-resolution decoder map (64 channels) with one conv and no concatenation; CGNet's head has no
    conv at all (`num_convs = 0`: `convs` is the identity and only the classifier remains).
    `norm_eps` is the BatchNorm eps of the config's norm_cfg (CGNet's is 1e-3).

    Module outputs: convs (channels x h x w, the input map's size), conv_cat (the same), conv_seg = the
    coarse score map (num_classes x h x w).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512,
                 num_convs: int = 2, concat_input: bool = True, kernel_size: int = 3, dilation: int = 1,
                 in_index: int = -1, norm_eps: float = 1e-5):
        super().__init__(channels, num_classes, align_corners)
        if num_convs == 0 and in_channels != channels:
            raise ValueError(f"an FCNHead without convs needs in_channels == channels, not {in_channels} != {channels}")
        self.in_index = in_index
        if num_convs == 0:
            self.convs = nn.Identity()
        else:
            widths = [in_channels] + [channels] * num_convs
            self.convs = nn.Sequential(*(self.conv_module(a, b, kernel_size, dilation, norm_eps)
                                         for a, b in itertools.pairwise(widths)))
        # mmseg pads conv_cat by kernel_size // 2 and does not dilate it
        self.conv_cat = self.conv_module(in_channels + channels, channels, kernel_size, 1, norm_eps) if concat_input else None

    @staticmethod
    def conv_module(in_channels: int, out_channels: int, kernel_size: int, dilation: int, norm_eps: float) -> nn.Module:
        """One of the head's convolutions: k x k conv + BN + ReLU (mmcv's ConvModule)."""
        return ConvBNReLU(in_channels, out_channels, kernel_size, dilation=dilation, norm_eps=norm_eps)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[self.in_index]
        fused = self.convs(x)
        if self.conv_cat is not None:
            fused = self.conv_cat(cat_for_conv([x, fused]))
        return self.conv_seg(fused)
