"""Ground-truth masks -> class ids of a label set, with a clear message for every mask that cannot be used.

Three encodings are read, as annotation tools and datasets write them:
- index: a greyscale image (8 or 16 bits) whose pixel values are class ids (CamVid, ADE20K, Cityscapes trainIds);
- palette: an indexed PNG whose indices are class ids and whose palette is the label set's colours (Pascal VOC
  SegmentationClass PNGs; 255 = unlabelled, drawn 224,224,192 by the VOC devkit), or a grey ramp;
- colour: an RGB image drawn in the label set's colours (e.g. a mask exported from SegGallery's overlay colours).
Pixels labelled with the label set's ignore_index are kept as that value: metrics skip them.

The file is bounded like a photo (seggallery.images: bytes, pixels, formats) and must be lossless: JPEG
compression changes colours and ids at every edge.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .catalog import LabelSet
from .images import ImageError, decode_file, read_upload

LOSSY_FORMATS = ("JPEG", "MPO")
VOC_IGNORE_COLOUR = (224, 224, 192)  # the VOC devkit's colour for index 255 (unlabelled / object boundaries)
_LISTED = 5  # how many offending values a message names


class MaskError(ValueError):
    """The mask cannot be used as ground truth; the message says why, in words meant for the user."""


@dataclass
class LabelMask:
    """A ground-truth mask: class ids of `labels`, H x W, with labels.ignore_index marking unlabelled pixels."""

    ids: np.ndarray  # H x W int32
    labels: LabelSet
    encoding: str  # "index", "palette" or "colour": how the file stored the classes
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.ids.shape[1], self.ids.shape[0]

    @property
    def labelled(self) -> np.ndarray:
        """True where the mask names a class (not the ignore index)."""
        if self.labels.ignore_index is None:
            return np.ones(self.ids.shape, dtype=bool)
        return self.ids != self.labels.ignore_index

    def resized(self, size: tuple[int, int]) -> LabelMask:
        """The mask at another (width, height), nearest neighbour, e.g. the downscaled size models ran at."""
        return LabelMask(resize_ids(self.ids, size), self.labels, self.encoding, list(self.notes))


def load_mask(source: str | os.PathLike | bytes, labels: LabelSet, image_size: tuple[int, int] | None = None) -> LabelMask:
    """Read a mask file (path or bytes) as class ids of `labels`; when `image_size` (width, height) of the
    photo (after EXIF orientation) is given, the mask must have that size."""
    try:
        decoded = decode_file(read_upload(source))
    except ImageError as error:
        raise MaskError(f"the mask cannot be read: {error}") from None
    if decoded.format in LOSSY_FORMATS:
        raise MaskError("the mask is a JPEG: lossy compression changes class colours and ids at every edge; "
                        "save the mask as PNG (or BMP/TIFF)")
    if image_size is not None:
        check_mask_size(decoded.original_size, image_size)
    ids, encoding, notes = decode_mask(decoded.image, labels)
    return LabelMask(ids, labels, encoding, decoded.notes + notes)


def check_mask_size(mask_size: tuple[int, int], image_size: tuple[int, int]) -> None:
    """The mask must cover the photo pixel for pixel."""
    if tuple(mask_size) == tuple(image_size):
        return
    (mw, mh), (iw, ih) = mask_size, image_size
    hint = ""
    if (mh, mw) == (iw, ih):
        hint = " It looks rotated by 90 degrees: the photo's EXIF orientation is applied, the mask's too."
    elif mw * ih == mh * iw:
        hint = " It has the photo's shape at another scale; resize it with nearest-neighbour sampling to the photo's size."
    raise MaskError(f"the mask is {mw}x{mh} pixels but the photo is {iw}x{ih}; a ground-truth mask must have the photo's size.{hint}")


def decode_mask(image: Image.Image, labels: LabelSet) -> tuple[np.ndarray, str, list[str]]:
    """A decoded mask image -> (H x W int32 class ids, encoding, notes). Raises MaskError."""
    mode = image.mode
    if mode == "P":
        ids, encoding, notes = _from_palette(image, labels)
    elif mode in ("L", "I", "I;16", "I;16L", "I;16B", "I;16N"):
        ids, encoding, notes = np.asarray(image).astype(np.int64), "index", []
    elif mode == "1":
        ids, encoding, notes = np.asarray(image).astype(np.int64), "index", ["a two-level mask: ids 0 and 1"]
    elif mode in ("RGB", "RGBA", "RGBX"):
        ids, encoding, notes = _from_rgb(image, labels)
    elif mode in ("LA", "PA"):
        raise MaskError(f"the mask has an alpha channel ({mode}); save it as a plain greyscale or indexed PNG")
    else:
        raise MaskError(f"a mask in colour mode {mode} cannot be read; save it as a greyscale, indexed or RGB PNG")
    check_class_ids(ids, labels)
    return ids.astype(np.int32), encoding, notes


def check_class_ids(ids: np.ndarray, labels: LabelSet) -> None:
    """Every value is a class id of `labels` or its ignore index, and some pixel is labelled."""
    values, counts = np.unique(ids, return_counts=True)
    known = (values >= 0) & (values < len(labels))
    if labels.ignore_index is not None:
        known |= values == labels.ignore_index
    if not known.all():
        bad, bad_counts = values[~known], counts[~known]
        listed = ", ".join(str(v) for v in bad[:_LISTED]) + (" ..." if len(bad) > _LISTED else "")
        ignore = f", {labels.ignore_index} = unlabelled" if labels.ignore_index is not None else ""
        raise MaskError(f"the mask has values that are not class ids of {labels.name}: {listed} "
                        f"({int(bad_counts.sum())} pixels); valid ids are 0-{len(labels) - 1}{ignore}")
    if labels.ignore_index is not None and set(values.tolist()) <= {labels.ignore_index}:
        raise MaskError(f"every pixel of the mask is unlabelled (value {labels.ignore_index}); there is nothing to compare")


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an id map to (width, height), sampling each target pixel's centre."""
    height, width = ids.shape
    rows = np.minimum(((np.arange(size[1]) + 0.5) * height / size[1]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[0]) + 0.5) * width / size[0]).astype(np.int64), width - 1)
    return ids[rows[:, None], cols[None, :]]


def _from_palette(image: Image.Image, labels: LabelSet) -> tuple[np.ndarray, str, list[str]]:
    """Indices are class ids when the palette draws them in the label set's colours (or is a grey ramp);
    a palette image drawn in the label set's colours at other indices is read by colour."""
    indices = np.asarray(image).astype(np.int64)
    palette = np.asarray(image.getpalette("RGB") or [], dtype=np.int64).reshape(-1, 3)
    used = np.unique(indices)
    colours = np.array([palette[i] if i < len(palette) else (0, 0, 0) for i in used], dtype=np.int64)
    expected = _index_colours(labels, used)
    if all(np.array_equal(c, e) for c, e in zip(colours, expected) if e is not None):
        return indices, "palette", []
    if all(c[0] == c[1] == c[2] == i for c, i in zip(colours, used)):
        return indices, "index", ["an indexed mask with a grey palette: pixel values read as class ids"]
    lookup = _colour_lookup(labels)
    if all(_pack(c) in lookup for c in colours):
        return _from_rgb(image.convert("RGB"), labels)
    wrong = [(int(i), tuple(int(v) for v in c), e) for i, c, e in zip(used, colours, expected) if e is not None and not np.array_equal(c, e)]
    index, got, want = wrong[0] if wrong else (int(used[0]), tuple(int(v) for v in colours[0]), None)
    what = f"class {index} ({labels.names[index]}) is {want}" if want is not None and index < len(labels) else "it is no class here"
    raise MaskError(f"the mask's palette does not match {labels.name}: index {index} is drawn {got} but {what}. "
                    "If its pixel values are class ids, save it as a greyscale PNG; if it is drawn in the label "
                    "set's colours, save it as RGB; or pick the label set it was made for")


def _index_colours(labels: LabelSet, indices) -> list[tuple[int, int, int] | None]:
    """The colour each index should have in a palette mask of `labels` (None: any colour is fine)."""
    result = []
    for index in indices:
        if index < len(labels):
            result.append(labels.colors[index])
        elif index == labels.ignore_index:
            result.append(None)  # the ignore index is drawn differently by every tool
        else:
            result.append(None)  # not a class: check_class_ids names it
    return result


def _pack(colour) -> int:
    return (int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2])


def _colour_lookup(labels: LabelSet) -> dict[int, int]:
    """Packed RGB -> class id; colours two classes share map to -1; the VOC void colour and (when no class
    uses it) black map to the ignore index."""
    lookup: dict[int, int] = {}
    for class_id, colour in enumerate(labels.colors):
        key = _pack(colour)
        lookup[key] = -1 if key in lookup else class_id
    if labels.ignore_index is not None:
        for colour in (VOC_IGNORE_COLOUR, (0, 0, 0)):
            lookup.setdefault(_pack(colour), labels.ignore_index)
    return lookup


def _from_rgb(image: Image.Image, labels: LabelSet) -> tuple[np.ndarray, str, list[str]]:
    rgba = np.asarray(image.convert("RGBA") if image.mode == "RGBA" else image.convert("RGB"))
    if rgba.shape[2] == 4 and (rgba[..., 3] < 255).any():
        raise MaskError("the mask has transparent pixels; save it without an alpha channel")
    rgb = rgba[..., :3].astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    lookup = _colour_lookup(labels)
    mapped = np.array([lookup.get(int(c), -2) for c in colours], dtype=np.int64)
    if (mapped >= 0).all():
        return mapped[inverse].reshape(packed.shape), "colour", _colour_notes(colours, mapped, labels)
    shared = [c for c, m in zip(colours, mapped) if m == -1]
    if shared and (mapped != -2).all():
        colour = _unpack(shared[0])
        names = [n for n, c in zip(labels.names, labels.colors) if tuple(c) == colour]
        raise MaskError(f"the colour {colour} stands for several classes of {labels.name} ({', '.join(names)}), "
                        "so a colour mask cannot tell them apart; upload an index mask (pixel value = class id)")
    grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    if grey:  # a greyscale index mask saved as RGB
        return rgb[..., 0], "index", ["a grey RGB mask: pixel values read as class ids"]
    unknown = [(int(n), _unpack(c)) for c, m, n in zip(colours, mapped, counts) if m == -2]
    unknown.sort(reverse=True)
    listed = ", ".join(f"{colour} ({n} px)" for n, colour in unknown[:_LISTED])
    share = sum(n for n, _ in unknown) / packed.size
    raise MaskError(f"the mask has colours that are not in the palette of {labels.name}: {listed}"
                    f"{' ...' if len(unknown) > _LISTED else ''}; {share:.0%} of its pixels. A colour mask must use "
                    "exactly the label set's colours (no anti-aliasing, no JPEG), or upload an index mask")


def _unpack(packed) -> tuple[int, int, int]:
    packed = int(packed)
    return (packed >> 16) & 255, (packed >> 8) & 255, packed & 255


def _colour_notes(colours, mapped, labels: LabelSet) -> list[str]:
    if labels.ignore_index is None or labels.ignore_index < len(labels):
        return []
    unlabelled = [_unpack(c) for c, m in zip(colours, mapped) if m == labels.ignore_index]
    return [f"pixels drawn {c} read as unlabelled" for c in unlabelled]
