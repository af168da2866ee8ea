"""Look inside a running model: forward hooks on named modules keep the tensors the decoder makes.

Which modules to hook is data (probes.toml beside this file), keyed by catalog family and backend:
each [[probe]] names its taps (a module path from `model.named_modules()`, whether to keep the
module's output or its first input, and how to show the tensor) and the module patterns whose
outputs form the resolution ladder. Supporting a new family is adding an entry that names its module
paths; nothing here changes. Field reference: the comment at the top of probes.toml.

The model comes from Engine.segmenter, so it is the same cached, loaded model the Compare tab runs,
with the checkpoint's own preprocessing. Hooks are removed after the one forward pass and only record
calls made from the thread that attached them, so a Compare running at the same time on the same
model is neither slowed nor captured.
"""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..catalog import ModelSpec, catalog, get_spec
from ..runtime import crf as dense_crf
from ..runtime.engine import Engine
from ..runtime.results import Failure
from ..runtime.label_map import upsample_argmax
from ..runtime.segmenter import Segmenter

PROBES_FILE = Path(__file__).parent / "probes.toml"
SHOW_KINDS = ("scores", "features", "vector", "query_masks", "attention", "cross_attention")
OUTPUT_PREFIX = "output"  # a tap path "output" or "output.<attribute>" reads the model's return value
CRF_PARAMS = dense_crf.DEFAULT  # the "after the CRF" view of probes with crf = true: the Compare switch's parameters


class ProbeError(ValueError):
    """probes.toml is malformed."""


@dataclass(frozen=True)
class Tap:
    path: str
    show: str  # scores: class scores; features: any C x h x w map; vector: C x 1 x 1; query_masks: mask-classification
    # output; attention: N x h x w attention weights of every query position (N = h x w), of which the centre's are
    # kept; cross_attention: h x w x (h + w) weights over each position's column, then row (CCNet), the centre's kept
    title: str
    note: str = ""
    take: str = "output"  # or "input": the module's first tensor argument (e.g. what a decoder layer receives)


@dataclass(frozen=True)
class Probe:
    family: str
    backend: str
    taps: tuple[Tap, ...]
    ladder: tuple[str, ...]  # module path patterns, "*" standing for one path component (or part of one)
    look_for: str = ""  # what to look at in the pictures, in plain words
    models: tuple[str, ...] = ()  # restrict to these catalog ids; empty: every model of family + backend
    crf: bool = False  # also show the label map after the dense CRF (runtime/crf.py), beside the one before


@cache
def probes() -> tuple[Probe, ...]:
    with open(PROBES_FILE, "rb") as f:
        entries = tomllib.load(f).get("probe", [])
    result = []
    for entry in entries:
        where = f"probes.toml [{entry.get('family', '?')} / {entry.get('backend', '?')}]"
        if not entry.get("family") or not entry.get("backend") or not entry.get("tap"):
            raise ProbeError(f"{where}: every probe needs a family, a backend and at least one [[probe.tap]]")
        taps = []
        for tap in entry["tap"]:
            if tap.get("show") not in SHOW_KINDS:
                raise ProbeError(f"{where}: tap {tap.get('path')!r} shows {tap.get('show')!r}, not one of {SHOW_KINDS}")
            if tap.get("take", "output") not in ("output", "input") or not tap.get("path") or not tap.get("title"):
                raise ProbeError(f"{where}: tap {tap!r} needs a path, a title and take = output|input")
            taps.append(Tap(tap["path"], tap["show"], tap["title"], tap.get("note", ""), tap.get("take", "output")))
        result.append(Probe(entry["family"], entry["backend"], tuple(taps), tuple(entry.get("ladder", ())),
                            entry.get("look_for", "").strip(), tuple(entry.get("models", ())), bool(entry.get("crf", False))))
    return tuple(result)


def probe_for(spec: ModelSpec) -> Probe | None:
    for probe in probes():
        if probe.family == spec.family and probe.backend == spec.backend and (not probe.models or spec.id in probe.models):
            return probe
    return None


def probed_models(families: tuple[str, ...] | list[str]) -> list[ModelSpec]:
    """Catalog models of these families whose mechanism can be watched live."""
    return [spec for spec in catalog().values() if spec.family in families and probe_for(spec) is not None]


def matches(pattern: str, module_path: str) -> bool:
    """Component-wise glob: "backbone.*" matches backbone.layer1 but not backbone.layer1.0."""
    parts, names = pattern.split("."), module_path.split(".")
    return len(parts) == len(names) and all(fnmatchcase(name, part) for part, name in zip(parts, names))


@dataclass
class Captured:
    tap: Tap
    tensor: torch.Tensor  # the first batch item, on the CPU, float32
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # query_masks: the per-query class logits, the window;
    # attention: the followed query's (row, column)
    layer: str = ""  # the tapped module's first convolution when dilated, e.g. "3x3 conv, dilation 12"


@dataclass
class Rung:
    """Consecutive ladder modules that produce maps of one size: one step of the resolution ladder."""

    modules: list[str]
    height: int
    width: int
    channels: int


@dataclass
class Inside:
    """What one forward pass of one model looked like from the inside."""

    spec: ModelSpec
    probe: Probe
    input_size: tuple[int, int]  # (height, width) of the tensor the model received, after preprocessing
    captured: list[Captured]
    ladder: list[Rung]
    missing: list[str]  # tap paths this model does not have, or that did not run
    mask: np.ndarray | None = None  # the final label map at the photo's size
    crf_mask: np.ndarray | None = None  # probes with crf = true: the label map after the dense CRF
    crf_ms: float | None = None  # how long the CRF took

    def stride(self, height: int, width: int) -> float:
        """How many input pixels one cell of an h x w map spans (the output stride of that map)."""
        return max(self.input_size[0] / max(height, 1), self.input_size[1] / max(width, 1))


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in a module's output or arguments (tensors, tuples, lists, dicts, ModelOutputs)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def _input_size(inputs: Any) -> tuple[int, int]:
    candidates = inputs.values() if isinstance(inputs, dict) else [inputs]
    for candidate in candidates:
        tensor = first_tensor(candidate)
        if tensor is not None and tensor.dim() in (3, 4):  # a batch, or the first image of a list (detectors)
            return int(tensor.shape[-2]), int(tensor.shape[-1])
    raise ValueError("the model input holds no image tensor (N x C x H x W, or a list of C x H x W)")


def _keep(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[0].detach().to("cpu", torch.float32, copy=True)


def centre_query(height: int, width: int) -> tuple[int, int]:
    """The (row, column) of the cell an attention view follows: the centre of an h x w map."""
    return height // 2, width // 2


def keep_centre_query(weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """B x N x h x w attention weights -> the centre query's 1 x h x w weights and its (row, column).

    Only one row of the N x N matrix is copied: the whole of it is N^2 values (4 GB for a 128 x 256 map).
    """
    height, width = weights.shape[-2:]
    if weights.dim() != 4 or weights.shape[1] != height * width:
        raise ValueError(f"attention weights must be B x (h*w) x h x w, not {tuple(weights.shape)}")
    row, column = centre_query(height, width)
    return _keep(weights[:, row * width + column][:, None]), {"query": torch.tensor([row, column])}


def keep_centre_cross(weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """B x h x w x (h + w) criss-cross weights (column first, then row) -> the centre position's weights laid out
    on the map (1 x h x w: its column and its row, zero elsewhere; itself is in the row part) and its (row, column)."""
    height, width = weights.shape[1:3]
    if weights.dim() != 4 or weights.shape[3] != height + width:
        raise ValueError(f"criss-cross weights must be B x h x w x (h+w), not {tuple(weights.shape)}")
    row, column = centre_query(height, width)
    own = weights[0, row, column].detach().to("cpu", torch.float32)
    laid_out = torch.zeros(1, height, width)
    laid_out[0, :, column] = own[:height]
    laid_out[0, row, :] += own[height:]
    return laid_out, {"query": torch.tensor([row, column])}


def capture(segmenter: Segmenter, inputs: Any, probe: Probe) -> tuple[Inside, Any]:
    """Run `segmenter.forward(inputs)` once with the probe's hooks attached: (what they saw, the outputs)."""
    owner = threading.get_ident()
    modules = dict(segmenter.module.named_modules())
    kept: dict[tuple[str, str], torch.Tensor] = {}  # (path, take): one module may be tapped for input and output
    extras: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    shapes: list[tuple[str, tuple[int, ...]]] = []
    handles = []

    def tap_hook(tap: Tap):
        def hook(module, args, kwargs, output):
            if threading.get_ident() != owner or (tap.path, tap.take) in kept:
                return  # another thread's call, or a module that runs twice: keep the first
            tensor = first_tensor(output) if tap.take == "output" else first_tensor([*args, *kwargs.values()])
            if tensor is None or tensor.dim() < 2 or len(tensor) == 0:  # (no RoIs: a per-RoI head saw nothing)
                return
            if tap.show in ("attention", "cross_attention"):
                keep = keep_centre_query if tap.show == "attention" else keep_centre_cross
                kept[(tap.path, tap.take)], extras[(tap.path, tap.take)] = keep(tensor)
            else:
                kept[(tap.path, tap.take)] = _keep(tensor)
        return hook

    def ladder_hook(name: str):
        def hook(module, args, output):
            tensor = first_tensor(output)
            if threading.get_ident() == owner and tensor is not None and tensor.dim() == 4:
                shapes.append((name, tuple(tensor.shape[1:])))
        return hook

    missing = []
    try:
        for tap in probe.taps:
            if tap.path == OUTPUT_PREFIX or tap.path.startswith(OUTPUT_PREFIX + "."):
                continue
            if tap.path not in modules:
                missing.append(tap.path)
                continue
            handles.append(modules[tap.path].register_forward_hook(tap_hook(tap), with_kwargs=True))
        for name, module in modules.items():
            if name and any(matches(pattern, name) for pattern in probe.ladder):
                handles.append(module.register_forward_hook(ladder_hook(name)))
        with torch.inference_mode():
            outputs = segmenter.forward(inputs)
    finally:
        for handle in handles:
            handle.remove()

    captured = []
    for tap in probe.taps:
        if (tap.path, tap.take) in kept:
            layer = _atrous_conv(modules[tap.path]) if tap.take == "output" else ""
            captured.append(Captured(tap, kept[(tap.path, tap.take)], extras.get((tap.path, tap.take), {}), layer))
        elif tap.path.startswith(OUTPUT_PREFIX):
            found = _from_output(tap, outputs)
            if found is None:
                missing.append(tap.path)
            else:
                captured.append(found)
        elif tap.path not in missing:
            missing.append(tap.path)  # the module exists but did not run for this input
    height, width = _input_size(inputs)
    scores = segmenter.class_scores(outputs)  # as the model returns them, before any resize to the photo
    if scores is not None:
        shapes.append(("model output", tuple(scores.shape[1:])))
    ladder = [Rung(["model input"], height, width, 3), *_rungs(shapes)]
    return Inside(segmenter.spec, probe, (height, width), captured, ladder, missing), outputs


def _atrous_conv(module: torch.nn.Module) -> str:
    """ "3x3 conv, dilation 12" when the module's first convolution is dilated: ASPP rates as the checkpoint has them."""
    conv = next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if conv is None or max(conv.dilation) == 1:
        return ""
    return f"{'x'.join(str(k) for k in conv.kernel_size)} conv, dilation {max(conv.dilation)}"


def _from_output(tap: Tap, outputs: Any) -> Captured | None:
    if tap.show == "query_masks":  # the transformers mask-classification convention (MaskFormer, Mask2Former, OneFormer)
        masks = getattr(outputs, "masks_queries_logits", None)
        classes = getattr(outputs, "class_queries_logits", None)
        if masks is None or classes is None:
            return None
        extra = {"class_logits": _keep(classes)}
        window = getattr(outputs, "first_window", None)  # EoMT: the queries of the first window only
        if window is not None:
            extra["window"] = torch.tensor(window)
        return Captured(tap, _keep(masks), extra)
    value = outputs
    for attribute in tap.path.split(".")[1:]:
        value = getattr(value, attribute, None)
    tensor = first_tensor(value)
    return Captured(tap, _keep(tensor)) if tensor is not None else None


def _rungs(shapes: list[tuple[str, tuple[int, ...]]]) -> list[Rung]:
    rungs: list[Rung] = []
    for name, (channels, height, width) in shapes:
        if rungs and (rungs[-1].height, rungs[-1].width) == (height, width):
            rungs[-1].modules.append(name)
            rungs[-1].channels = channels
        else:
            rungs.append(Rung([name], height, width, channels))
    return rungs


def look_inside(engine: Engine, model_id: str, image: np.ndarray) -> Inside | Failure:
    """Preprocess the photo as the checkpoint expects, run the model once with hooks, keep the final map too."""
    from ..runtime.results import describe_failure

    spec = get_spec(model_id)
    probe = probe_for(spec)
    if probe is None:
        return Failure(spec, f"There is no live view for {spec.name} yet (no probe for family {spec.family!r} "
                             f"on backend {spec.backend!r} in seggallery/explain/probes.toml).")
    try:
        segmenter, _ = engine.segmenter(model_id)
        with torch.inference_mode():
            inputs = segmenter.preprocess(image)
            inside, outputs = capture(segmenter, inputs, probe)
            inside.mask = segmenter.postprocess(outputs, image.shape[:2]).to("cpu", torch.int32).numpy()
            scores = segmenter.class_scores(outputs)
            if probe.crf and scores is not None:
                start = time.perf_counter()
                refined = dense_crf.refine(scores, image, CRF_PARAMS)
                inside.crf_mask = upsample_argmax(refined, image.shape[:2]).to("cpu", torch.int32).numpy()
                inside.crf_ms = (time.perf_counter() - start) * 1000.0
    except Exception as error:  # noqa: BLE001 - a model that fails is a message, not a crash
        reason, fix = describe_failure(spec, error)
        return Failure(spec, reason, fix)
    return inside
