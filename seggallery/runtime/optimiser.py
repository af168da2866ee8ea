"""What the engine does to a loaded model to make it fast, and how it keeps it right.

A Segmenter is built plain by its backend (fp32, upstream memory layout) and carries a Tuning: what its
forward currently runs with. `optimise` sets the memory layout, dilated convolutions as taps on a CPU
(runtime.fastconv), fused attention kernels (runtime.fast_attention), compilation and the precision to try;
`verify_precision`, before the first prediction, keeps that precision only if its mask agrees with plain
fp32's and, when timed, only if it is the fastest of plain fp32, tuned fp32 and tuned reduced precision here
(runtime.speed has the building blocks).
`run_forward` runs the model as tuned, and falls back to plain fp32 for good if an optimised run fails.
`Tuning.precision` always names what runs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from . import fast_attention, fastconv, speed, zerogpu
from .devices import synchronize


@dataclass
class Tuning:
    """How a Segmenter's forward runs now, and why."""

    precision: str = "fp32"
    precision_note: str = "plain fp32 (not optimised)"
    channels_last: bool = False
    compiled: bool = False
    dilated_taps: int = 0  # dilated convolutions that may run as taps (runtime.fastconv)
    fused_attention: int = 0  # attention modules running as one fused kernel (runtime.fast_attention)
    pending_precision: str | None = None  # the precision to try, waiting for its check against plain fp32
    precision_check: dict | None = None  # the measurement behind the current precision
    time_choices: bool = False  # the check also times plain fp32 and the tuned runs and keeps the fastest

    @property
    def optimised(self) -> bool:
        return self.layout_tuned or self.precision != "fp32"

    @property
    def layout_tuned(self) -> bool:
        return self.channels_last or self.compiled or self.dilated_taps > 0 or self.fused_attention > 0


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
    if options.fast_convolutions and device.type == "cpu" and not options.compile:  # compiled: inductor picks kernels
        tuning.dilated_taps = fastconv.speed_up_layers(segmenter.module)
    tuning.fused_attention = fast_attention.set_fused(segmenter.module, True)
    if options.compile and device.type in ("cuda", "cpu") and not zerogpu.active():
        segmenter.module = speed.compile_module(segmenter.module, device)
        tuning.compiled = True
    allowed = segmenter.spec.precision
    precision, why = speed.choose_precision(options.precision, speed.fastest_precision(device), allowed)
    if allowed != "auto" and precision == "fp32" and segmenter.spec.precision_reason:
        why = f"{why}: {segmenter.spec.precision_reason}"
    tuning.precision_note = why
    tuning.time_choices = options.check_agreement and options.time_choices
    if precision == "fp32":
        if tuning.time_choices and tuning.layout_tuned:
            tuning.pending_precision = "fp32"  # only the layout to check: is it faster than plain?
        return
    if options.check_agreement:
        tuning.pending_precision = precision
    else:
        tuning.precision, tuning.precision_note = precision, f"{why}; agreement with fp32 not checked"


def verify_precision(segmenter, image: np.ndarray | None = None, store: speed.PrecisionChecks | None = None) -> None:
    """Keep the pending precision only if its mask agrees with plain fp32's on enough pixels and, when the
    tuning says to time the choices, only if it is also the fastest of plain fp32, tuned fp32 and tuned
    reduced precision on this machine (so that no model runs slower than it would plain).

    The measurement is looked up in, or added to, `store` (keyed by weights, device and what was measured).
    Without a calibration photo the pending precision is used and the note says it was not checked. The
    first optimised forward also happens here; if it fails (a layout a model's code does not expect), the
    model falls back to running plain instead of failing later.
    """
    tuning = segmenter.tuning
    precision, tuning.pending_precision = tuning.pending_precision, None
    if precision is None:
        return
    store = store or speed.PrecisionChecks()
    weights = getattr(segmenter.module, "_orig_mod", segmenter.module)  # the same weights, compiled or not
    what = f"{precision}, timed against plain fp32" if tuning.time_choices else precision
    key = store.key(segmenter.spec.id, speed.weights_fingerprint(weights), segmenter.device, what)
    known = store.get(key)
    if known is None:
        photo = "the given image" if image is not None else speed.CALIBRATION_PHOTO.name
        image = image if image is not None else speed.calibration_photo()
        if image is None:
            tuning.precision, tuning.precision_note = precision, f"{tuning.precision_note}; no calibration photo, not checked"
            return
        try:
            known = _measure(segmenter, image, precision, tuning.time_choices)
        except torch.OutOfMemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - an optimisation must never cost the model itself
            _run_plain(segmenter, f"optimised run failed ({type(error).__name__}: {str(error)[:200]}); running plain fp32")
            return
        known.update({"pixels": int(image.shape[0] * image.shape[1]), "photo": photo,
                      "measured": time.strftime("%Y-%m-%dT%H:%M:%S")})
        store.put(key, known)
        known = {**known, "source": "measured now"}
    else:
        known = {**known, "source": f"stored in {store.path}"}
    tuning.precision_check = {**known, "precision": precision, "threshold": speed.AGREEMENT_THRESHOLD}
    _apply(segmenter, precision, known)


def _apply(segmenter, precision: str, known: dict) -> None:
    """Set the tuning from a measurement: the fastest of the runs that agree (or, untimed, the precision if it agrees)."""
    tuning = segmenter.tuning
    share = f"{100 * known['agreement']:.2f}% of pixels agree with fp32"
    agrees = known["agreement"] >= speed.AGREEMENT_THRESHOLD
    if "plain_ms" not in known:  # agreement only
        if agrees:
            tuning.precision, tuning.precision_note = precision, f"{tuning.precision_note}; {share}"
        else:
            tuning.precision = "fp32"
            tuning.precision_note = f"{precision} fell back to fp32: only {share} (needs {100 * speed.AGREEMENT_THRESHOLD:.1f}%)"
            fastconv.drop_casts(segmenter.module)
        return
    runs = {"plain fp32": known["plain_ms"], "fp32": known["fp32_ms"]}
    if precision != "fp32" and agrees:
        runs[precision] = known["reduced_ms"]
    fastest = min(runs, key=runs.get)
    timing = ", ".join(f"{name} {ms:.0f} ms" for name, ms in runs.items())
    if precision != "fp32" and not agrees:
        why = f"{precision} not used: only {share} (needs {100 * speed.AGREEMENT_THRESHOLD:.1f}%)"
    elif precision != "fp32" and fastest != precision:
        why = f"{precision} was slower here, {known['reduced_ms']:.0f} ms against {runs[fastest]:.0f} ms"
    else:
        why = share if precision != "fp32" else "tuned layout checked against plain"
    if fastest == "plain fp32":
        _run_plain(segmenter, f"plain fp32: fastest here ({timing}); {why}")
        return
    tuning.precision = fastest
    tuning.precision_note = f"{tuning.precision_note}; {why}; measured {timing}"
    if fastest == "fp32":
        fastconv.drop_casts(segmenter.module)


@contextlib.contextmanager
def _plain(segmenter):
    """The model as its library built it for the duration: eager, default memory layout, library convolutions,
    explicit attention."""
    tuned = segmenter.module
    module = getattr(tuned, "_orig_mod", tuned)
    channels_last = segmenter.tuning.channels_last
    if channels_last:
        module.to(memory_format=torch.contiguous_format)
    fastconv.force(module, "library")
    fast_attention.set_fused(module, False)
    segmenter.module = module
    try:
        yield
    finally:
        segmenter.module = tuned
        fastconv.force(module, None)
        fast_attention.set_fused(module, segmenter.tuning.fused_attention > 0)
        if channels_last:
            module.to(memory_format=torch.channels_last)


def _timed_ms(device: torch.device, run: Callable[[], Any]) -> float:
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def _measure(segmenter, image: np.ndarray, precision: str, timed: bool) -> dict:
    """Agreement of the tuned run's mask with plain fp32's; with `timed`, each run's time too (its second
    call: the first builds kernels, compiles, and lets dilated convolutions choose their way)."""
    device, size = segmenter.device, image.shape[:2]
    result = {}
    with torch.inference_mode():
        raw = segmenter.preprocess(image)
        with _plain(segmenter):
            plain_inputs = speed.map_tensors(raw, lambda t: t.contiguous())
            reference = segmenter.postprocess(segmenter.forward(plain_inputs), size)
            if timed:
                result["plain_ms"] = _timed_ms(device, lambda: segmenter.forward(plain_inputs))
        inputs = prepare_inputs(segmenter, raw)
        if timed and precision != "fp32":
            segmenter.forward(inputs)
            result["fp32_ms"] = _timed_ms(device, lambda: segmenter.forward(inputs))
        with speed.autocast(device, precision):
            outputs = segmenter.forward(inputs)
            if timed:
                result["reduced_ms" if precision != "fp32" else "fp32_ms"] = _timed_ms(device, lambda: segmenter.forward(inputs))
        tuned = segmenter.postprocess(speed.to_float32(outputs), size)
        result["agreement"] = float((reference == tuned).float().mean())  # a load-time host sync, once per model
    return result


def _run_plain(segmenter, note: str) -> None:
    module = getattr(segmenter.module, "_orig_mod", segmenter.module)  # undo torch.compile
    segmenter.module = module.to(memory_format=torch.contiguous_format)
    fastconv.force(module, "library")
    fastconv.drop_casts(module)
    fast_attention.set_fused(module, False)
    tuning = segmenter.tuning
    tuning.channels_last = tuning.compiled = False
    tuning.dilated_taps = tuning.fused_attention = 0
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
