"""Out of memory in one model: retry it at half the resolution, then on the CPU, and say so.

A large photo or a large model can exhaust the GPU while the other models of a comparison fit. Rather
than losing that model's column, the engine tries again with less: the same model on the image at half
size (its mask, and an instance model's object masks and boxes, scaled back up to the image), then the model loaded on the CPU at full size. Each step
is written into the prediction's notes, so the user knows what they are looking at.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image

from .crf import CrfParams
from .results import Instances, Prediction
from .segmenter import Segmenter

CPU = torch.device("cpu")
MIN_RETRY_SIDE = 64  # below this, a smaller image would not be a fair answer: go to the CPU instead


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, MPS's and the CPU allocator's RuntimeErrors, Python's MemoryError."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


Load = Callable[[torch.device], tuple[Segmenter, float | None]]  # device -> (model, load ms or None when warm)


def run_within_memory(load: Load, device: torch.device, image: np.ndarray, crf: CrfParams | None = None) -> tuple[Prediction, float | None]:
    """Load (when needed) and run one model; the prediction and the load time in ms (None when warm).

    `load(device)` gives the model on that device (the engine's cached loader for one model id); `crf`
    goes to Segmenter.predict (the dense CRF refinement, or None).
    """
    notes: list[str] = []
    try:
        segmenter, load_ms = load(device)
    except Exception as error:
        if not is_out_of_memory(error) or device.type == "cpu":
            raise
        release_memory(device)
        segmenter, load_ms = load(CPU)
        notes.append(f"not enough {device.type.upper()} memory to load it: it ran on the CPU")
    try:
        prediction = segmenter.predict(image, crf)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        release_memory(segmenter.device)
        prediction, extra_load_ms, note = _retry_with_less(load, segmenter, image, crf)
        notes.append(note)
        if extra_load_ms is not None:
            load_ms = (load_ms or 0.0) + extra_load_ms
    prediction.notes = notes + prediction.notes
    return prediction, load_ms


def _retry_with_less(load: Load, segmenter: Segmenter, image: np.ndarray, crf: CrfParams | None):
    device = segmenter.device
    height, width = image.shape[:2]
    where = "GPU" if device.type == "cuda" else device.type.upper()
    if min(height, width) // 2 >= MIN_RETRY_SIDE:
        half = (width // 2, height // 2)
        smaller = np.asarray(Image.fromarray(image).resize(half, Image.Resampling.BOX))
        try:
            prediction = segmenter.predict(smaller, crf)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            release_memory(device)
        else:
            prediction.mask = _nearest(prediction.mask, (width, height))
            if prediction.instances is not None:
                prediction.instances = _scaled_instances(prediction.instances, (width, height))
            return prediction, None, (f"ran out of {where} memory at {width}x{height}: "
                                      f"ran at {half[0]}x{half[1]} instead (mask scaled up, coarser edges)")
    if device.type == "cpu":
        raise MemoryError(f"out of memory even at a lower resolution on the CPU ({width}x{height} image)")
    cpu_segmenter, load_ms = load(CPU)
    prediction = cpu_segmenter.predict(image, crf)
    return prediction, load_ms, f"ran out of {where} memory at {width}x{height}: ran on the CPU instead (slower)"


def _nearest(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a class-id map (or N such maps) to (width, height), sampling each target
    pixel's centre."""
    height, width = ids.shape[-2:]
    rows = np.minimum(((np.arange(size[1]) + 0.5) * height / size[1]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[0]) + 0.5) * width / size[0]).astype(np.int64), width - 1)
    return ids[..., rows[:, None], cols[None, :]]


def _scaled_instances(instances: Instances, size: tuple[int, int]) -> Instances:
    """Objects found on a smaller image, at (width, height): masks by the label map's rule, boxes scaled."""
    height, width = instances.masks.shape[-2:]
    boxes = None
    if instances.boxes is not None:
        boxes = instances.boxes * np.array([size[0] / width, size[1] / height] * 2, dtype=instances.boxes.dtype)
    return Instances(_nearest(instances.masks, size), instances.labels, instances.scores, boxes)
