"""Engine pieces: device choice, resize-and-argmax, the byte-bounded model cache, failure isolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seggallery.catalog import get_spec
from seggallery.engine import Engine, Failure, ModelCache, Prediction, Segmenter, StepTimer, pick_device, upsample_argmax


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


def test_step_timer_reports_each_step_and_total():
    timer = StepTimer(torch.device("cpu"))
    for name in ("preprocess", "forward", "postprocess"):
        sum(range(10000))
        timer.mark(name)
    timings = timer.finish()
    assert list(timings) == ["preprocess", "forward", "postprocess", "total"]
    assert all(v >= 0 for v in timings.values())
    assert timings["total"] == pytest.approx(sum(v for k, v in timings.items() if k != "total"))


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
