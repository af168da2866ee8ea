"""CCNet head (Huang et al. 2019): criss-cross attention, applied twice, between the FCN head's two convolutions."""

from __future__ import annotations

import torch
from torch import nn

from .common import Scale, cat_for_conv
from .fcn import FCNHead


class CrissCrossWeights(nn.Module):
    """One softmax over a position's column and row energies (B x H x W x H and B x H x W x W) -> B x H x W x (H + W)
    weights, the column's first. A module of its own so that a forward hook (the Explanations tab's probe) can
    read them."""

    def forward(self, column: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        return torch.cat([column, row], dim=-1).softmax(-1)


class CrissCrossAttention(nn.Module):
    """mmcv's CrissCrossAttention (pure PyTorch since mmcv 1.3.13): each position attends to the positions in its
    own row and its own column (H + W - 1 of them, itself counted once), x + gamma * weighted sum of their values.

    query and key are 1x1 projections to channels / 8, the value a 1x1 projection keeping all channels; one
    softmax runs over the column and the row together. Applied twice, every position reaches every other:
    the first pass brings a position's row to its column, the second that column to the position.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.attention = CrissCrossWeights()
        self.gamma = Scale(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        query, key, value = self.query_conv(x), self.key_conv(x), self.value_conv(x)
        # column: position (h, w) against (i, w) for every row i; itself is left to the row term
        itself = torch.full((height,), float("-inf"), device=x.device, dtype=query.dtype).diag()
        column = torch.einsum("bchw,bciw->bhwi", query, key) + itself[:, None, :]
        row = torch.einsum("bchw,bchj->bhwj", query, key)  # (h, w) against (h, j) for every column j
        weights = self.attention(column, row)  # B x H x W x (H + W)
        out = torch.einsum("bciw,bhwi->bchw", value, weights[..., :height])
        out = out + torch.einsum("bchj,bhwj->bchw", value, weights[..., height:])
        return self.gamma(out) + x


class CCHead(FCNHead):
    """FCNHead with `recurrence` criss-cross attentions between its two 3x3 convs:
    conv -> attention x2 -> conv -> concat with the head's input -> 3x3 conv -> classifier.

    Module outputs (input H x W, output stride 8): convs.0, cca (each pass), convs.1, conv_cat,
    all 512 x H/8 x W/8; cca.attention (H/8 x W/8 x (H/8 + W/8) weights); conv_seg (num_classes x H/8 x W/8).
    """

    def __init__(self, num_classes: int, align_corners: bool, in_channels: int = 2048, channels: int = 512,
                 recurrence: int = 2):
        super().__init__(num_classes, align_corners, in_channels, channels)
        self.recurrence = recurrence
        self.cca = CrissCrossAttention(channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        out = self.convs[0](x)
        for _ in range(self.recurrence):
            out = self.cca(out)
        out = self.convs[1](out)
        return self.conv_seg(self.conv_cat(cat_for_conv([x, out])))
