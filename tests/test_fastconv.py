"""CPU convolutions on the fast path (seggallery.runtime.fastconv): the same numbers, chosen only where faster."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import require_shared
from PIL import Image
from real_weights import install_enet

from seggallery.backends import load_segmenter
from seggallery.catalog import get_spec
from seggallery.runtime import fastconv, optimiser, speed
from seggallery.runtime.fastconv import (
    FastConv2d,
    FastLinear,
    conv_as_taps,
    speed_up_layers,
)
from seggallery.runtime.speed import SpeedOptions

CPU = torch.device("cpu")


@pytest.mark.parametrize("channels, out, height, width, kernel, dilation, groups, bias", [
    (8, 6, 17, 23, 3, 2, 1, True),
    (8, 8, 9, 30, 3, 12, 8, False),  # depthwise, taps partly outside a short map
    (4, 5, 5, 5, 3, 7, 1, True),  # every tap but the centre reads only padding
    (6, 4, 40, 33, 5, 3, 2, True),  # 5x5, grouped
])
def test_taps_equal_the_library_convolution(channels, out, height, width, kernel, dilation, groups, bias):
    torch.manual_seed(0)
    x = torch.randn(2, channels, height, width)
    weight = torch.randn(out, channels // groups, kernel, kernel)
    b = torch.randn(out) if bias else None
    padding = dilation * (kernel - 1) // 2
    expected = F.conv2d(x, weight, b, 1, padding, dilation, groups)
    for layout in (torch.contiguous_format, torch.channels_last):
        got = conv_as_taps(x.contiguous(memory_format=layout), weight, b, (padding, padding), (dilation, dilation), groups)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
        assert got.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("dilation", [1, 6, 24])
def test_depthwise_taps_in_bf16_are_the_library_kernel_on_the_same_bf16_numbers(dilation):
    """Depthwise taps (multiply-adds of shifted views) under autocast: the input and weight rounded to bf16 as
    autocast rounds them, products summed in fp32, as the library's bf16 kernel does up to summation order."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 16, 3, padding=dilation, dilation=dilation, groups=16, bias=True)
    x = torch.randn(1, 16, 31, 45).contiguous(memory_format=torch.channels_last)
    expected = F.conv2d(x.bfloat16().float(), conv.weight.bfloat16().float(), conv.bias, 1, dilation, dilation, 16)
    with torch.inference_mode(), speed.autocast(CPU, "bf16"):
        got = conv_as_taps(x, conv.weight.bfloat16(), conv.bias, conv.padding, conv.dilation, 16)
    assert got.dtype == torch.bfloat16 and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.float(), expected, rtol=1e-2, atol=1e-2)  # the output is rounded to bf16


def test_only_stride_one_dilated_convolutions_run_as_taps():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=2, dilation=2), torch.nn.Conv2d(4, 4, 3, padding=1),
                                torch.nn.Conv2d(4, 4, 3, stride=2, padding=2, dilation=2))
    keys = list(model.state_dict())
    assert speed_up_layers(model) == 1
    assert all(type(layer) is FastConv2d for layer in model)
    assert [layer.taps for layer in model] == [True, False, False]
    assert list(model.state_dict()) == keys, "the weights keep their names"


def test_the_autocast_weight_is_cast_once_and_is_what_autocast_would_use():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 4, 3, padding=1)
    reference = copy.deepcopy(conv)
    speed_up_layers(conv)
    x = torch.randn(1, 8, 12, 12)
    with torch.inference_mode():
        with speed.autocast(CPU, "bf16"):
            first = conv(x)
            kept = conv.autocast_weight
            assert kept.dtype == torch.bfloat16 and torch.equal(kept, conv.weight.to(torch.bfloat16))
            assert torch.equal(first, reference(x)), "bit for bit what autocast computes with its own cast"
            conv(x)
            assert conv.autocast_weight is kept, "cast once, then kept"
        assert torch.equal(conv(x), reference(x)) and conv(x).dtype == torch.float32  # fp32 runs use the fp32 weight
    assert "autocast_weight" not in conv.state_dict(), "not saved with the weights"
    fastconv.drop_casts(conv)
    assert not hasattr(conv, "autocast_weight") or conv._buffers.get("autocast_weight") is None


def test_a_linear_layer_keeps_its_autocast_weight_too():
    """The transformers' Linear layers: cast once, bit for bit what autocast computes; subclasses left alone."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.modules.linear.NonDynamicallyQuantizableLinear(8, 4))
    reference = copy.deepcopy(model)
    keys = list(model.state_dict())
    speed_up_layers(model)
    assert type(model[0]) is FastLinear and type(model[1]) is not FastLinear
    assert list(model.state_dict()) == keys
    x = torch.randn(3, 5, 16)
    with torch.inference_mode():
        with speed.autocast(CPU, "bf16"):
            assert torch.equal(model(x), reference(x))
            kept = model[0].autocast_weight
            model(x)
            assert model[0].autocast_weight is kept and kept.dtype == torch.bfloat16
            fastconv.force(model, "library")
            assert torch.equal(model(x), reference(x))
            fastconv.force(model, None)
        assert torch.equal(model(x), reference(x)) and model(x).dtype == torch.float32
    fastconv.drop_casts(model)
    assert model[0]._buffers.get("autocast_weight") is None


def test_each_way_is_chosen_by_timing_it(monkeypatch):
    conv = torch.nn.Conv2d(4, 4, 3, padding=4, dilation=4)
    speed_up_layers(conv)
    x = torch.randn(1, 4, 20, 20)
    fast_taps = FastConv2d._taps
    slow_taps = lambda self, x, w: time.sleep(0.01) or conv_as_taps(x, w, self.bias, self.padding, self.dilation, self.groups)  # noqa: E731
    monkeypatch.setattr(FastConv2d, "_taps", slow_taps)
    with torch.inference_mode():
        conv(x)
    assert list(conv.choices.values()) == ["library"]
    assert fastconv.choices_made(conv) == {"taps": 0, "library": 1}
    conv.choices.clear()
    monkeypatch.setattr(FastConv2d, "_taps", fast_taps)
    library = torch.nn.Conv2d._conv_forward
    monkeypatch.setattr(torch.nn.Conv2d, "_conv_forward", lambda self, x, w, b: time.sleep(0.01) or library(self, x, w, b))
    with torch.inference_mode():
        conv(x)
    assert list(conv.choices.values()) == ["taps"]


def _forced(module: torch.nn.Module, way: str) -> torch.nn.Module:
    copied = copy.deepcopy(module)
    assert speed_up_layers(copied) > 0
    for layer in copied.modules():
        if isinstance(layer, FastConv2d):
            layer.choices = {key: way for key in layer.choices}
            layer._faster = lambda x, w, way=way: way  # this way for every shape
    return copied


@pytest.mark.parametrize("model_id", ["deeplabv3_resnet50", "fcn_r50_d8_voc", "deeplabv3_r50_d8_voc", "deeplabv3plus_r50_d8_voc",
                                      "fastfcn_r50_d32_jpu_aspp_ade20k"])
def test_every_dilated_family_gives_the_same_scores_as_taps(model_id, fake_weights, one_thread):
    """torchvision DeepLabV3 (dilated backbone + ASPP), the R50-D8 backbone (FCN), mmseg's ASPP and DeepLabV3+'s
    separable (depthwise) ASPP and FastFCN's JPU (dilated depthwise): the rewritten model's fp32 scores equal the
    original's, and so does the mask."""
    fake_weights(model_id)
    segmenter = load_segmenter(get_spec(model_id), CPU)
    x = torch.randn(1, 3, 97, 129, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = segmenter.class_scores(segmenter.forward(x))
        segmenter.module = _forced(segmenter.module, "taps")
        got = segmenter.class_scores(segmenter.forward(x))
    scale = float(expected.abs().max())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * scale)
    assert (got.argmax(1) == expected.argmax(1)).float().mean() >= 0.999


def test_real_enet_weights_give_the_same_mask_as_taps_in_the_precision_it_runs_in(one_thread):
    """ENet's published CamVid weights (trained, so no near-tied logits): taps and the library convolution
    give the same mask in fp32 and in bf16 on a CamVid street photo."""
    install_enet()
    street = np.array(Image.open(require_shared("data/camvid/test/0001TP_008550.png")).convert("RGB"))
    segmenter = load_segmenter(get_spec("enet_camvid"), CPU)
    original = segmenter.module
    with torch.inference_mode():
        inputs = segmenter.preprocess(street)
        for precision in ("fp32", "bf16"):
            with speed.autocast(CPU, precision):
                segmenter.module = original
                expected = segmenter.postprocess(speed.to_float32(segmenter.forward(inputs)), street.shape[:2])
                segmenter.module = _forced(original, "taps")
                got = segmenter.postprocess(speed.to_float32(segmenter.forward(inputs)), street.shape[:2])
            agreement = float((got == expected).float().mean())
            assert agreement >= (0.9999 if precision == "fp32" else 0.995), (precision, agreement)


# -- the fastest configuration that agrees, by measurement ------------------------------------------------


class _SlowWhen(torch.nn.Module):
    """A 1x1 colour classifier that sleeps in one configuration: deterministic timings for the choice."""

    def __init__(self, when: str):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(100 * torch.eye(3)[:, :, None, None])
            self.conv.bias.zero_()
        self.when = when

    def forward(self, x):
        slow = (self.when == "bf16" and torch.is_autocast_enabled("cpu")) or \
               (self.when == "channels_last" and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        if slow:
            time.sleep(0.05)
        return self.conv(x)


def _toy(when: str):
    from test_speed import ToySegmenter, colour_blocks, toy_spec

    return ToySegmenter(toy_spec(f"toy_slow_{when}"), _SlowWhen(when), CPU), colour_blocks()


def test_a_reduced_precision_that_is_slower_here_is_not_used(tmp_path):
    segmenter, photo = _toy("bf16")
    store = speed.PrecisionChecks(tmp_path / "checks.json")
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16"))
    optimiser.verify_precision(segmenter, photo, store=store)
    check = segmenter.tuning.precision_check
    assert check["agreement"] == 1.0 and check["reduced_ms"] > 50 > max(check["plain_ms"], check["fp32_ms"])
    assert segmenter.tuning.precision == "fp32"
    assert f"bf16 was slower here, {check['reduced_ms']:.0f} ms against" in segmenter.tuning.precision_note
    again, _ = _toy("bf16")
    optimiser.optimise(again, SpeedOptions(precision="bf16"))
    optimiser.verify_precision(again, photo, store=store)
    assert again.tuning.precision == "fp32" and again.tuning.precision_check["source"].startswith("stored in")


def test_a_tuned_layout_that_is_slower_here_runs_plain(tmp_path):
    segmenter, photo = _toy("channels_last")
    optimiser.optimise(segmenter, SpeedOptions(precision="fp32"))
    assert segmenter.tuning.channels_last and segmenter.tuning.pending_precision == "fp32"
    optimiser.verify_precision(segmenter, photo, store=speed.PrecisionChecks(tmp_path / "checks.json"))
    assert not segmenter.tuning.channels_last and segmenter.tuning.precision == "fp32"
    assert segmenter.tuning.precision_note.startswith("plain fp32: fastest here")
    assert segmenter.predict(photo).precision_note == segmenter.tuning.precision_note


def test_a_faster_reduced_precision_is_kept(tmp_path):
    segmenter, photo = _toy("fp32")  # never slow: bf16 wins or loses by the machine, and the note says which
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16"))
    optimiser.verify_precision(segmenter, photo, store=speed.PrecisionChecks(tmp_path / "checks.json"))
    check = segmenter.tuning.precision_check
    runs = {"plain fp32": check["plain_ms"], "fp32": check["fp32_ms"], "bf16": check["reduced_ms"]}
    fastest = min(runs, key=runs.get)
    assert segmenter.tuning.precision == ("bf16" if fastest == "bf16" else "fp32")
    assert segmenter.tuning.channels_last == (fastest != "plain fp32")


def test_heads_concatenate_in_the_precision_their_convolution_reads():
    """cat_for_conv gives the next convolution the very input torch.cat would (under autocast the convolution
    casts to bf16 anyway), in one copy: the same tensor in fp32, the same bf16 values under autocast."""
    from seggallery.archs.heads.common import cat_for_conv

    torch.manual_seed(0)
    low = torch.randn(1, 8, 6, 7).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    high = torch.randn(1, 4, 6, 7)  # an upsampled branch, fp32, default layout
    assert torch.equal(cat_for_conv([low.float().contiguous(), high]), torch.cat([low.float().contiguous(), high], 1))
    with speed.autocast(CPU, "bf16"):
        fused = cat_for_conv([low, high])
        assert fused.dtype == torch.bfloat16 and fused.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(fused.float(), torch.cat([low, high], 1).to(torch.bfloat16).float())
        conv = torch.nn.Conv2d(12, 3, 1)
        torch.testing.assert_close(conv(fused), conv(torch.cat([low, high], 1)))
