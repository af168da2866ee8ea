"""The Segmenter: one loaded model, run as preprocess -> forward -> postprocess, each step timed.

Backends subclass it: `preprocess` (uint8 RGB H x W x 3 array -> model input on the device, exactly as the
checkpoint was evaluated upstream), and where needed `forward`, `class_scores` (the raw outputs as
N x C x h x w class scores, which the uncertainty maps, the benchmark and the Explanations probes read
without knowing the backend), `postprocess` (outputs -> H x W class ids at the photo's size) and, for
instance and panoptic models, `instances`. A backend builds it plain; the engine tunes it
(seggallery.runtime.optimiser) through the Tuning it carries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..catalog import LabelSet, ModelSpec
from ..evidence.uncertainty import (
    class_probabilities,
    maps_from_probabilities,
    sampled_probabilities,
    top_classes,
)
from . import crf as dense_crf
from . import optimiser
from .devices import StepTimer, device_name
from .label_map import upsample_argmax
from .results import Instances, Prediction


class Segmenter:
    """A loaded model: `predict(image)` = preprocess -> forward -> postprocess, each timed."""

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        self.spec = spec
        self.device = device
        self.module = module.eval().to(device)
        self.tuning = optimiser.Tuning()
        self.download_ms: float | None = None  # set by the loader when loading downloaded the weights first

    @property
    def labels(self) -> LabelSet:
        return self.spec.label_set

    def preprocess(self, image: np.ndarray) -> Any:
        raise NotImplementedError

    def forward(self, inputs: Any) -> Any:
        return self.module(inputs)

    def class_scores(self, outputs: Any) -> torch.Tensor | None:
        """N x C x h x w scores whose softmax over C is the model's class probability (logits), or None
        when the model has none. The default reads outputs that are such a tensor already."""
        return outputs if isinstance(outputs, torch.Tensor) and outputs.dim() == 4 else None

    def postprocess(self, outputs: Any, size: tuple[int, int]) -> torch.Tensor:
        return upsample_argmax(self.class_scores(outputs), size)

    def instances(self, outputs: Any, size: tuple[int, int]) -> Instances | None:
        """Instance and panoptic models: the objects found, at `size`; semantic models have none."""
        return None

    def nbytes(self) -> int:
        tensors = [*self.module.parameters(), *self.module.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def upload(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the device, without making the host wait for the GPU (the driver
        stages pageable memory before returning, so the array may be reused at once)."""
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, non_blocking=True)

    @torch.inference_mode()
    def predict(self, image: np.ndarray, crf: dense_crf.CrfParams | None = None) -> Prediction:
        """`crf`: refine the class probabilities with the dense CRF (runtime/crf.py), timed as its own
        step "crf"; the mask is then the CRF's. Models without per-pixel class scores skip it, with a note."""
        timer = StepTimer(self.device)
        inputs = optimiser.prepare_inputs(self, self.preprocess(image))
        timer.mark("preprocess")
        outputs = optimiser.run_forward(self, inputs)
        timer.mark("forward")
        instances = self.instances(outputs, image.shape[:2])
        scores = self.class_scores(outputs)
        notes, refined = [], None
        if crf is not None and (scores is None or instances is not None):
            notes.append("no per-pixel class probabilities: the CRF was not applied")
        elif crf is not None:  # the CRF's mask replaces the model's own: its postprocess is not run
            timer.mark("postprocess")
            refined = dense_crf.refine(scores, image, crf)
            mask = upsample_argmax(refined, image.shape[:2])
            timer.mark("crf")
            notes.append(f"refined by the dense CRF ({crf.iterations} mean-field iterations at "
                         f"{refined.shape[2]}x{refined.shape[1]})")
        if refined is None:
            mask = self.postprocess(outputs, image.shape[:2])
            timer.mark("postprocess")
        # the uncertainty maps and top classes below are outside the timed steps: not part of segmenting;
        # with the CRF they are the CRF's probabilities, which its mask was read from
        maps = top = None
        if scores is not None:
            probs = class_probabilities(scores) if refined is None else sampled_probabilities(refined)
            maps = maps_from_probabilities(probs).to("cpu", non_blocking=True)
            top = [part.to("cpu", non_blocking=True) for part in top_classes(probs)]
        mask_np = mask.to("cpu", torch.int32).numpy()  # the one host sync of this call (it completes the others)
        timings = timer.finish()
        confidence, entropy = (None, None) if maps is None else maps.numpy()
        top_probs, top_ids = (None, None) if top is None else (top[0].numpy(), top[1].to(torch.int32).numpy())
        return Prediction(self.spec, mask_np, timings, device_name(self.device), self.tuning.precision, cold=False,
                          confidence=confidence, entropy=entropy, precision_note=self.tuning.precision_note,
                          torch_device=str(self.device), instances=instances, top_class_ids=top_ids,
                          top_class_probs=top_probs, notes=notes)
