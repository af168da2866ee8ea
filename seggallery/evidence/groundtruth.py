"""Ground-truth label masks from uploads: index PNGs, palette PNGs (Pascal VOC style) and colour PNGs.

A mask belongs to a label set. Its pixels become class ids of that set, with every kind of "ignore"
(VOC's 255 border, CamVid's void) as the label set's ignore index. Every problem is a MaskError
(an ImageError) whose message says what is wrong and what would work, for a user to read as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..catalog import LabelSet
from ..images import ImageError, decode_file, read_upload

VOC_BORDER = 255  # Pascal VOC marks object borders and difficult pixels with 255 (colour 224,224,192)
VOC_BORDER_COLOR = (224, 224, 192)


class MaskError(ImageError):
    """The ground-truth mask cannot be used; the message says why."""


@dataclass
class GroundTruth:
    mask: np.ndarray  # H x W int32 ids of `labels`; ignored pixels hold ignore_id
    labels: LabelSet
    kind: str  # how the file was read: "index", "palette" or "colour"
    notes: list[str] = field(default_factory=list)

    @property
    def ignore_id(self) -> int:
        return ignore_id(self.labels)

    @property
    def ignored_pixels(self) -> int:
        return int((self.mask == self.ignore_id).sum())


def ignore_id(labels: LabelSet) -> int:
    return labels.ignore_index if labels.ignore_index is not None else VOC_BORDER


def load_mask(source: str | os.PathLike | bytes, labels: LabelSet, image_size: tuple[int, int],
              inference_shape: tuple[int, int] | None = None) -> GroundTruth:
    """Read a mask for a photo of `image_size` (width, height, as in the file); when the photo was
    downscaled for inference, the mask is resized (nearest) to `inference_shape` (height, width)."""
    try:  # the photo's bounds: bytes, pixels (before decoding), formats; EXIF orientation like the photo's
        decoded = decode_file(read_upload(source))
    except ImageError as error:
        raise MaskError(f"the mask cannot be used: {error}") from None
    image = decoded.image
    if decoded.format in ("JPEG", "MPO"):
        raise MaskError("the mask is a JPEG: lossy compression changes label values at every edge; save it as PNG")
    check_mask_size(image.size, image_size)
    notes: list[str] = []
    if image.mode == "P":
        ids, kind = _palette_ids(image, labels, notes), "palette"
    elif image.mode in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N", "1"):
        ids, kind = np.asarray(image, dtype=np.int64), "index"
    elif image.mode in ("RGB", "RGBA"):
        ids, kind = _colour_ids(np.asarray(image.convert("RGB")), labels, notes)
    else:
        raise MaskError(f"a mask in PIL mode {image.mode} is not understood; use an 8-bit index, palette or RGB PNG")
    mask = _check_ids(ids, labels)
    if inference_shape is not None and tuple(inference_shape) != mask.shape:
        resized = Image.fromarray(mask.astype(np.int32), mode="I").resize(inference_shape[::-1], Image.Resampling.NEAREST)
        mask = np.asarray(resized, dtype=np.int32)
        notes.append(f"mask resized (nearest) to {inference_shape[1]}x{inference_shape[0]} like the photo")
    return GroundTruth(mask.astype(np.int32), labels, kind, notes)


def check_mask_size(mask_size: tuple[int, int], image_size: tuple[int, int]) -> None:
    """The mask must cover the photo pixel for pixel; the message says what the mismatch looks like."""
    if tuple(mask_size) == tuple(image_size):
        return
    (mw, mh), (iw, ih) = mask_size, image_size
    hint = ""
    if (mh, mw) == (iw, ih):
        hint = " It looks turned by 90 degrees (the photo's EXIF orientation is applied, and the mask's)."
    elif mw * ih == mh * iw:
        hint = " It has the photo's shape at another scale: resize it to the photo's size with nearest-neighbour sampling."
    raise MaskError(f"the mask is {mw}x{mh} pixels but the photo is {iw}x{ih}; a mask must have exactly the photo's size.{hint}")


def _palette_ids(image: Image.Image, labels: LabelSet, notes: list[str]) -> np.ndarray:
    """Palette PNG: by convention (Pascal VOC, Cityscapes tools) the indices are the class ids. When the
    palette shows that an editor re-ordered the colours, the colours are read instead."""
    indices = np.asarray(image, dtype=np.int64)
    palette = np.asarray(image.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    used = np.unique(indices)
    expected = {i: tuple(labels.colors[i]) for i in range(len(labels))}
    expected[ignore_id(labels)] = VOC_BORDER_COLOR
    if all(i < len(palette) and tuple(palette[i]) == expected.get(int(i), ()) for i in used) or len(palette) == 0:
        return indices
    if all(i < len(palette) and _is_grey(palette[i], i) for i in used):
        return indices  # a greyscale palette: the values are the ids
    mismatched = [int(i) for i in used if i < len(palette) and tuple(palette[i]) != expected.get(int(i), ())]
    colours = palette[np.minimum(indices, len(palette) - 1)].astype(np.uint8)
    try:
        ids, _ = _colour_ids(colours, labels, notes)
    except MaskError:
        sample = ", ".join(f"{i} = {tuple(int(c) for c in palette[i])}" for i in mismatched[:4])
        raise MaskError(
            f"the mask's palette does not match {labels.name}: index {sample} (expected "
            f"{', '.join(str(expected.get(i, 'no class')) for i in mismatched[:4])}). Is it a mask of another label set?"
        ) from None
    notes.append("palette order differs from the label set's; classes were read from the colours")
    return ids


def _is_grey(color: np.ndarray, index: int) -> bool:
    return bool(color[0] == color[1] == color[2] == index)


def _colour_ids(rgb: np.ndarray, labels: LabelSet, notes: list[str]) -> tuple[np.ndarray, str]:
    """RGB mask in the label set's palette -> ids. VOC's border colour is ignored."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    lookup: dict[int, int] = {}
    ambiguous: dict[int, list[str]] = {}
    for class_id, (r, g, b) in enumerate(labels.colors):
        code = (r << 16) | (g << 8) | b
        if code in lookup and class_id != labels.ignore_index:
            ambiguous.setdefault(code, [labels.names[lookup[code]]]).append(labels.names[class_id])
        else:
            lookup.setdefault(code, class_id)
    border = (VOC_BORDER_COLOR[0] << 16) | (VOC_BORDER_COLOR[1] << 8) | VOC_BORDER_COLOR[2]
    lookup.setdefault(border, ignore_id(labels))
    present, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    # one pass over the pixels: a photo uploaded as a mask has ~10^5 colours, and counting each one over
    # all pixels separately would take hours
    unknown = [(int(c), int(n)) for c, n in zip(present, counts) if int(c) not in lookup]
    if unknown:
        if np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]):
            notes.append("grey RGB mask: grey levels read as class ids")
            return rgb[..., 0].astype(np.int64), "index"
        unknown.sort(key=lambda item: -item[1])
        listed = ", ".join(f"rgb{_rgb(code)} ({count} px)" for code, count in unknown[:5])
        raise MaskError(
            f"{len(unknown)} colour(s) of the mask are not in the {labels.name} palette: {listed}. "
            "Use the label set's colours, or upload an index PNG (pixel value = class id)."
        )
    hit = [code for code in ambiguous if code in set(present.tolist())]
    if hit:
        names = "; ".join(" / ".join(ambiguous[code]) for code in hit)
        raise MaskError(f"the colour of {names} is the same in the {labels.name} palette; upload an index PNG instead")
    table = np.array([lookup[int(c)] for c in present], dtype=np.int64)
    return table[inverse].reshape(codes.shape), "colour"


def _rgb(code: int) -> tuple[int, int, int]:
    return (code >> 16) & 255, (code >> 8) & 255, code & 255


def _check_ids(ids: np.ndarray, labels: LabelSet) -> np.ndarray:
    """Ids must be classes of the label set or an ignore value (the set's ignore index, or 255)."""
    ignore = ignore_id(labels)
    ids = np.where(ids == VOC_BORDER, ignore, ids)
    bad = np.unique(ids[(ids < 0) | ((ids >= len(labels)) & (ids != ignore))])
    if bad.size:
        listed = ", ".join(str(int(v)) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise MaskError(
            f"the mask holds class id(s) {listed}, but {labels.name} has ids 0-{len(labels) - 1} "
            f"(and {ignore} for ignored pixels). Is it a mask of another label set?"
        )
    if (ids == ignore).all():
        raise MaskError("every pixel of the mask is marked ignore/void: there is nothing to score")
    return ids
