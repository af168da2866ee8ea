"""Attention on the fused kernel (seggallery.runtime.fast_attention): the same numbers as the explicit weights."""

from __future__ import annotations

import pytest
import torch

from seggallery.archs.heads.da import PositionAttention, unscaled_attention
from seggallery.backends import load_segmenter
from seggallery.catalog import get_spec
from seggallery.runtime import fast_attention, optimiser
from seggallery.runtime.speed import SpeedOptions

CPU = torch.device("cpu")


@pytest.mark.parametrize("key_width, channels", [(8, 32), (32, 8), (16, 16)])
def test_unscaled_attention_is_softmax_of_the_dot_products_times_the_values(key_width, channels):
    generator = torch.Generator().manual_seed(0)
    query, key = (torch.randn(2, 300, key_width, generator=generator) for _ in range(2))
    value = torch.randn(2, 300, channels, generator=generator)
    expected = (query @ key.transpose(1, 2)).softmax(-1) @ value  # no 1/sqrt(width): DANet's similarity
    got = unscaled_attention(query, key, value)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _position_attention() -> PositionAttention:
    torch.manual_seed(0)
    module = PositionAttention(32, 8).eval()
    with torch.no_grad():
        module.gamma.scale.fill_(1.0)  # a trained gamma is not 0; at 0 the attention would not count at all
    return module


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fused_position_attention_equals_the_explicit_one(precision):
    module = _position_attention()
    x = torch.randn(1, 32, 23, 31).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        expected = module(x).float()
        assert fast_attention.set_fused(module, True) == 1
        got = module(x).float()
    tolerance = {"fp32": 1e-5, "bf16": 3e-2}[precision]
    assert (got - x).abs().max() > 0.01, "the attention changed the features"
    torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance)


def test_a_hook_on_the_weights_still_sees_them_when_fused():
    """The Explanations probe reads the N x N weights through a forward hook: fused or not, it gets them."""
    module = _position_attention()
    fast_attention.set_fused(module, True)
    seen = []
    handle = module.attention.register_forward_hook(lambda _m, _args, out: seen.append(out.shape))
    x = torch.randn(1, 32, 5, 7)
    with torch.inference_mode():
        hooked = module(x)
        handle.remove()
        fused = module(x)
    assert seen == [torch.Size([1, 35, 5, 7])]
    torch.testing.assert_close(fused, hooked, rtol=1e-5, atol=1e-5)


def test_the_engine_fuses_danet_and_compares_it_with_the_explicit_plain_model(fake_weights, tmp_path, monkeypatch):
    """optimise switches DANet's position attention to the fused kernel; the plain run the precision check and
    the benchmark compare with computes the weights explicitly, as mmseg does; the masks agree."""
    monkeypatch.setenv("SEGGALLERY_CACHE_DIR", str(tmp_path))
    fake_weights("danet_r50_d8_ade20k")
    segmenter = load_segmenter(get_spec("danet_r50_d8_ade20k"), CPU)
    attention = segmenter.module.decode_head.pam
    with torch.no_grad():
        attention.gamma.scale.fill_(1.0)
    x = torch.randn(1, 3, 97, 129, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        explicit = segmenter.class_scores(segmenter.forward(x))
    optimiser.optimise(segmenter, SpeedOptions(precision="fp32", channels_last=False, check_agreement=False))
    assert segmenter.tuning.fused_attention == 1 and attention.fused_attention
    with torch.inference_mode():
        with optimiser._plain(segmenter):
            assert not attention.fused_attention
        assert attention.fused_attention
        fused = segmenter.class_scores(optimiser.run_forward(segmenter, x))
    torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-5 * float(explicit.abs().max()))
    assert (fused.argmax(1) == explicit.argmax(1)).float().mean() >= 0.999
    optimiser._run_plain(segmenter, "plain")
    assert not attention.fused_attention and segmenter.tuning.fused_attention == 0
