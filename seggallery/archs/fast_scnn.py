"""mmsegmentation's Fast-SCNN backbone (Poudel et al. 2019): two branches that share their first layers.

"Learning to downsample": a 3x3 stride-2 conv and two depthwise separable stride-2 convs take the image to
1/8 (64 channels). That map feeds both branches: the global feature extractor runs MobileNetV2 inverted
residual blocks down to 1/32 (64, 96, 128 channels), adds pyramid pooling (1, 2, 3, 6 bins) and a 3x3
conv; the feature fusion module upsamples that coarse map to 1/8, passes it through a depthwise 3x3 conv
and a 1x1 conv, and adds the 1/8 map (through its own 1x1 conv) before a ReLU. Returns the three maps
[1/8 shared (64), 1/32 global (128), 1/8 fused (128)]; the decode head reads the last. mmseg's names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads.common import ConvBNReLU, DepthwiseSeparableConv, cat_for_conv
from .heads.psp import PyramidPooling


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand (x6) + ReLU, depthwise 3x3 (stride) + ReLU, 1x1 project (no activation),
    plus the input when the shape is kept. `conv.0`, `conv.1`, `conv.2` as in mmseg."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int = 6):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            ConvBNReLU(in_channels, hidden, 1),
            ConvBNReLU(hidden, hidden, 3, stride=stride, groups=hidden),
            ConvBNReLU(hidden, out_channels, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class LearningToDownsample(nn.Module):
    """3x3 stride-2 conv (32), then two depthwise separable stride-2 convs (48, 64): the image at 1/8."""

    def __init__(self, in_channels: int = 3, dw_channels=(32, 48), out_channels: int = 64):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, dw_channels[0], 3, stride=2)
        self.dsconv1 = DepthwiseSeparableConv(dw_channels[0], dw_channels[1], stride=2, depthwise_relu=False)
        self.dsconv2 = DepthwiseSeparableConv(dw_channels[1], out_channels, stride=2, depthwise_relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dsconv2(self.dsconv1(self.conv(x)))


class GlobalFeatureExtractor(nn.Module):
    """Three stages of three inverted residual blocks (strides 2, 2, 1), pyramid pooling, a 3x3 conv."""

    def __init__(self, in_channels: int = 64, block_channels=(64, 96, 128), out_channels: int = 128,
                 strides=(2, 2, 1), num_blocks: int = 3):
        super().__init__()
        widths = (in_channels, *block_channels)
        for i, stride in enumerate(strides):
            blocks = [InvertedResidual(widths[i], widths[i + 1], stride)]
            blocks += [InvertedResidual(widths[i + 1], widths[i + 1], 1) for _ in range(num_blocks - 1)]
            self.add_module(f"bottleneck{i + 1}", nn.Sequential(*blocks))
        self.ppm = PyramidPooling((1, 2, 3, 6), block_channels[-1], block_channels[-1] // 4, align_corners=False)
        self.out = ConvBNReLU(2 * block_channels[-1], out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bottleneck3(self.bottleneck2(self.bottleneck1(x)))
        return self.out(cat_for_conv([x, *self.ppm(x)]))


class FeatureFusionModule(nn.Module):
    """relu(1x1 conv(the 1/8 map) + 1x1 conv(depthwise 3x3 conv + ReLU(the global map, upsampled to 1/8)))."""

    def __init__(self, higher_in_channels: int = 64, lower_in_channels: int = 128, out_channels: int = 128):
        super().__init__()
        self.dwconv = ConvBNReLU(lower_in_channels, out_channels, 3, groups=out_channels)
        self.conv_lower_res = ConvBNReLU(out_channels, out_channels, 1, relu=False)
        self.conv_higher_res = ConvBNReLU(higher_in_channels, out_channels, 1, relu=False)
        self.relu = nn.ReLU()

    def forward(self, higher: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
        lower = F.interpolate(lower, size=higher.shape[2:], mode="bilinear", align_corners=False)
        return self.relu(self.conv_higher_res(higher) + self.conv_lower_res(self.dwconv(lower)))


class FastSCNN(nn.Module):
    """Module paths: learning_to_downsample, global_feature_extractor (bottleneck1-3, ppm, out), feature_fusion."""

    def __init__(self):
        super().__init__()
        self.learning_to_downsample = LearningToDownsample()
        self.global_feature_extractor = GlobalFeatureExtractor()
        self.feature_fusion = FeatureFusionModule()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        higher = self.learning_to_downsample(x)
        lower = self.global_feature_extractor(higher)
        return [higher, lower, self.feature_fusion(higher, lower)]
