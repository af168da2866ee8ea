"""The speed side of a loaded model: what the engine does to make it fast, and how it keeps it right.

engine.Segmenter inherits Optimised. The engine calls `optimize` right after a backend has built the model
plain (memory layout, compilation, the reduced precision to try) and `verify_precision` before its first
prediction (the reduced precision stays only if its mask agrees with fp32's; seggallery.speed has the
building blocks). `predict` runs the model through `prepare_inputs` and `run_forward`, which fall back to
plain fp32 for good if an optimised run fails. `precision` always names what actually runs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from . import speed, zerogpu


class Optimised:
    """Expects the Segmenter's spec, device and module, and its preprocess / forward / postprocess."""

    precision = "fp32"
    precision_note = "plain fp32 (not optimised)"
    channels_last = False
    compiled = False
    pending_precision: str | None = None  # a reduced precision waiting for its agreement check
    precision_check: dict | None = None  # the agreement measurement behind the current precision

    def optimize(self, options: speed.SpeedOptions) -> None:
        """Memory layout, compilation and the precision to try, from the options, device and catalog entry.

        A reduced precision is only 'pending' here: verify_precision decides whether it is kept.
        """
        if not options.optimize:
            return
        if self.device.type == "cuda":
            speed.enable_cudnn_autotune()
        if options.channels_last and speed.has_convolutions(self.module):
            self.module = self.module.to(memory_format=torch.channels_last)
            self.channels_last = True
        if options.compile and self.device.type in ("cuda", "cpu") and not zerogpu.active():
            self.module = speed.compile_module(self.module, self.device)
            self.compiled = True
        allowed = self.spec.precision
        precision, why = speed.choose_precision(options.precision, speed.fastest_precision(self.device), allowed)
        if allowed != "auto" and precision == "fp32" and self.spec.precision_reason:
            why = f"{why}: {self.spec.precision_reason}"
        self.precision_note = why
        if precision == "fp32":
            return
        if options.check_agreement:
            self.pending_precision = precision
        else:
            self.precision, self.precision_note = precision, f"{why}; agreement with fp32 not checked"

    def verify_precision(self, image: np.ndarray | None = None, store: speed.PrecisionChecks | None = None) -> None:
        """Keep the pending reduced precision only if its mask agrees with fp32 on enough pixels.

        The measurement is looked up in, or added to, `store` (keyed by weights and device). Without a
        calibration photo the reduced precision is used and the note says it was not checked. The first
        optimised forward also happens here; if it fails (a layout a model's code does not expect), the
        model falls back to running plain instead of failing later.
        """
        precision, self.pending_precision = self.pending_precision, None
        if precision is None:
            return
        store = store or speed.PrecisionChecks()
        weights = getattr(self.module, "_orig_mod", self.module)  # the same weights, compiled or not
        key = store.key(self.spec.id, speed.weights_fingerprint(weights), self.device, precision)
        known = store.get(key)
        if known is None:
            photo = "the given image" if image is not None else speed.CALIBRATION_PHOTO.name
            image = image if image is not None else speed.calibration_photo()
            if image is None:
                self.precision, self.precision_note = precision, f"{self.precision_note}; no calibration photo, not checked"
                return
            try:
                agreement = self._measure_agreement(image, precision)
            except torch.OutOfMemoryError:
                raise
            except Exception as error:  # noqa: BLE001 - an optimisation must never cost the model itself
                self._run_plain(f"optimised run failed ({type(error).__name__}: {str(error)[:200]}); running plain fp32")
                return
            known = {"agreement": agreement, "pixels": int(image.shape[0] * image.shape[1]), "photo": photo,
                     "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
            store.put(key, known)
            known = {**known, "source": "measured now"}
        else:
            known = {**known, "source": f"stored in {store.path}"}
        self.precision_check = {**known, "precision": precision, "threshold": speed.AGREEMENT_THRESHOLD}
        share = f"{100 * known['agreement']:.2f}% of pixels agree with fp32"
        if known["agreement"] >= speed.AGREEMENT_THRESHOLD:
            self.precision, self.precision_note = precision, f"{self.precision_note}; {share}"
        else:
            self.precision = "fp32"
            self.precision_note = f"{precision} fell back to fp32: only {share} (needs {100 * speed.AGREEMENT_THRESHOLD:.1f}%)"

    def _measure_agreement(self, image: np.ndarray, precision: str) -> float:
        with torch.inference_mode():
            inputs = self.prepare_inputs(self.preprocess(image))
            compiled, self.module = self.module, getattr(self.module, "_orig_mod", self.module)
            try:  # the fp32 reference runs eagerly: compiling it too would double a long first call
                reference = self.postprocess(self.forward(inputs), image.shape[:2])
            finally:
                self.module = compiled
            with speed.autocast(self.device, precision):
                outputs = self.forward(inputs)
            reduced = self.postprocess(speed.to_float32(outputs), image.shape[:2])
            return float((reference == reduced).float().mean())  # a load-time host sync, once per model

    def _run_plain(self, note: str) -> None:
        module = getattr(self.module, "_orig_mod", self.module)  # undo torch.compile
        self.module = module.to(memory_format=torch.contiguous_format)
        self.channels_last = self.compiled = False
        self.precision, self.precision_note = "fp32", note
    def prepare_inputs(self, inputs: Any) -> Any:
        return speed.to_channels_last(inputs) if self.channels_last else inputs

    @property
    def optimised(self) -> bool:
        return self.channels_last or self.compiled or self.precision != "fp32"

    def run_forward(self, inputs: Any) -> Any:
        """The model on prepared inputs, in the chosen precision, outputs back in fp32.

        If an optimised model fails (code that assumes the default memory layout, an operator the
        compiler does not support), it is switched to plain fp32 for good and this call is retried.
        """
        try:
            with speed.autocast(self.device, self.precision):
                outputs = self.forward(inputs)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - an optimisation must never cost the model itself
            if not self.optimised:
                raise
            self._run_plain(f"optimised run failed ({type(error).__name__}: {str(error)[:200]}); running plain fp32")
            return self.forward(speed.map_tensors(inputs, lambda t: t.contiguous()))
        return speed.to_float32(outputs) if self.precision != "fp32" else outputs
