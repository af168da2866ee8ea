"""Engine pieces: device choice, resize-and-argmax, the byte-bounded model cache, failure isolation."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seggallery.catalog import catalog, get_spec
from seggallery.runtime.devices import StepTimer, pick_device
from seggallery.runtime.engine import Engine
from seggallery.runtime.label_map import (
    _block_extreme,
    competing_classes,
    upsample_argmax,
)
from seggallery.runtime.model_cache import ModelCache
from seggallery.runtime.results import Failure, Instances, Prediction
from seggallery.runtime.segmenter import Segmenter


def test_device_override_and_auto(monkeypatch):
    monkeypatch.setenv("SEGGALLERY_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    assert pick_device("cpu").type == "cpu"
    monkeypatch.delenv("SEGGALLERY_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")


@pytest.mark.parametrize("size", [(37, 53), (517, 641), (64, 80)])
def test_chunked_upsample_argmax_equals_full_resize(size):
    torch.manual_seed(0)
    logits = torch.randn(1, 150, 64, 80)
    full = F.interpolate(logits, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
    assert torch.equal(upsample_argmax(logits, size), full)


def test_chunked_upsample_argmax_keeps_the_first_of_tied_classes_and_resizes_via_a_size():
    """Two classes with the same scores: the first wins, as in argmax; `via` resizes through that size first,
    as mmseg does through the network input's."""
    torch.manual_seed(1)
    logits = torch.randn(1, 40, 16, 20)
    logits[0, 33] = logits[0, 5]
    expected = F.interpolate(F.interpolate(logits, size=(64, 80), mode="bilinear"), size=(48, 61), mode="bilinear")
    expected = expected.argmax(1)[0]
    got = upsample_argmax(logits, (48, 61), via=(64, 80))
    assert torch.equal(got, expected) and (got == 5).any() and not (got == 33).any()


def _decisive_scores(classes: int, height: int, width: int, present: int, seed: int) -> torch.Tensor:
    """Scores like a trained model's: a few classes' scores are smooth fields that take turns winning; the
    others' stay far below everywhere."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(1, classes, height, width, generator=generator) * 0.5 - 12.0
    fields = F.interpolate(torch.randn(1, present, 4, 5, generator=generator) * 4, size=(height, width), mode="bilinear")
    scores[:, torch.randperm(classes, generator=generator)[:present]] = fields
    return scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("via, size, align_corners", [
    ((512, 683), (768, 1024), False),  # mmseg: through the network input to the photo
    (None, (333, 517), False),
    ((128, 160), (129, 161), True),
])
def test_only_competing_classes_are_resized_and_the_label_map_is_unchanged(seed, via, size, align_corners):
    """On decisive scores few of 150 classes can win anywhere; resizing only those gives the full argmax."""
    logits = _decisive_scores(150, 64, 80, present=6, seed=seed)
    steps = [s for s in (via, size) if s is not None]
    competing = competing_classes(logits[0], steps)
    assert competing is not None and 2 <= len(competing) <= 6
    full = logits
    for step in steps:
        full = F.interpolate(full, size=step, mode="bilinear", align_corners=align_corners)
    assert torch.equal(upsample_argmax(logits, size, via=via, align_corners=align_corners), full.argmax(1)[0])


def test_classes_just_below_the_winner_still_compete():
    """Near-copies of the winning fields, a hair below or equal: kept, and ties go to the first class."""
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        logits = _decisive_scores(60, 40, 52, present=3, seed=seed)
        copies = torch.randint(0, 60, (8,), generator=generator)
        source = int((logits[0, :, 20, 26]).argmax())
        logits[0, copies] = logits[0, source] - torch.rand(8, 1, 1, generator=generator) * 1e-3 * (seed % 2)
        full = F.interpolate(F.interpolate(logits, size=(321, 416), mode="bilinear"), size=(481, 623), mode="bilinear")
        assert torch.equal(upsample_argmax(logits, (481, 623), via=(321, 416)), full.argmax(1)[0]), seed


@pytest.mark.parametrize("shape", [(5, 1, 1), (5, 2, 3), (5, 3, 2), (7, 9, 13)])
def test_block_extremes_are_max_pooling_over_3x3(shape):
    x = torch.randn(shape)
    assert torch.equal(_block_extreme(x, torch.maximum), F.max_pool2d(x[None], 3, 1, 1)[0])
    assert torch.equal(_block_extreme(x, torch.minimum), -F.max_pool2d(-x[None], 3, 1, 1)[0])


def test_the_competing_classes_bound_needs_every_resize_to_enlarge():
    logits = _decisive_scores(20, 64, 80, present=3, seed=0)[0]
    assert competing_classes(logits, [(32, 40)]) is None and competing_classes(logits, [(128, 160), (64, 80)]) is None
    assert len(competing_classes(torch.randn(20, 64, 80), [(128, 160)])) == 20, "near-tied scores: all compete"
    one = torch.zeros(5, 8, 8)
    one[3] = 1.0
    assert torch.equal(upsample_argmax(one, (30, 31)), torch.full((30, 31), 3))
    infinite = _decisive_scores(20, 16, 20, present=3, seed=1)
    infinite[0, 7, 3:6, 4:9] = float("inf")
    assert competing_classes(infinite[0], [(64, 80)]) is None
    expected = F.interpolate(infinite, size=(64, 80), mode="bilinear").argmax(1)[0]
    assert torch.equal(upsample_argmax(infinite, (64, 80)), expected) and (expected == 7).any()


def test_step_timer_reports_each_step_and_total():
    """Each step's time is the time that step took (known sleeps), and the total is the wall time of all."""
    sleeps = {"preprocess": 0.03, "forward": 0.01, "postprocess": 0.05}
    started = time.perf_counter()
    timer = StepTimer(torch.device("cpu"))
    for name, seconds in sleeps.items():
        time.sleep(seconds)
        timer.mark(name)
    timings = timer.finish()
    wall_ms = (time.perf_counter() - started) * 1000.0
    assert list(timings) == ["preprocess", "forward", "postprocess", "total"]
    for name, seconds in sleeps.items():
        assert 1000 * seconds <= timings[name] < 1000 * seconds + 40, (name, timings[name])
    assert timings["preprocess"] > timings["forward"] < timings["postprocess"]
    assert 90 <= timings["total"] <= wall_ms


class _Sized(Segmenter):
    def __init__(self, model_id: str, megabytes: int):
        spec = get_spec("fcn_resnet50")
        spec = type(spec)(**{**spec.__dict__, "id": model_id})
        super().__init__(spec, torch.nn.Linear(megabytes * (1 << 18), 1, bias=False), torch.device("cpu"))


def test_model_cache_evicts_least_recently_used_by_bytes():
    cache = ModelCache({"cpu": 10 << 20})
    a, b, c = _Sized("a", 4), _Sized("b", 4), _Sized("c", 4)
    cache.put(a)
    cache.put(b)
    assert cache.get("a", torch.device("cpu")) is a  # a is now the most recently used
    cache.put(c)  # 12 MB > 10 MB: b, the least recently used, goes
    assert cache.get("b", torch.device("cpu")) is None
    assert {m for m, _, _ in cache.resident()} == {"a", "c"}
    assert cache.bytes_used("cpu") <= 10 << 20


def test_a_model_larger_than_the_budget_still_runs():
    cache = ModelCache({"cpu": 1 << 20})
    big = _Sized("big", 4)
    cache.put(big)
    assert cache.get("big", torch.device("cpu")) is big


def test_one_failing_model_does_not_stop_the_others(monkeypatch, tmp_path, photo):
    from fakes import torchvision as fake_torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: only what this test writes exists
    fake_torchvision.write(get_spec("lraspp_mobilenet_v3_large"))
    results = Engine(device=torch.device("cpu")).run_many(photo, ["fcn_resnet101", "lraspp_mobilenet_v3_large"])
    missing, ok = results
    assert isinstance(missing, Failure)
    assert "not in the local cache" in missing.reason
    assert missing.fix.startswith("python -m seggallery fetch fcn_resnet101")
    assert isinstance(ok, Prediction)


def test_second_run_is_warm_and_reports_no_load(fake_weights, photo):
    fake_weights("lraspp_mobilenet_v3_large")
    engine = Engine(device=torch.device("cpu"))
    first = engine.run(photo, "lraspp_mobilenet_v3_large")
    second = engine.run(photo, "lraspp_mobilenet_v3_large")
    assert first.cold and "load" in first.timings_ms and first.timings_ms["load"] > 0
    assert not second.cold and "load" not in second.timings_ms
    assert np.array_equal(first.mask, second.mask)
    for step in ("preprocess", "forward", "postprocess", "total"):
        assert second.timings_ms[step] > 0


class _TwoObjects(Segmenter):
    """An instance model in miniature: finds the left and the right half of the photo as two objects."""

    def __init__(self, spec, device):
        super().__init__(spec, torch.nn.Identity(), device)

    def preprocess(self, image):
        return torch.from_numpy(image).float()

    def postprocess(self, outputs, size):  # the semantic reading: each pixel's best object's class
        mask = torch.zeros(size, dtype=torch.int64)
        mask[:, size[1] // 2:] = 15
        mask[:, : size[1] // 2] = 12
        return mask

    def instances(self, outputs, size):
        left = np.zeros(size, bool)
        left[:, : size[1] // 2] = True
        return Instances(np.stack([left, ~left]), np.array([12, 15]), np.array([0.9, 0.4]),
                         np.array([[0, 0, size[1] // 2, size[0]], [size[1] // 2, 0, size[1], size[0]]]))


def test_a_prediction_carries_instances_beside_its_label_map():
    spec = dataclasses.replace(get_spec("fcn_resnet50"), task="instance")
    engine = Engine(device=torch.device("cpu"), loader=lambda _, device: _TwoObjects(spec, device))
    image = np.zeros((40, 60, 3), np.uint8)
    result = engine.run(image, "fcn_resnet50")
    assert isinstance(result, Prediction), getattr(result, "reason", "")
    assert result.task == "instance" and len(result.instances) == 2
    assert result.mask.shape == (40, 60) and set(np.unique(result.mask)) == {12, 15}
    assert np.array_equal(result.instances.masks[1], result.mask == 15)
    assert result.confidence is None, "no class scores: no uncertainty maps, and no crash"
    confident = result.instances.above(0.5)
    assert len(confident) == 1 and confident.labels.tolist() == [12] and confident.boxes.tolist() == [[0, 0, 30, 40]]
    with pytest.raises(ValueError, match="disagree"):
        Instances(np.zeros((2, 4, 4), bool), np.array([1]), np.array([0.5, 0.5]))


def test_the_catalog_knows_the_task_axis():
    from seggallery.catalog import TASKS, CatalogError, _spec_from_entry

    assert TASKS == ("semantic", "instance", "panoptic")
    assert {spec.task for spec in catalog().values()} == {"semantic", "instance", "panoptic"}
    assert {spec.id for spec in catalog().values() if spec.task == "instance"} == {"maskrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn"}
    assert {spec.id for spec in catalog().values() if spec.task == "panoptic"} == {"oneformer_swin_tiny_ade_panoptic"}
    entry = {key: getattr(get_spec("fcn_resnet50"), key) for key in ("id", "name", "family", "backend", "labels", "source",
                                                                    "preprocess", "license", "paper")}
    assert _spec_from_entry({**entry, "task": "panoptic"}).task == "panoptic"
    with pytest.raises(CatalogError, match="task must be one of"):
        _spec_from_entry({**entry, "task": "depth"})
