"""Convolutions and linear layers on a CPU's fast path: weights cast once for autocast, dilated convolutions
as sums of 1x1 taps.

Under autocast every convolution casts its fp32 weight to bf16 on every call: for a ResNet-50 that is about
100 MB written per forward (about a quarter of a bf16 PSPNet's time on the 2-vCPU Intel Xeon). A FastConv2d
keeps the cast weight (the very values autocast would make) as a buffer, so that it is paid once; the buffer
counts in the model's bytes, and it is dropped again when the model ends up running fp32. A FastLinear does
the same for a Linear layer (the transformers' attention and MLP weights).

A dilated 3x3 convolution (ASPP branches, the dilated stages of "D8" backbones) reads nine taps of its input,
each shifted by a multiple of the dilation. On some CPUs the library's dilated kernel is far off its fast path
(on a 2-vCPU Intel Xeon with AMX, a bf16 2048 -> 256 channel convolution dilated 36 on a 64 x 64 map took
about 660 ms, against about 110 ms as the sum of its taps). Each tap is a 1x1 convolution, i.e. a plain
matrix product, over the part of the input it sees; a tap that would only read the zero padding is skipped.
The result is the same convolution up to float rounding (the taps are summed in fp32).

A FastConv2d keeps the Conv2d's parameters and state_dict keys; for a dilated one it decides per input shape
and precision, by timing both once, whether the taps or the library's own kernel are faster, so that no
convolution gets slower.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

TIMED_RUNS = 2  # per way, after one warm-up each: the faster of two keeps one noisy run from deciding


def conv_as_taps(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
                 dilation: tuple[int, int], groups: int) -> torch.Tensor:
    """F.conv2d(x, weight, bias, stride=1, padding, dilation, groups), as one 1x1 convolution per tap.

    A depthwise convolution (one filter per channel) has no matrix product to gain: its taps are multiply-adds
    of shifted views instead (see depthwise_taps)."""
    out_h, out_w, taps = _taps(x, weight, padding, dilation)
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    if groups == x.shape[1] == weight.shape[0] and weight.shape[1] == 1:
        out = depthwise_taps(x, weight, out_h, out_w, taps, layout)
    else:
        out = None
        for _, i, j, dy, dx, (r0, r1), (c0, c1) in taps:
            part = F.conv2d(x[:, :, r0 + dy : r1 + dy, c0 + dx : c1 + dx], weight[:, :, i : i + 1, j : j + 1], None, 1, 0, 1, groups)
            if out is None and part.shape[-2:] == (out_h, out_w):
                out = part.to(torch.float32)  # a copy, in the input's memory layout
                continue
            if out is None:
                out = _zeros(x, weight.shape[0], out_h, out_w, layout)
            out[:, :, r0:r1, c0:c1] += part
        if out is None:  # every tap reads padding only: the output is the bias
            out = _zeros(x, weight.shape[0], out_h, out_w, layout)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
    return out.to(dtype)


def _taps(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, list]:
    """The output's height and width, and the taps that read some of the input: (output cells it covers, kernel
    row, kernel column, row shift, column shift, output rows, output columns), widest first."""
    _, _, height, width = x.shape
    kernel_h, kernel_w = weight.shape[-2:]
    out_h = height + 2 * padding[0] - dilation[0] * (kernel_h - 1)
    out_w = width + 2 * padding[1] - dilation[1] * (kernel_w - 1)
    taps = []
    for i in range(kernel_h):
        dy = i * dilation[0] - padding[0]  # output row r reads input row r + dy
        rows = (max(0, -dy), min(out_h, height - dy))
        for j in range(kernel_w):
            dx = j * dilation[1] - padding[1]
            cols = (max(0, -dx), min(out_w, width - dx))
            if rows[0] < rows[1] and cols[0] < cols[1]:  # else the tap reads only padding
                taps.append(((rows[1] - rows[0]) * (cols[1] - cols[0]), i, j, dy, dx, rows, cols))
    taps.sort(key=lambda tap: -tap[0])  # the widest tap first: for a "same" convolution it covers the output
    return out_h, out_w, taps


def depthwise_taps(x: torch.Tensor, weight: torch.Tensor, out_h: int, out_w: int, taps: list,
                   layout: torch.memory_format) -> torch.Tensor:
    """A depthwise convolution as fp32 multiply-adds: each tap adds its shifted view of the input times its
    per-channel weight.

    The input is first rounded to the weight's type, as autocast rounds it for the library's kernel, then
    both are taken to fp32, where their products are exact and are summed. On the 2-vCPU Intel Xeon with
    AMX the library's dilated depthwise kernel on channels_last maps was far off its fast path (2048 channels
    of 128 x 171, dilation 12 / 24 / 36: 729 / 3028 / 2774 ms in bf16); this took about 200 ms.
    """
    x = x.to(weight.dtype).float()
    weight = weight.float()
    out = None
    for _, i, j, dy, dx, (r0, r1), (c0, c1) in taps:
        part, scale = x[:, :, r0 + dy : r1 + dy, c0 + dx : c1 + dx], weight[:, :, i, j].view(1, -1, 1, 1)
        if out is None and part.shape[-2:] == (out_h, out_w):
            out = (part * scale).contiguous(memory_format=layout)  # the widest tap covers the output
            continue
        if out is None:
            out = _zeros(x, weight.shape[0], out_h, out_w, layout)
        out[:, :, r0:r1, c0:c1].addcmul_(part, scale)
    return out if out is not None else _zeros(x, weight.shape[0], out_h, out_w, layout)


def _zeros(x: torch.Tensor, channels: int, height: int, width: int, layout: torch.memory_format) -> torch.Tensor:
    return torch.zeros((x.shape[0], channels, height, width), dtype=torch.float32, device=x.device).contiguous(memory_format=layout)


def rewritable(module: nn.Module) -> bool:
    """A stride-1, zero-padded Conv2d with a dilation above 1 (what the taps compute exactly)."""
    return (isinstance(module, nn.Conv2d) and max(module.dilation) > 1 and module.stride == (1, 1)
            and module.padding_mode == "zeros" and not isinstance(module.padding, str))


class KeepsAutocastWeight:
    """A layer whose weight, cast as autocast would cast it, is made once and kept (`forced` = "library": not)."""

    forced: str | None = None  # "library" while the optimiser runs the model plain for comparison

    def _weight(self, x: torch.Tensor) -> torch.Tensor:
        """The weight as autocast would cast it for this call, made once and kept; else the weight itself."""
        if self.forced == "library" or not torch.is_autocast_enabled(x.device.type):
            return self.weight
        dtype = torch.get_autocast_dtype(x.device.type)
        cast = self._buffers.get("autocast_weight")
        if cast is None or cast.dtype != dtype or cast.device != self.weight.device:
            cast = self.weight.detach().to(dtype)  # keeps the memory layout
            self.register_buffer("autocast_weight", cast, persistent=False)
        return cast


class FastLinear(KeepsAutocastWeight, nn.Linear):
    """A Linear layer that keeps its autocast weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self._weight(x), self.bias)


class FastConv2d(KeepsAutocastWeight, nn.Conv2d):
    """A Conv2d that keeps its autocast weight and, when dilated, runs as taps where that measured faster."""

    taps: bool  # a dilated convolution the taps can compute
    choices: dict  # (input shape, dtype, autocast dtype, channels_last) -> "taps" | "library"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self._weight(x)
        if self.taps:
            autocast = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else None
            key = (tuple(x.shape), x.dtype, autocast, x.is_contiguous(memory_format=torch.channels_last))
            way = self.forced or self.choices.get(key)
            if way is None:
                way = self.choices[key] = self._faster(x, weight)
            if way == "taps":
                return self._taps(x, weight)
        return self._conv_forward(x, weight, self.bias)

    def _taps(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return conv_as_taps(x, weight, self.bias, self.padding, self.dilation, self.groups)

    def _faster(self, x: torch.Tensor, weight: torch.Tensor) -> str:
        times = {}
        for way, run in (("library", lambda: self._conv_forward(x, weight, self.bias)), ("taps", lambda: self._taps(x, weight))):
            run()  # warm-up: oneDNN builds its primitive for this shape on the first call
            best = float("inf")
            for _ in range(TIMED_RUNS):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            times[way] = best
        return "taps" if times["taps"] < times["library"] else "library"


def speed_up_layers(module: nn.Module) -> int:
    """Turn every Conv2d inside `module` into a FastConv2d and every Linear into a FastLinear, in place; how
    many of the convolutions are dilated (taps). Subclasses of either are left as their code wrote them."""
    dilated = 0
    for layer in module.modules():
        if type(layer) is nn.Conv2d:
            layer.__class__ = FastConv2d  # same object, parameters and state_dict keys: only forward changes
            layer.taps = rewritable(layer)
            layer.choices = {}
            dilated += layer.taps
        elif type(layer) is nn.Linear:
            layer.__class__ = FastLinear
    return dilated


def force(module: nn.Module, way: str | None) -> None:
    """Make every FastConv2d and FastLinear in `module` run as the library does, fp32 weights included
    ("library"), or choose again by measurement (None)."""
    for layer in module.modules():
        if isinstance(layer, KeepsAutocastWeight):
            layer.forced = way


def drop_casts(module: nn.Module) -> None:
    """Free the kept autocast weights (the model runs fp32 after all)."""
    for layer in module.modules():
        if isinstance(layer, KeepsAutocastWeight):
            layer._buffers.pop("autocast_weight", None)


def choices_made(module: nn.Module) -> dict[str, int]:
    """How many (layer, input shape) decisions went each way: for the benchmark."""
    counts = {"taps": 0, "library": 0}
    for layer in module.modules():
        if isinstance(layer, FastConv2d) and layer.taps:
            for way in layer.choices.values():
                counts[way] += 1
    return counts
