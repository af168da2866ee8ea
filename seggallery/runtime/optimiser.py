"""What the engine does to a loaded model to make it fast, and how it keeps it right.

A Segmenter is built plain by its backend (fp32, upstream memory layout) and carries a Tuning: what its
forward currently runs with. `optimise` sets the memory layout, compilation and the reduced precision to
try; `verify_precision`, before the first prediction, keeps that precision only if its mask agrees with
fp32's (seggallery.runtime.speed has the building blocks). `run_forward` runs the model as tuned, and
falls back to plain fp32 for good if an optimised run fails. `Tuning.precision` always names what runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import speed, zerogpu


@dataclass
class Tuning:
    """How a Segmenter's forward runs now, and why."""

    precision: str = "fp32"
    precision_note: str = "plain fp32 (not optimised)"
    channels_last: bool = False
    compiled: bool = False
    pending_precision: str | None = None  # a reduced precision waiting for its agreement check
    precision_check: dict | None = None  # the agreement measurement behind the current precision

    @property
    def optimised(self) -> bool:
        return self.channels_last or self.compiled or self.precision != "fp32"


def optimise(segmenter, options: speed.SpeedOptions) -> None:
    """Memory layout, compilation and the precision to try, from the options, device and catalog entry.

    A reduced precision is only 'pending' here: verify_precision decides whether it is kept.
    """
    tuning, device = segmenter.tuning, segmenter.device
    if not options.optimize:
        return
    if device.type == "cuda":
        speed.enable_cudnn_autotune()
    if options.channels_last and speed.has_convolutions(segmenter.module):
        segmenter.module = segmenter.module.to(memory_format=torch.channels_last)
        tuning.channels_last = True
    if options.compile and device.type in ("cuda", "cpu") and not zerogpu.active():
        segmenter.module = speed.compile_module(segmenter.module, device)
        tuning.compiled = True
    allowed = segmenter.spec.precision
    precision, why = speed.choose_precision(options.precision, speed.fastest_precision(device), allowed)
    if allowed != "auto" and precision == "fp32" and segmenter.spec.precision_reason:
        why = f"{why}: {segmenter.spec.precision_reason}"
    tuning.precision_note = why
    if precision == "fp32":
        return
    if options.check_agreement:
        tuning.pending_precision = precision
    else:
        tuning.precision, tuning.precision_note = precision, f"{why}; agreement with fp32 not checked"


def verify_precision(segmenter, image: np.ndarray | None = None, store: speed.PrecisionChecks | None = None) -> None:
    """Keep the pending reduced precision only if its mask agrees with fp32 on enough pixels.

    The measurement is looked up in, or added to, `store` (keyed by weights and device). Without a
    calibration photo the reduced precision is used and the note says it was not checked. The first
    optimised forward also happens here; if it fails (a layout a model's code does not expect), the
    model falls back to running plain instead of failing later.
    """
    tuning = segmenter.tuning
    precision, tuning.pending_precision = tuning.pending_precision, None
    if precision is None:
        return
    store = store or speed.PrecisionChecks()
    weights = getattr(segmenter.module, "_orig_mod", segmenter.module)  # the same weights, compiled or not
    key = store.key(segmenter.spec.id, speed.weights_fingerprint(weights), segmenter.device, precision)
    known = store.get(key)
    if known is None:
        photo = "the given image" if image is not None else speed.CALIBRATION_PHOTO.name
        image = image if image is not None else speed.calibration_photo()
        if image is None:
            tuning.precision, tuning.precision_note = precision, f"{tuning.precision_note}; no calibration photo, not checked"
            return
        try:
            agreement = _measure_agreement(segmenter, image, precision)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - an optimisation must never cost the model itself
            _run_plain(segmenter, f"optimised run failed ({type(error).__name__}: {str(error)[:200]}); running plain fp32")
            return
        known = {"agreement": agreement, "pixels": int(image.shape[0] * image.shape[1]), "photo": photo,
                 "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        store.put(key, known)
        known = {**known, "source": "measured now"}
    else:
        known = {**known, "source": f"stored in {store.path}"}
    tuning.precision_check = {**known, "precision": precision, "threshold": speed.AGREEMENT_THRESHOLD}
    share = f"{100 * known['agreement']:.2f}% of pixels agree with fp32"
    if known["agreement"] >= speed.AGREEMENT_THRESHOLD:
        tuning.precision, tuning.precision_note = precision, f"{tuning.precision_note}; {share}"
    else:
        tuning.precision = "fp32"
        tuning.precision_note = f"{precision} fell back to fp32: only {share} (needs {100 * speed.AGREEMENT_THRESHOLD:.1f}%)"


def _measure_agreement(segmenter, image: np.ndarray, precision: str) -> float:
    with torch.inference_mode():
        inputs = prepare_inputs(segmenter, segmenter.preprocess(image))
        compiled = segmenter.module
        segmenter.module = getattr(compiled, "_orig_mod", compiled)
        try:  # the fp32 reference runs eagerly: compiling it too would double a long first call
            reference = segmenter.postprocess(segmenter.forward(inputs), image.shape[:2])
        finally:
            segmenter.module = compiled
        with speed.autocast(segmenter.device, precision):
            outputs = segmenter.forward(inputs)
        reduced = segmenter.postprocess(speed.to_float32(outputs), image.shape[:2])
        return float((reference == reduced).float().mean())  # a load-time host sync, once per model


def _run_plain(segmenter, note: str) -> None:
    module = getattr(segmenter.module, "_orig_mod", segmenter.module)  # undo torch.compile
    segmenter.module = module.to(memory_format=torch.contiguous_format)
    tuning = segmenter.tuning
    tuning.channels_last = tuning.compiled = False
    tuning.precision, tuning.precision_note = "fp32", note


def prepare_inputs(segmenter, inputs: Any) -> Any:
    return speed.to_channels_last(inputs) if segmenter.tuning.channels_last else inputs


def run_forward(segmenter, inputs: Any) -> Any:
    """The model on prepared inputs, in the chosen precision, outputs back in fp32.

    If an optimised model fails (code that assumes the default memory layout, an operator the
    compiler does not support), it is switched to plain fp32 for good and this call is retried.
    """
    tuning = segmenter.tuning
    try:
        with speed.autocast(segmenter.device, tuning.precision):
            outputs = segmenter.forward(inputs)
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - an optimisation must never cost the model itself
        if not tuning.optimised:
            raise
        _run_plain(segmenter, f"optimised run failed ({type(error).__name__}: {str(error)[:200]}); running plain fp32")
        return segmenter.forward(speed.map_tensors(inputs, lambda t: t.contiguous()))
    return speed.to_float32(outputs) if tuning.precision != "fp32" else outputs
