"""From class scores to the label map: resize them to the photo, bilinearly, and take the argmax over classes.

mmseg, torchvision, transformers and smp all resize every class's scores to the photo before the argmax.
For 150 or 171 classes that is most of a Compare's time outside the networks (150 ADE20K classes from 64 x 86
through 512 x 683 to 1024 x 768: about 250 ms per model on the 2-vCPU Intel Xeon). `upsample_argmax` gives the
same label map, pixel for pixel, with less of that work:
- classes are resized a few at a time while a running maximum is kept (memory for `chunk` full-size
  channels instead of C, and they stay in the CPU's caches);
- on a CPU, when every resize enlarges, classes that cannot win anywhere are not resized at all. A bilinear
  enlargement's value at a pixel is a convex combination of the scores of a few neighbouring cells, all
  within a 3 x 3 block of cells (also after two enlargements in a row, as mmseg makes them): it is at most
  the class's largest score in that block, and the winning score there is at least the largest of any
  class's smallest score in the block. A class whose largest score stays below that bound (less a margin
  for rounding) in every block is never the argmax; the rest are resized, in their order, so ties still go
  to the first class as argmax's do. A trained model's scores are decisive almost everywhere, so few classes
  compete; near-tied scores (random weights) leave most of them in. On scores shaped like a trained
  model's (six of 150 classes compete) the resize took 22 ms instead of 289 ms; with all competing the bound
  costs about 3 ms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .devices import cpu_only_reads

ROUNDING_MARGIN = 1e-4  # relative to the largest score: far above the few float roundings of two resizes


def upsample_argmax(
    logits: torch.Tensor,
    size: tuple[int, int],
    chunk: int = 8,
    *,
    via: tuple[int, int] | None = None,
    align_corners: bool = False,
) -> torch.Tensor:
    """Bilinearly resize 1 x C x h x w logits to `size` and take the argmax over classes, exactly as resizing
    all channels at once and taking argmax(1) does.

    `via` resizes to that size first (mmseg goes through the network input's size on its way to the image's);
    `align_corners` is F.interpolate's, as the checkpoint's config sets it.
    """
    logits = logits[0] if logits.dim() == 4 else logits
    steps = [tuple(s) for s in (via, size) if s is not None]
    if all(tuple(logits.shape[-2:]) == step for step in steps):
        return logits.max(0).indices  # same as argmax(0), and several times faster on CPU
    if logits.device.type == "cpu":  # it reads values on the host: on a GPU that would make the host wait
        with cpu_only_reads():
            classes = competing_classes(logits, steps)
            if classes is not None and len(classes) == 1:
                return torch.full(steps[-1], int(classes[0]), dtype=torch.int64)
            if classes is not None and 1 < len(classes) < logits.shape[0]:
                return classes[_chunked_upsample_argmax(logits[classes], steps, chunk, align_corners)]
    return _chunked_upsample_argmax(logits, steps, chunk, align_corners)


def competing_classes(logits: torch.Tensor, steps: list[tuple[int, int]]) -> torch.Tensor | None:
    """The classes (ascending) that may be the argmax somewhere after the resizes, or None where the bound
    does not hold (a resize that shrinks: its cells' sources are not within 3 x 3 blocks)."""
    height, width = logits.shape[-2:]
    for step in steps:
        if step[0] < height or step[1] < width:
            return None
        height, width = step
    upper = _block_extreme(logits, torch.maximum)  # C x h x w: each class's largest score in each block
    lower = _block_extreme(logits, torch.minimum).amax(0)  # h x w: what the winner there reaches at least
    largest = float(logits.abs().amax())
    if not math.isfinite(largest):  # inf or NaN scores: the bound says nothing
        return None
    margin = ROUNDING_MARGIN * max(1.0, largest)
    return ((upper >= lower - margin).flatten(1).any(1)).nonzero()[:, 0]


def _block_extreme(scores: torch.Tensor, pick) -> torch.Tensor:
    """Per class, the largest (pick=torch.maximum) or smallest score of each cell's 3 x 3 block (cut at the
    borders: repeating the edge adds no new value), rows then columns; faster here than F.max_pool2d."""
    padded = F.pad(scores[None], (1, 1, 1, 1), mode="replicate")[0]
    rows = pick(pick(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return pick(pick(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])


def _chunked_upsample_argmax(logits: torch.Tensor, steps: list[tuple[int, int]], chunk: int,
                             align_corners: bool) -> torch.Tensor:
    """Eight classes at a time stayed in the CPU's caches: 150 ADE20K classes took 246 ms against 363 ms
    sixteen at a time on the 2-vCPU Intel Xeon."""
    best_value = best_index = None
    for start in range(0, logits.shape[0], chunk):
        resized = logits[None, start : start + chunk]
        for step in steps:
            if tuple(resized.shape[-2:]) != step:
                resized = F.interpolate(resized, size=step, mode="bilinear", align_corners=align_corners)
        value, index = resized[0].max(0)
        if best_value is None:
            best_value, best_index = value, index
            continue
        better = value > best_value  # a later class wins only if strictly larger, as argmax's first maximum
        torch.where(better, value, best_value, out=best_value)
        torch.where(better, index.add_(start), best_index, out=best_index)
    return best_index
