"""The optimised engine: precision choice and fallback, channels_last, agreement, one host sync, compositing."""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest
import torch

from seggallery import backends
from seggallery.bench.measure import HostSyncCounter, count_host_syncs
from seggallery.catalog import CatalogError, _spec_from_entry, get_spec, label_set
from seggallery.pictures.overlays import overlay, overlays, overlays_on
from seggallery.runtime import optimiser, speed, zerogpu
from seggallery.runtime.engine import Engine
from seggallery.runtime.model_cache import ModelCache
from seggallery.runtime.results import Failure, Prediction
from seggallery.runtime.segmenter import Segmenter
from seggallery.runtime.speed import SpeedOptions, choose_precision

CPU = torch.device("cpu")


def toy_spec(model_id: str = "toy", **changes):
    return dataclasses.replace(get_spec("fcn_resnet50"), id=model_id, **changes)


class ToySegmenter(Segmenter):
    """A real Segmenter around a small module: [0, 1] float input, logits N x C x H x W."""

    forward_calls = 0

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        return (self.upload(image).permute(2, 0, 1)[None].float() / 255.0).contiguous()

    def forward(self, inputs):
        self.forward_calls += 1
        return self.module(inputs)


def one_by_one(weights, bias) -> torch.nn.Conv2d:
    conv = torch.nn.Conv2d(3, len(weights), 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights, dtype=torch.float32)[:, :, None, None])
        conv.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return conv


def confident_model() -> torch.nn.Module:
    """Class = the dominant colour channel, with margins far above bf16's rounding error."""
    return one_by_one([[100.0, 0, 0], [0, 100.0, 0], [0, 0, 100.0]], [0.0, 0.0, 0.0])


def near_tie_model() -> torch.nn.Module:
    """Two logits 1e-4 apart: fp32 always picks class 1, bf16 rounds both to the same value (a tie -> 0)."""
    return one_by_one([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [0.0, 1e-4])


def colour_blocks() -> np.ndarray:
    """Four saturated colour blocks: every pixel has one clearly dominant channel."""
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    image[:16, :24, 0] = 230
    image[:16, 24:, 1] = 230
    image[16:, :24, 2] = 230
    image[16:, 24:, 0] = 200
    return image + 10


# -- precision choice -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requested, fastest, allowed, expected",
    [
        ("auto", "bf16", "auto", "bf16"),
        ("auto", "fp16", "auto", "fp16"),
        ("auto", "fp32", "auto", "fp32"),  # a CPU without native bf16
        ("auto", "bf16", "fp32", "fp32"),  # catalog opt-out
        ("auto", "fp16", "bf16", "fp32"),  # fp16 not allowed, and this GPU has no fast bf16
        ("bf16", "fp16", "bf16", "bf16"),
        ("fp16", "bf16", "bf16", "fp32"),
        ("fp32", "bf16", "auto", "fp32"),
        ("bf16", "fp32", "auto", "bf16"),  # asked for explicitly: honoured even where it is not fastest
    ],
)
def test_choose_precision(requested, fastest, allowed, expected):
    precision, why = choose_precision(requested, fastest, allowed)
    assert precision == expected
    assert why


def test_fastest_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: True)
    assert speed.fastest_precision(CPU) == "bf16"
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: False)
    assert speed.fastest_precision(CPU) == "fp32"
    monkeypatch.setattr(speed, "cuda_has_bf16", lambda device: True)
    assert speed.fastest_precision(torch.device("cuda")) == "bf16"  # Ampere and newer
    monkeypatch.setattr(speed, "cuda_has_bf16", lambda device: False)
    assert speed.fastest_precision(torch.device("cuda")) == "fp16"  # T4, V100
    assert speed.fastest_precision(torch.device("mps")) == "fp32"


def test_cpu_bf16_detection_matches_the_cpu_flags():
    flags = open("/proc/cpuinfo").read().split() if sys.platform == "linux" else None
    if flags is None:
        pytest.skip("no /proc/cpuinfo")
    assert speed.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_autocast_runs_convolutions_in_the_chosen_type(precision, dtype):
    conv = torch.nn.Conv2d(3, 4, 3)
    with torch.inference_mode(), speed.autocast(CPU, precision):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == dtype
        assert conv(torch.rand(1, 3, 8, 8)).dtype == dtype
    with speed.autocast(CPU, "fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_options_from_environment(monkeypatch):
    monkeypatch.setenv("SEGGALLERY_OPTIMIZE", "1")
    monkeypatch.setenv("SEGGALLERY_PRECISION", "BF16")
    monkeypatch.setenv("SEGGALLERY_CHANNELS_LAST", "0")
    monkeypatch.setenv("SEGGALLERY_COMPILE", "yes")
    monkeypatch.setenv("SEGGALLERY_PRECISION_CHECK", "off")
    assert SpeedOptions.from_env() == SpeedOptions(True, "bf16", False, True, False)
    monkeypatch.setenv("SEGGALLERY_PRECISION", "int8")
    with pytest.raises(ValueError, match="precision must be"):
        SpeedOptions.from_env()


def test_catalog_precision_limit_needs_a_known_value_and_a_reason():
    entry = {"id": "x", "name": "X", "family": "fcn", "backend": "torchvision", "labels": "voc21", "source": {},
             "preprocess": {}, "license": "MIT", "paper": "p"}
    assert _spec_from_entry(entry).precision == "auto"
    assert _spec_from_entry({**entry, "precision": "fp32", "precision_reason": "fp16 overflows"}).precision == "fp32"
    with pytest.raises(CatalogError, match="precision_reason"):
        _spec_from_entry({**entry, "precision": "fp32"})
    with pytest.raises(CatalogError, match="precision must be"):
        _spec_from_entry({**entry, "precision": "int8", "precision_reason": "x"})


# -- optimise, verify, fall back ------------------------------------------------------------------------


def test_optimize_converts_convolutions_and_inputs_to_channels_last():
    segmenter = ToySegmenter(toy_spec(), torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), confident_model()), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="fp32", time_choices=False))
    assert segmenter.tuning.channels_last and segmenter.tuning.optimised
    assert segmenter.module[0].weight.is_contiguous(memory_format=torch.channels_last)
    inputs = optimiser.prepare_inputs(segmenter, segmenter.preprocess(colour_blocks()))
    assert inputs.is_contiguous(memory_format=torch.channels_last)
    assert segmenter.predict(colour_blocks()).precision == "fp32"


def test_plain_options_change_nothing():
    segmenter = ToySegmenter(toy_spec(), confident_model(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(optimize=False))
    assert not segmenter.tuning.optimised and segmenter.tuning.pending_precision is None
    assert segmenter.module.weight.is_contiguous()


def test_models_without_convolutions_keep_their_layout():
    segmenter = ToySegmenter(toy_spec(), torch.nn.Identity(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="fp32", time_choices=False))
    assert not segmenter.tuning.channels_last


def test_reduced_precision_is_kept_where_the_mask_agrees(tmp_path):
    store = speed.PrecisionChecks(tmp_path / "checks.json")
    segmenter = ToySegmenter(toy_spec(), confident_model(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16", time_choices=False))
    assert segmenter.tuning.pending_precision == "bf16" and segmenter.tuning.precision == "fp32"
    optimiser.verify_precision(segmenter, colour_blocks(), store=store)
    assert segmenter.tuning.precision == "bf16"
    assert segmenter.tuning.precision_check["agreement"] == 1.0 and segmenter.tuning.precision_check["source"] == "measured now"
    prediction = segmenter.predict(colour_blocks())
    assert prediction.precision == "bf16" and "100.00% of pixels agree" in prediction.precision_note
    expected = np.argmax(colour_blocks().astype(np.float32), axis=2)
    assert np.array_equal(prediction.mask, expected)


def test_reduced_precision_falls_back_to_fp32_below_the_threshold(tmp_path):
    store = speed.PrecisionChecks(tmp_path / "checks.json")
    segmenter = ToySegmenter(toy_spec(), near_tie_model(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16", time_choices=False))
    optimiser.verify_precision(segmenter, colour_blocks(), store=store)
    assert segmenter.tuning.precision == "fp32"
    assert segmenter.tuning.precision_check["agreement"] < speed.AGREEMENT_THRESHOLD
    assert "fell back to fp32" in segmenter.tuning.precision_note
    prediction = segmenter.predict(colour_blocks())
    assert prediction.precision == "fp32"
    assert (prediction.mask == 1).all(), "fp32 resolves the 1e-4 margin"


def test_a_stored_check_is_reused_for_the_same_weights_only(tmp_path):
    store = speed.PrecisionChecks(tmp_path / "checks.json")
    first = ToySegmenter(toy_spec(), near_tie_model(), CPU)
    optimiser.optimise(first, SpeedOptions(precision="bf16", time_choices=False))
    optimiser.verify_precision(first, colour_blocks(), store=store)
    same = ToySegmenter(toy_spec(), near_tie_model(), CPU)
    optimiser.optimise(same, SpeedOptions(precision="bf16", time_choices=False))
    optimiser.verify_precision(same, colour_blocks(), store=store)
    assert same.forward_calls == 0, "the stored verdict is used without running the model"
    assert same.tuning.precision == "fp32" and same.tuning.precision_check["source"].startswith("stored in")
    other = ToySegmenter(toy_spec(), confident_model(), CPU)  # other weights: measured afresh
    optimiser.optimise(other, SpeedOptions(precision="bf16", time_choices=False))
    optimiser.verify_precision(other, colour_blocks(), store=store)
    assert other.forward_calls == 2 and other.tuning.precision == "bf16"


def test_catalog_opt_out_keeps_fp32_and_says_why():
    spec = toy_spec(precision="fp32", precision_reason="fp16 overflows in the attention logits")
    segmenter = ToySegmenter(spec, confident_model(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16", time_choices=False))
    assert segmenter.tuning.pending_precision is None and segmenter.tuning.precision == "fp32"
    assert "fp16 overflows in the attention logits" in segmenter.predict(colour_blocks()).precision_note


def test_unchecked_reduced_precision_says_so():
    segmenter = ToySegmenter(toy_spec(), confident_model(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16", check_agreement=False))
    assert segmenter.tuning.precision == "bf16" and "not checked" in segmenter.tuning.precision_note


class FlattensChannelsFirst(torch.nn.Module):
    """Code that assumes the default memory layout: .view() over C, H, W fails on a channels_last tensor."""

    def __init__(self):
        super().__init__()
        self.conv = confident_model()

    def forward(self, x):
        y = self.conv(x)
        return y.view(y.shape[0], -1).view_as(y)


@pytest.mark.parametrize("check", [True, False])
def test_a_model_that_breaks_when_optimised_runs_plain_instead(tmp_path, check):
    segmenter = ToySegmenter(toy_spec(), FlattensChannelsFirst(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="bf16", check_agreement=check, time_choices=False))
    optimiser.verify_precision(segmenter, colour_blocks(), store=speed.PrecisionChecks(tmp_path / "checks.json"))
    prediction = segmenter.predict(colour_blocks())
    assert prediction.precision == "fp32" and not segmenter.tuning.channels_last
    assert "optimised run failed" in prediction.precision_note
    assert np.array_equal(prediction.mask, np.argmax(colour_blocks().astype(np.float32), axis=2))


def test_store_survives_a_corrupt_file(tmp_path):
    path = tmp_path / "checks.json"
    path.write_text("{not json")
    store = speed.PrecisionChecks(path)
    assert store.get("k") is None
    store.put("k", {"agreement": 1.0})
    assert store.get("k") == {"agreement": 1.0}


def test_mask_agreement():
    a = np.zeros((4, 5), dtype=np.int32)
    b = a.copy()
    b[0, :2] = 3
    assert speed.mask_agreement(a, b) == pytest.approx(18 / 20)
    assert speed.mask_agreement(torch.from_numpy(a), torch.from_numpy(a)) == 1.0
    with pytest.raises(ValueError, match="different sizes"):
        speed.mask_agreement(a, a[:3])


def test_outputs_go_back_to_fp32_whatever_their_container():
    from collections import OrderedDict

    half = torch.ones(2, dtype=torch.bfloat16)
    converted = speed.to_float32({"out": half, "rest": [half, torch.ones(1, dtype=torch.int64)]})
    assert converted["out"].dtype == torch.float32 and converted["rest"][0].dtype == torch.float32
    assert converted["rest"][1].dtype == torch.int64
    assert isinstance(speed.to_float32(OrderedDict(out=half)), OrderedDict)


# -- the engine with real (fake-weight) models --------------------------------------------------------------


def test_engine_optimises_and_reports_what_ran(fake_weights, photo):
    fake_weights("lraspp_mobilenet_v3_large")
    engine = Engine(device=CPU, options=SpeedOptions(precision="bf16", time_choices=False))
    result = engine.run(photo, "lraspp_mobilenet_v3_large")
    assert isinstance(result, Prediction), getattr(result, "reason", "")
    segmenter, _ = engine.segmenter("lraspp_mobilenet_v3_large")
    assert segmenter.tuning.channels_last
    check = segmenter.tuning.precision_check
    assert check is not None and check["precision"] == "bf16"
    # whatever these random weights give, the label says what ran and why
    assert result.precision == ("bf16" if check["agreement"] >= speed.AGREEMENT_THRESHOLD else "fp32")
    assert f"{100 * check['agreement']:.2f}%" in result.precision_note
    assert result.cold and result.timings_ms["load"] > 0


def test_one_host_sync_per_prediction(fake_weights, photo):
    fake_weights("lraspp_mobilenet_v3_large")
    for options in (SpeedOptions(optimize=False), SpeedOptions(precision="bf16", check_agreement=False)):
        engine = Engine(device=CPU, options=options)
        segmenter, _ = engine.segmenter("lraspp_mobilenet_v3_large")
        count, calls = count_host_syncs(CPU, lambda: segmenter.predict(photo))
        assert count == 1, calls


@pytest.mark.parametrize("model_id", ["smp_segformer_b0_ade", "enet_camvid"])
def test_one_host_sync_with_preprocessing_split_between_host_and_device(model_id, fake_weights, photo):
    """smp: resize on the host, Normalize on the device by lookup table; native: all on the device."""
    fake_weights(model_id)
    segmenter, _ = Engine(device=CPU, options=SpeedOptions(optimize=False)).segmenter(model_id)
    count, calls = count_host_syncs(CPU, lambda: segmenter.predict(photo))
    assert count == 1, calls


def test_host_sync_counter_sees_reads_and_blocking_copies():
    x = torch.rand(3)
    with HostSyncCounter() as counter:
        x.sum().item()
        bool(x.max() > 0)
        x.to("cpu")
        x.to(CPU, non_blocking=True)  # not counted: the host does not wait
        x.to(torch.float64)  # not counted: no device named
        torch.as_tensor([1.0], device="cpu")
        x.nonzero()
    assert counter.calls == ["item", "__bool__", "to", "as_tensor", "nonzero"]


@pytest.fixture
def only_lraspp_cached(monkeypatch, tmp_path):
    """A torch cache holding fake weights for lraspp_mobilenet_v3_large and nothing else."""
    from fakes import torchvision as fake_torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    fake_torchvision.write(get_spec("lraspp_mobilenet_v3_large"))


def test_preloaded_models_are_checked_on_first_use(only_lraspp_cached, photo):
    engine = Engine(device=CPU, options=SpeedOptions(precision="bf16", time_choices=False))
    failures = engine.preload(["lraspp_mobilenet_v3_large", "fcn_resnet101"])
    assert [f.spec.id for f in failures] == ["fcn_resnet101"]  # no weights for it in this cache
    segmenter, load_ms = engine.segmenter("lraspp_mobilenet_v3_large", verify=False)  # look without checking
    assert load_ms is None and segmenter.tuning.pending_precision == "bf16"
    first = engine.run(photo, "lraspp_mobilenet_v3_large")  # the first use runs the check, counted as loading
    assert first.cold and "load" in first.timings_ms and segmenter.tuning.pending_precision is None
    assert not engine.run(photo, "lraspp_mobilenet_v3_large").cold


# -- ZeroGPU ----------------------------------------------------------------------------------------------


@pytest.fixture
def fake_spaces(monkeypatch):
    """A stand-in for the `spaces` package that records what spaces.GPU wrapped."""
    module = types.ModuleType("spaces")
    module.wrapped = []

    def gpu(duration=60):
        def decorate(fn):
            module.wrapped.append((fn, duration))

            def on_gpu(*args, **kwargs):
                module.calls = getattr(module, "calls", 0) + 1
                return fn(*args, **kwargs)

            return on_gpu

        return decorate

    module.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", module)
    monkeypatch.setattr(zerogpu, "spaces_installed", lambda: True)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    return module


def test_zerogpu_is_off_without_the_spaces_package(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setattr(zerogpu, "spaces_installed", lambda: False)
    assert not zerogpu.active()

    def fn():
        return 1

    assert zerogpu.gpu(fn) is fn


def test_zerogpu_runs_the_compare_in_one_gpu_call_without_callbacks(fake_spaces, fake_weights, photo):
    fake_weights("lraspp_mobilenet_v3_large")
    engine = Engine(device=CPU, options=SpeedOptions(optimize=False))
    assert fake_spaces.wrapped and fake_spaces.wrapped[0][1] == zerogpu.GPU_DURATION_S
    seen = []
    results = engine.run_many(photo, ["lraspp_mobilenet_v3_large"], on_progress=lambda i, m: seen.append(m))
    assert fake_spaces.calls == 1 and isinstance(results[0], Prediction)
    assert seen == ["lraspp_mobilenet_v3_large"]  # reported before the GPU call, not from inside it


def test_zerogpu_never_compiles(fake_spaces):
    segmenter = ToySegmenter(toy_spec(), confident_model(), CPU)
    optimiser.optimise(segmenter, SpeedOptions(precision="fp32", compile=True, time_choices=False))
    assert not segmenter.tuning.compiled


def test_zerogpu_preloads_cached_models(fake_spaces, only_lraspp_cached, monkeypatch):
    monkeypatch.setenv(zerogpu.PRELOAD_ENV, "lraspp_mobilenet_v3_large fcn_resnet101 not_a_model")
    assert zerogpu.preload_ids(backends.is_cached) == ["lraspp_mobilenet_v3_large"]  # fcn_resnet101 has no weights here
    engine = Engine(device=CPU, options=SpeedOptions(optimize=False))
    zerogpu.preload(engine, backends.is_cached)
    assert [m for m, _, _ in engine.cache.resident()] == ["lraspp_mobilenet_v3_large"]


# -- compositing and the resident list ---------------------------------------------------------------------


def _prediction(model_id: str, mask: np.ndarray) -> Prediction:
    return Prediction(get_spec(model_id), mask, {"total": 1.0}, "cpu", "fp32", cold=False)


def _numpy_overlay(photo, mask, labels, opacity):
    """The blend written independently in numpy: photo * (1 - a) + colour * a, rounded half up."""
    colours = np.array(labels.colors, dtype=np.float32)[mask]
    return (photo.astype(np.float32) * (1.0 - opacity) + colours * opacity + 0.5).astype(np.uint8)


def test_torch_compositing_equals_numpy_overlay(photo):
    rng = np.random.default_rng(0)
    height, width = photo.shape[:2]
    voc = rng.integers(0, 21, size=(height, width)).astype(np.int32)
    ade = rng.integers(0, 150, size=(height, width)).astype(np.int32)
    masks = [(voc, label_set("voc21")), (ade, label_set("ade20k150"))]
    for opacity in (0.0, 0.37, 0.5, 1.0):
        pictures = overlays_on(CPU, photo, masks, opacity)
        for picture, (mask, labels) in zip(pictures, masks):
            assert np.array_equal(picture, _numpy_overlay(photo, mask, labels, opacity))
            assert np.array_equal(picture, overlay(photo, mask, labels, opacity))


def test_overlays_keep_the_order_and_skip_failures(photo):
    mask = np.zeros(photo.shape[:2], dtype=np.int32)
    failure = Failure(get_spec("fcn_resnet101"), "no weights")
    pictures = overlays(photo, [failure, _prediction("fcn_resnet50", mask)], 0.5)
    assert pictures[0] is None
    assert np.array_equal(pictures[1], overlay(photo, mask, label_set("voc21"), 0.5))


def test_resident_models_line():
    from seggallery.ui.resident import resident_markdown

    engine = Engine(device=CPU, cache=ModelCache({"cpu": 64 << 20}))
    assert "none yet" in resident_markdown(engine)
    small = ToySegmenter(toy_spec("toy_a"), torch.nn.Linear(1 << 18, 4, bias=False), CPU)  # 4 MB
    small.tuning.precision = "bf16"
    engine.cache.put(small)
    text = resident_markdown(engine)
    assert "`toy_a` (4 MB, bf16)" in text and "of 64 MB" in text and "on cpu" in text
