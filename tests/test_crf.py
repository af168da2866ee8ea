"""The dense CRF (seggallery/runtime/crf.py) against the naive O(N^2) mean field on small real-photo crops.

The naive reference builds both kernels as dense N x N matrices, exp(-|f_i - f_j|^2 / 2) including i = j,
normalises them symmetrically and runs the same updates (densecrf's inference, which pydensecrf and so
deeplab-pytorch run). Ours applies the spatial kernel exactly (separable, taps to 4 std) and the
bilateral one on the permutohedral lattice, densecrf's approximation; pydensecrf itself is not on PyPI
as a wheel (it needs a compiler), so it is not the reference here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import EXAMPLES

from seggallery.images import load_image
from seggallery.runtime import crf
from seggallery.runtime.permutohedral import Lattice


def _naive_mean_field(probs: torch.Tensor, image: torch.Tensor, p: crf.CrfParams) -> torch.Tensor:
    c, h, w = probs.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    xy = torch.stack([xs, ys], -1).reshape(-1, 2).double()
    rgb = image.reshape(-1, 3).double()
    kernels = []
    for weight, features in ((p.pos_w, xy / p.pos_xy_std), (p.bi_w, torch.cat([xy / p.bi_xy_std, rgb / p.bi_rgb_std], 1))):
        k = torch.exp(-0.5 * torch.cdist(features, features) ** 2)
        norm = k.sum(1).rsqrt()
        kernels.append(weight * norm[:, None] * k * norm[None, :])
    unary = probs.reshape(c, -1).double().clamp(crf.UNARY_CLIP, 1).log()
    q = unary.softmax(0)
    for _ in range(p.iterations):
        q = (unary + sum(q @ k.T for k in kernels)).softmax(0)
    return q.reshape(c, h, w).float()


@pytest.fixture(scope="module")
def crop() -> torch.Tensor:
    """A 36 x 44 crop across the dogs' edges in a real photo."""
    pixels = load_image(EXAMPLES / "animal-dogs.jpg").pixels
    return torch.from_numpy(np.ascontiguousarray(pixels[430:466, 250:294]))


def _smooth_probs(h: int, w: int, classes: int, seed: int) -> torch.Tensor:
    """Class probabilities of a coarse random score map, bilinearly upsampled (as a network's 1/8 output is)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, classes, h // 6 + 1, w // 6 + 1, generator=generator) * 1.5
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].softmax(0)


def test_spatial_kernel_is_the_exact_gaussian(crop):
    h, w = crop.shape[:2]
    values = torch.rand(2, h, w, generator=torch.Generator().manual_seed(1))
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    xy = torch.stack([xs, ys], -1).reshape(-1, 2).float()
    dense = torch.exp(-0.5 * torch.cdist(xy, xy) ** 2 / 1.5**2)
    expected = (values.reshape(2, -1) @ dense.T).reshape(2, h, w)
    torch.testing.assert_close(crf.spatial_filter(values, 1.5), expected, rtol=0, atol=2e-3)


def test_lattice_filter_approximates_the_gaussian(crop):
    """Normalised filtering (a weighted mean) on the lattice is close to the exact one, and far from no filtering."""
    features = crf.bilateral_features(crop, 8.0, 12.0).double()
    values = torch.rand(features.shape[0], 3, generator=torch.Generator().manual_seed(2)).double()
    dense = torch.exp(-0.5 * torch.cdist(features, features) ** 2)
    exact = dense @ values / dense.sum(1, keepdim=True)
    lattice = Lattice(features.float())
    approx = (lattice.filter(values.float()) / lattice.filter(torch.ones(features.shape[0], 1))).double()
    spread = (exact - values).abs().mean()
    assert (approx - exact).abs().mean() < 0.25 * spread


@pytest.mark.parametrize("params", [crf.CrfParams(bi_xy_std=10.0, bi_rgb_std=13.0), crf.DEFAULT], ids=["small-kernel", "deeplab-defaults"])
def test_mean_field_agrees_with_the_naive_dense_crf(crop, params):
    h, w = crop.shape[:2]
    probs = _smooth_probs(h, w, 4, seed=3)
    expected = _naive_mean_field(probs, crop, params)
    ours = crf.mean_field(probs, crop, params)
    assert ours.shape == probs.shape
    torch.testing.assert_close(ours.sum(0), torch.ones(h, w))
    changed = (expected.argmax(0) != probs.argmax(0)).float().mean()
    assert changed > 0.05, "the CRF should move labels here, or the comparison says little"
    assert (ours.argmax(0) == expected.argmax(0)).float().mean() >= 0.97
    assert (ours - expected).abs().mean() < 0.03


def test_refine_snaps_a_blurred_boundary_to_the_colour_edge():
    """Two flat colours split at column 40; the scores' boundary is at column 46 and soft. The CRF moves it to the edge."""
    image = np.zeros((48, 80, 3), np.uint8)
    image[:, 40:] = (200, 180, 40)
    image[:, :40] = (30, 60, 160)
    logit = torch.linspace(-3, 3, 80)[None, :].expand(48, 80) - 6 * 3 / 40 + 0.0
    scores = torch.stack([-logit, logit])[None]  # class 1 wins from about column 46
    before = scores[0].argmax(0)
    assert (before[:, 40:46] == 0).all()
    refined = crf.refine(scores, image, crf.CrfParams(size=80))
    after = refined.argmax(0)
    assert (after[:, :40] == 0).float().mean() > 0.99 and (after[:, 40:] == 1).float().mean() > 0.99


def test_refine_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="probabilities are"):
        crf.mean_field(torch.rand(3, 10, 12).softmax(0), torch.zeros(10, 13, 3, dtype=torch.uint8))


def test_predict_with_the_crf_reads_mask_and_top_classes_from_the_crf_only():
    """With the CRF the model's own postprocess (its resize + argmax) is not run, and the mask, confidence and
    point-and-ask top classes all come from the CRF's probabilities."""
    from seggallery.catalog import get_spec
    from seggallery.evidence.uncertainty import sampled_probabilities, top_classes
    from seggallery.runtime.label_map import upsample_argmax
    from seggallery.runtime.segmenter import Segmenter

    image = load_image(EXAMPLES / "animal-dogs.jpg").pixels[::8, ::8].copy()
    scores = torch.randn(1, 21, image.shape[0] // 8, image.shape[1] // 8, generator=torch.Generator().manual_seed(3)) * 3

    class Fixed(Segmenter):
        def preprocess(self, pixels):
            return scores

        def postprocess(self, outputs, size):
            raise AssertionError("the CRF's mask replaces the model's: its postprocess must not run")

    segmenter = Fixed(get_spec("fcn_resnet50"), torch.nn.Identity(), torch.device("cpu"))
    params = crf.CrfParams(iterations=2)
    prediction = segmenter.predict(image, crf=params)
    refined = crf.refine(scores, image, params)
    assert np.array_equal(prediction.mask, upsample_argmax(refined, image.shape[:2]).numpy())
    probs, ids = top_classes(sampled_probabilities(refined))
    assert np.allclose(prediction.top_class_probs, probs.numpy()) and np.array_equal(prediction.top_class_ids, ids.numpy())
    assert prediction.timings_ms["crf"] > 0 and any("dense CRF" in note for note in prediction.notes)
