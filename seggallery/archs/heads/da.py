"""DANet head (Fu et al. 2019): self-attention between all positions and between all channels, side by side."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConvBNReLU, DecodeHead, Scale


class AttentionWeights(nn.Module):
    """softmax over the key positions of a B x N x N similarity (N = h x w), returned as B x N x h x w.

    Row q, reshaped to the map's h x w, is where query position q gathers its new feature from. A module of
    its own so that a forward hook (the Explanations tab's probe) can read those weights.
    """

    def forward(self, similarity: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return similarity.softmax(-1).unflatten(-1, size)


class PositionAttention(nn.Module):
    """mmseg's PAM: every position's feature becomes x + gamma * (attention-weighted sum of every position's value).

    query and key are 1x1 projections to `key_channels`; the similarity of positions i and j is their dot
    product (not scaled by sqrt(channels)); the value is a 1x1 projection keeping all channels.

    With `fused_attention` (the engine sets it, runtime.fast_attention) the same attention runs as one
    scaled_dot_product_attention that never holds the N x N weights (at Cityscapes' 2048 x 1024, N = 32,768: two
    4 GB matrices); the explicit weights are still computed whenever a hook reads them (the Explanations probe).
    """

    fused_attention = False

    def __init__(self, channels: int, key_channels: int):
        super().__init__()
        self.query_project = nn.Conv2d(channels, key_channels, 1)
        self.key_project = nn.Conv2d(channels, key_channels, 1)
        self.value_project = nn.Conv2d(channels, channels, 1)
        self.attention = AttentionWeights()
        self.gamma = Scale(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[2:])
        query = self.query_project(x).flatten(2).transpose(1, 2)  # B x N x key_channels
        key = self.key_project(x).flatten(2)  # B x key_channels x N
        value = self.value_project(x).flatten(2)  # B x C x N
        if self.fused_attention and not (self.attention._forward_hooks or self.attention._forward_pre_hooks):
            context = unscaled_attention(query, key.transpose(1, 2), value.transpose(1, 2)).transpose(1, 2)
        else:
            weights = self.attention(query @ key, size).flatten(2)  # B x N (queries) x N (keys)
            context = value @ weights.transpose(1, 2)
        return self.gamma(context.unflatten(-1, size)) + x


def unscaled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """softmax(query @ key^T) @ value for B x N x K queries and keys and B x N x C values, in one fused kernel.

    torch's fused CPU kernel (flash attention) needs queries, keys and values of one width: with C > K the
    queries and keys are padded with zeros to C channels, which adds nothing to any dot product. Where no
    fused kernel applies, scaled_dot_product_attention computes it the explicit way.
    """
    width, channels = query.shape[-1], value.shape[-1]
    if width < channels:
        query, key = F.pad(query, (0, channels - width)), F.pad(key, (0, channels - width))
    elif width > channels:
        value = F.pad(value, (0, width - channels))
    return F.scaled_dot_product_attention(query[:, None], key[:, None], value[:, None], scale=1.0)[:, 0, :, :channels]


class ChannelAttention(nn.Module):
    """mmseg's CAM: every channel becomes x + gamma * (attention-weighted sum of all channels).

    The similarity of channels i and j is the dot product of their maps; as in DANet's code, the softmax is
    taken of (row maximum - similarity), so channels that respond *differently* get the larger weights.
    """

    def __init__(self):
        super().__init__()
        self.gamma = Scale(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)  # B x C x N
        energy = flat @ flat.transpose(1, 2)  # B x C x C
        weights = (energy.amax(-1, keepdim=True) - energy).softmax(-1)
        return self.gamma((weights @ flat).view_as(x)) + x


class DAHead(DecodeHead):
    """Two branches on the last backbone map, summed, then the classifier:
    3x3 conv -> position attention -> 3x3 conv, and 3x3 conv -> channel attention -> 3x3 conv.

    mmseg's DAHead also classifies each branch alone (`pam_conv_seg`, `cam_conv_seg`) for two extra training
    losses; its prediction uses only the sum, so those classifiers are not built here.

    Module outputs (input H x W, output stride 8): pam_in_conv, pam (position attention),
    pam.attention (N x H/8 x W/8 weights, N = H/8 x W/8), pam_out_conv, the same for cam_* (no weights
    module: channel attention is C x C), all 512 x H/8 x W/8; conv_seg (num_classes x H/8 x W/8).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512,
                 pam_channels: int = 64):
        super().__init__(channels, num_classes, align_corners)
        self.pam_in_conv = ConvBNReLU(in_channels, channels, 3)
        self.pam = PositionAttention(channels, pam_channels)
        self.pam_out_conv = ConvBNReLU(channels, channels, 3)
        self.cam_in_conv = ConvBNReLU(in_channels, channels, 3)
        self.cam = ChannelAttention()
        self.cam_out_conv = ConvBNReLU(channels, channels, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        position = self.pam_out_conv(self.pam(self.pam_in_conv(x)))
        channel = self.cam_out_conv(self.cam(self.cam_in_conv(x)))
        return self.conv_seg(position + channel)
