"""Out of memory in one model: retried at half resolution, then on the CPU, with a note; the others unaffected.

There is no GPU here, so the out-of-memory errors are injected: a stand-in backend builds a real (tiny)
Segmenter whose forward raises torch.OutOfMemoryError exactly as CUDA's allocator does, when the input
is too large for its pretend memory or when it pretends to sit on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seggallery.report import model_report
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Failure, Instances, Prediction
from seggallery.runtime.segmenter import Segmenter
from seggallery.ui.grid import slot_caption

PHOTO = np.random.default_rng(0).integers(0, 255, (256, 320, 3), dtype=np.uint8)


class TinySegmenter(Segmenter):
    """A 1x1 convolution to 21 classes; `budget` pixels of pretend memory; a pretend device."""

    def __init__(self, spec, device, budget: int | None, log: list):
        super().__init__(spec, torch.nn.Conv2d(3, len(spec.label_set), 1), torch.device("cpu"))
        self.device, self.budget, self.log = device, budget, log

    def preprocess(self, image):
        return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0

    def forward(self, inputs):
        pixels = inputs.shape[-1] * inputs.shape[-2]
        self.log.append((self.device.type, pixels))
        if self.device.type == "cuda" or (self.budget is not None and pixels > self.budget):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.module(inputs)

    def predict(self, image, crf=None):
        if self.device.type == "cuda":  # the pretend GPU is always full (and StepTimer would want a real one)
            self.forward(self.preprocess(image))
        prediction = super().predict(image, crf)
        prediction.device = self.device.type
        return prediction


@pytest.fixture
def stand_in(monkeypatch):
    """A loader giving TinySegmenters; returns (budgets by device type, forward log, load log, the loader)."""
    budgets, forwards, loads = {}, [], []

    def load(spec, device):
        loads.append(device.type)
        if budgets.get(f"load:{device.type}") == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory while loading")
        return TinySegmenter(spec, device, budgets.get(device.type), forwards)

    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    return budgets, forwards, loads, load


def _engine(device: str, stand_in) -> Engine:
    engine = Engine(device=torch.device("cpu"), loader=stand_in[3])
    engine.device = torch.device(device)  # a pretend GPU: only the stand-in backend ever sees it
    return engine


def test_retried_at_half_resolution_with_a_note(stand_in):
    budgets, forwards, _, _ = stand_in
    budgets["cpu"] = 200 * 200  # the full 320x256 image does not fit, half of it does
    result = _engine("cpu", stand_in).run(PHOTO, "fcn_resnet50")
    assert isinstance(result, Prediction), getattr(result, "reason", "")
    assert result.mask.shape == PHOTO.shape[:2], "the mask is scaled back to the image"
    assert forwards == [("cpu", 320 * 256), ("cpu", 160 * 128)]
    assert result.notes == ["ran out of CPU memory at 320x256: ran at 160x128 instead (mask scaled up, coarser edges)"]
    # each 2x2 block of the full-size mask is one pixel of the half-size answer
    assert (result.mask[0::2, 0::2] == result.mask[1::2, 1::2]).all()
    assert "ran at 160x128" in slot_caption(result) and model_report(result)["notes"] == result.notes


class TinyInstanceSegmenter(TinySegmenter):
    """The same, answering with one object: the left half of the image it saw, its box in its pixels."""

    def instances(self, outputs, size):
        mask = np.zeros((1, *size), bool)
        mask[0, :, : size[1] // 2] = True
        return Instances(mask, np.array([1]), np.array([0.9]), np.array([[0, 0, size[1] // 2, size[0]]], np.float32))


def test_an_instance_model_retried_at_half_resolution_gets_its_objects_at_full_size(stand_in):
    budgets, forwards, _, _ = stand_in
    budgets["cpu"] = 200 * 200

    def load(spec, device):
        return TinyInstanceSegmenter(spec, device, budgets.get(device.type), forwards)

    result = Engine(device=torch.device("cpu"), loader=load).run(PHOTO, "fcn_resnet50")
    assert forwards == [("cpu", 320 * 256), ("cpu", 160 * 128)]
    assert result.instances.masks.shape == (1, 256, 320)
    assert result.instances.masks[0, :, :160].all() and not result.instances.masks[0, :, 160:].any()
    assert result.instances.boxes.tolist() == [[0, 0, 160, 256]]


def test_gpu_out_of_memory_falls_back_to_the_cpu(stand_in):
    budgets, forwards, loads, _ = stand_in
    result = _engine("cuda", stand_in).run(PHOTO, "fcn_resnet50")
    assert isinstance(result, Prediction) and result.device == "cpu"
    assert forwards == [("cuda", 320 * 256), ("cuda", 160 * 128), ("cpu", 320 * 256)]
    assert loads == ["cuda", "cpu"] and result.cold
    assert "ran out of GPU memory at 320x256: ran on the CPU instead" in result.notes[0]


def test_out_of_memory_while_loading_on_the_gpu_loads_on_the_cpu(stand_in):
    budgets, forwards, loads, _ = stand_in
    budgets["load:cuda"] = "oom"
    result = _engine("cuda", stand_in).run(PHOTO, "fcn_resnet50")
    assert isinstance(result, Prediction) and result.device == "cpu" and loads == ["cuda", "cpu"]
    assert result.notes == ["not enough CUDA memory to load it: it ran on the CPU"]


def test_out_of_memory_everywhere_is_a_clear_failure_and_the_other_models_run(stand_in):
    budgets, forwards, _, _ = stand_in
    budgets["cpu"] = 10  # nothing fits ...

    results = _engine("cpu", stand_in).run_many(PHOTO, ["fcn_resnet50", "lraspp_mobilenet_v3_large"])
    assert all(isinstance(r, Failure) for r in results)
    assert "ran out of memory on this device, also at a lower resolution" in results[0].reason
    budgets["cpu"] = None  # ... until memory is free again: the same engine recovers
    assert isinstance(_engine("cpu", stand_in).run(PHOTO, "fcn_resnet50"), Prediction)


def test_other_errors_are_not_retried(stand_in, monkeypatch):
    _, forwards, _, _ = stand_in
    monkeypatch.setattr(TinySegmenter, "forward", lambda self, inputs: forwards.append(1) or (_ for _ in ()).throw(ValueError("shape mismatch")))
    result = _engine("cpu", stand_in).run(PHOTO, "fcn_resnet50")
    assert isinstance(result, Failure) and "shape mismatch" in result.reason and forwards == [1]


def test_a_small_image_goes_straight_to_the_cpu(stand_in):
    budgets, forwards, _, _ = stand_in
    small = PHOTO[:100, :100]
    result = _engine("cuda", stand_in).run(small, "fcn_resnet50")
    assert forwards == [("cuda", 100 * 100), ("cpu", 100 * 100)] and result.device == "cpu"

