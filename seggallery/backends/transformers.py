"""transformers semantic and universal segmentation checkpoints, with each one's own processor.

The catalog names the concrete model class (e.g. SegformerForSemanticSegmentation), so no Auto class
can be steered by a config's `auto_map` into remote code; trust_remote_code is never set.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import transformers

from ..catalog import ModelSpec
from ..runtime.label_map import upsample_argmax
from ..runtime.segmenter import Segmenter
from . import panoptic_segments, sliding_windows, weights
from .base import HubFile, WeightFile, hub_files, hub_source_text

_ALLOWED_SUFFIXES = ("ForSemanticSegmentation", "ForUniversalSegmentation")


def _model_class(spec: ModelSpec):
    name = spec.source["model_class"]
    if not name.endswith(_ALLOWED_SUFFIXES):
        raise ValueError(f"{spec.id}: {name} is not a segmentation model class")
    return getattr(transformers, name)


def _extra(spec: ModelSpec) -> dict | None:
    """A second repo some processors read (OneFormer's class-info file), pinned like the model."""
    return spec.source.get("extra")


def files(spec: ModelSpec) -> list[WeightFile]:
    source, extra = spec.source, _extra(spec)
    found = [WeightFile((HubFile(source["repo"], source["revision"], name),)) for name in source["files"]]
    if extra is not None:
        found += [WeightFile((HubFile(extra["repo"], extra["revision"], name, extra["repo_type"]),)) for name in extra["files"]]
    return found


def describe_source(spec: ModelSpec) -> str:
    return hub_source_text(hub_files(files(spec))[0])


def _download(spec: ModelSpec) -> tuple[Path, Path | None]:
    """The model's snapshot folder, and the extra repo's (or None)."""
    source, extra = spec.source, _extra(spec)
    paths = weights.fetch(files(spec))
    folder = weights.snapshot_folder(paths[0], source["files"][0])
    extra_folder = None
    if extra is not None:
        extra_folder = weights.snapshot_folder(paths[len(source["files"])], extra["files"][0])
    return folder, extra_folder


def mask_classification_scores(outputs) -> torch.Tensor | None:
    """MaskFormer-style outputs (`class_queries_logits` + `masks_queries_logits`) as N x C x h x w log-probabilities,
    computed the way their semantic post-processing combines them (class probabilities without the "no object"
    class, times each query's mask probability, summed over queries), normalised over classes; None otherwise."""
    classes = getattr(outputs, "class_queries_logits", None)
    masks = getattr(outputs, "masks_queries_logits", None)
    if not isinstance(classes, torch.Tensor) or not isinstance(masks, torch.Tensor) or masks.dim() != 4:
        return None
    class_probs = classes.float().softmax(-1)[..., :-1]  # N x Q x C
    scores = torch.einsum("nqc,nqhw->nchw", class_probs, masks.float().sigmoid())
    return (scores / scores.sum(1, keepdim=True).clamp_min(1e-12)).clamp_min(1e-12).log()


def runs_on_torch(processor) -> bool:
    """Whether the processor's image part is transformers 5's torchvision backend, which resizes and
    normalises a tensor on whatever device the tensor is on (its PIL backend needs host arrays)."""
    return getattr(getattr(processor, "image_processor", processor), "backend", None) == "torchvision"


def _to_device(value, device: torch.device):
    """A processor output on the model's device; lists (EoMT's window offsets) stay as the processor made them."""
    return value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value


class TransformersSegmenter(Segmenter):
    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device, processor, task: str | None):
        super().__init__(spec, module, device)
        self.processor = processor
        self.task = task  # universal models (OneFormer) are told which task to solve
        self.on_device = runs_on_torch(processor)

    def preprocess(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        """The checkpoint's processor; with the torchvision backend it gets the photo already on the device
        (uint8, uploaded without waiting), so on a GPU it resizes and normalises there."""
        extra = {"task_inputs": [self.task]} if self.task else {}
        photo = self.upload(image) if self.on_device else image
        batch = self.processor(images=photo, input_data_format="channels_last", return_tensors="pt", **extra)
        return {name: _to_device(value, self.device) for name, value in batch.items()}

    def forward(self, inputs: dict[str, torch.Tensor]):
        return self.module(**inputs)

    def class_scores(self, outputs) -> torch.Tensor | None:
        logits = getattr(outputs, "logits", None)
        if isinstance(logits, torch.Tensor) and logits.dim() == 4:
            return logits
        return mask_classification_scores(outputs)

    def postprocess(self, outputs, size: tuple[int, int]) -> torch.Tensor:
        return self.processor.post_process_semantic_segmentation(outputs, target_sizes=[tuple(size)])[0]


class WindowSegmenter(TransformersSegmenter):
    """EoMT's semantic inference: the processor cuts the resized photo into overlapping windows, the model
    segments each, and the windows' class scores are averaged into one map (`sliding_windows`).

    Its inputs carry `photo_size` beside the processor's tensors: the stitching needs the photo's
    orientation, which the window offsets alone do not give. The stitching runs (and is timed) with the
    forward step, so that the class scores exist before the label map is made.
    """

    EXTRA_INPUTS = ("photo_size",)

    def preprocess(self, image: np.ndarray) -> dict:
        return {**super().preprocess(image), "photo_size": tuple(image.shape[:2])}

    def forward(self, inputs: dict) -> sliding_windows.WindowOutputs:
        model_inputs = {name: value for name, value in inputs.items() if name not in self.EXTRA_INPUTS}
        windows = self.module(**model_inputs)
        scores = sliding_windows.merged_scores(self.processor, windows, inputs["photo_size"])
        shortest_edge = getattr(self.processor, "image_processor", self.processor).size.shortest_edge
        first = sliding_windows.window_box(inputs["patch_offsets"][0], inputs["photo_size"], shortest_edge)
        return sliding_windows.WindowOutputs(windows, scores.float(), first)

    def class_scores(self, outputs: sliding_windows.WindowOutputs) -> torch.Tensor:
        """The merged map as log-probabilities (each pixel's scores normalised over classes)."""
        scores = outputs.scores.float()
        return (scores / scores.sum(1, keepdim=True).clamp_min(1e-12)).clamp_min(1e-12).log()

    def postprocess(self, outputs: sliding_windows.WindowOutputs, size: tuple[int, int]) -> torch.Tensor:
        """The processor's last step: the averaged scores bilinearly resized to the photo, argmax."""
        return upsample_argmax(outputs.scores, size)


class PanopticSegmenter(TransformersSegmenter):
    """A universal checkpoint told the task "panoptic": its segments (things and stuff) as instances, as
    the processor's post_process_panoptic_segmentation gives them with its defaults (the model card's
    call), and each pixel's segment class as its semantic reading (`panoptic_segments`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last = threading.local()  # this thread's last (outputs, size, segments): postprocess and instances share one

    def _panoptic(self, outputs, size: tuple[int, int]) -> dict:
        last = getattr(self._last, "value", None)
        if last is not None and last[0] is outputs and last[1] == tuple(size):
            return last[2]
        # label_ids_to_fuse=set() is what the card's call (none given) falls back to, without its warning
        panoptic = self.processor.post_process_panoptic_segmentation(outputs, target_sizes=[tuple(size)], label_ids_to_fuse=set())[0]
        self._last.value = (outputs, tuple(size), panoptic)
        return panoptic

    def postprocess(self, outputs, size: tuple[int, int]) -> torch.Tensor:
        panoptic = self._panoptic(outputs, size)
        semantic = super().postprocess(outputs, size)
        return panoptic_segments.panoptic_reading(panoptic["segmentation"], panoptic["segments_info"], semantic)

    def instances(self, outputs, size: tuple[int, int]):
        panoptic = self._panoptic(outputs, size)
        return panoptic_segments.segments_to_instances(panoptic["segmentation"], panoptic["segments_info"])


def load_processor(spec: ModelSpec, folder: Path, extra_folder: Path | None):
    """The checkpoint's own processor, from its snapshot folder.

    OneFormer's image processor reads its class-info file from `repo_path`, a second repo that it
    would otherwise fetch at that repo's moving main; pointing it at the pinned snapshot keeps it
    pinned (and offline-capable once `fetch` has run).
    """
    processor_class = getattr(transformers, spec.source.get("processor_class", "AutoImageProcessor"))
    overrides = {"repo_path": str(extra_folder)} if extra_folder is not None else {}
    return processor_class.from_pretrained(str(folder), **overrides)


def load_model(spec: ModelSpec, folder: Path) -> torch.nn.Module:
    """The model with every weight from the checkpoint.

    from_pretrained only warns about weights the checkpoint lacks and initialises them at random, which
    would show a plausible-looking but meaningless map; a checkpoint that does not fill the model is refused.
    """
    model, info = _model_class(spec).from_pretrained(str(folder), output_loading_info=True)
    gaps = {kind: sorted(info[kind]) for kind in ("missing_keys", "mismatched_keys") if info.get(kind)}
    if gaps:
        details = "; ".join(f"{len(keys)} {kind.replace('_', ' ')}, e.g. {keys[0]}" for kind, keys in gaps.items())
        raise ValueError(f"{spec.id}: the checkpoint does not fit {spec.source['model_class']}: {details}")
    return model


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    folder, extra_folder = _download(spec)
    processor = load_processor(spec, folder, extra_folder)
    model = load_model(spec, folder)
    num_labels = len(model.config.id2label)
    if num_labels != len(spec.label_set):
        raise ValueError(f"{spec.id}: checkpoint predicts {num_labels} classes, label set {spec.labels} has {len(spec.label_set)}")
    segmenter_class = TransformersSegmenter
    if sliding_windows.splits_into_windows(processor):
        segmenter_class = WindowSegmenter
    elif spec.task == "panoptic":
        segmenter_class = PanopticSegmenter
    return segmenter_class(spec, model, device, processor, spec.source.get("task"))
