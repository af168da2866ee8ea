"""The fully connected CRF of DeepLab v1/v2 (Krähenbühl and Koltun 2011), mean-field inference in PyTorch.

Every pixel is connected to every other by two Gaussian kernels of Potts weight: a spatial one,
w1 exp(-|p_i - p_j|^2 / 2 sxy1^2) (small, smooth regions), and a bilateral one,
w2 exp(-|p_i - p_j|^2 / 2 sxy2^2 - |I_i - I_j|^2 / 2 srgb^2) (pixels alike in colour, even far apart,
agree). Mean-field inference starts from the model's probabilities P and repeats

    Q <- softmax(log P + sum_m w_m D_m^-1/2 K_m D_m^-1/2 Q),   D_m = K_m 1,

which is what densecrf's inference (pydensecrf, which deeplab-pytorch calls) computes with its default
symmetric kernel normalisation; the unary is -log P clipped at 1e-5 as pydensecrf's unary_from_softmax.
As in densecrf, the kernel sums include the pixel itself.

How each kernel is applied:
- spatial: exactly, as a separable convolution (taps to 4 standard deviations; zero padding, so D is
  smaller at the border, as the dense sum is);
- bilateral: on the permutohedral lattice (runtime/permutohedral.py), densecrf's approximation.

tests/test_crf.py checks both against the naive O(N^2) mean field on small images. `refine` applies the
CRF to any model's class scores: the photo is resized so its long side is `size` (513, the size at which
DeepLab's parameters were tuned) and the scores are upsampled to it before the CRF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .permutohedral import Lattice

UNARY_CLIP = 1e-5


@dataclass(frozen=True)
class CrfParams:
    """kazuto1011/deeplab-pytorch configs/voc12.yaml (and cocostuff164k.yaml): CRF section."""

    iterations: int = 10
    pos_w: float = 3.0
    pos_xy_std: float = 1.0
    bi_w: float = 4.0
    bi_xy_std: float = 67.0
    bi_rgb_std: float = 3.0
    size: int = 513  # long side of the image the CRF runs on (deeplab-pytorch's test size)


DEFAULT = CrfParams()


def _gaussian_taps(std: float, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(4 * std))
    x = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return torch.exp(-0.5 * (x / std) ** 2)


def spatial_filter(values: torch.Tensor, std: float) -> torch.Tensor:
    """C x H x W values filtered by exp(-|dp|^2 / 2 std^2), zero outside the image (separable: exact)."""
    taps = _gaussian_taps(std, values.device)
    c, radius = values.shape[0], taps.numel() // 2
    x = values[None]  # 1 x C x H x W, filtered depthwise (one group per class: fast on CPU and GPU)
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)
    return x[0]


def bilateral_features(image: torch.Tensor, xy_std: float, rgb_std: float) -> torch.Tensor:
    """N x 5 features (x, y, and the three channels, each over its standard deviation) of H x W x 3 pixels."""
    h, w = image.shape[:2]
    ys, xs = torch.meshgrid(torch.arange(h, device=image.device), torch.arange(w, device=image.device), indexing="ij")
    position = torch.stack([xs, ys], -1).float() / xy_std
    return torch.cat([position, image.float() / rgb_std], -1).reshape(h * w, 5)


def mean_field(probs: torch.Tensor, image: torch.Tensor, params: CrfParams = DEFAULT) -> torch.Tensor:
    """C x H x W probabilities refined by the dense CRF on H x W x 3 uint8 pixels (same H x W)."""
    c, h, w = probs.shape
    if tuple(image.shape[:2]) != (h, w):
        raise ValueError(f"CRF: probabilities are {h}x{w} but the image is {image.shape[0]}x{image.shape[1]}")
    probs = probs.float()
    unary = probs.clamp(UNARY_CLIP, 1.0).log()
    lattice = Lattice(bilateral_features(image, params.bi_xy_std, params.bi_rgb_std))
    ones = torch.ones(h * w, 1, device=probs.device)
    bi_norm = lattice.filter(ones).view(1, h, w).clamp_min(1e-20).rsqrt()
    pos_norm = spatial_filter(torch.ones(1, h, w, device=probs.device), params.pos_xy_std).clamp_min(1e-20).rsqrt()
    q = unary.softmax(0)
    for _ in range(params.iterations):
        spatial = spatial_filter(q * pos_norm, params.pos_xy_std) * pos_norm
        bilateral = lattice.filter((q * bi_norm).reshape(c, -1).T).T.reshape(c, h, w) * bi_norm
        q = (unary + params.pos_w * spatial + params.bi_w * bilateral).softmax(0)
    return q


def working_image(image: np.ndarray, size: int) -> np.ndarray:
    """The photo resized so its long side is `size` (cv2 bilinear on uint8, as deeplab-pytorch's demo.py)."""
    import cv2  # opencv-python-headless (requirements.txt)

    scale = size / max(image.shape[:2])
    return image if scale == 1 else cv2.resize(image, dsize=None, fx=scale, fy=scale)


def refine(scores: torch.Tensor, image: np.ndarray, params: CrfParams = DEFAULT) -> torch.Tensor:
    """1 x C x h x w class scores (logits) of `image` -> C x H' x W' CRF probabilities, where H' x W' is
    the photo resized to a long side of params.size."""
    pixels = working_image(image, params.size)
    target = pixels.shape[:2]
    logits = scores.float()
    if tuple(logits.shape[-2:]) != tuple(target):
        logits = F.interpolate(logits, size=target, mode="bilinear", align_corners=False)
    probs = logits[0].softmax(0)
    return mean_field(probs, torch.from_numpy(np.ascontiguousarray(pixels)).to(scores.device), params)
