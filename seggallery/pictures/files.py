"""Picture files: indexed mask PNGs and fast lossless PNGs for the CLI and the ZIP, JPEGs for the browser."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..catalog import LabelSet


def mask_png(mask: np.ndarray, labels: LabelSet) -> Image.Image:
    """The raw label map as an indexed PNG: pixel values are class ids, the palette is the label set's."""
    if mask.max(initial=0) > 255:
        raise ValueError("an indexed PNG holds class ids up to 255")
    indexed = Image.fromarray(mask.astype(np.uint8), mode="P")
    palette = labels.palette[: 256 * 3]
    indexed.putpalette(palette + [0] * (768 - len(palette)))
    return indexed


# Photo-like PNGs (overlays) shrink by only 7% from zlib level 1 to PIL's default 6 but take 5x longer to
# write: 55 vs 280 ms for a 1024x768 overlay on the 2-core development machine.
PNG_COMPRESS_LEVEL = 1
# Pictures shown in the browser: JPEG at this quality without chroma subsampling keeps class edges crisp
# (mean error about 1 level of 255 on a 50% overlay) and takes about 4 ms for 1024x768.
DISPLAY_JPEG_QUALITY = 92


def save_png(picture: np.ndarray | Image.Image, path) -> None:
    """A lossless file for the CLI's outputs and the ZIP, written fast (see PNG_COMPRESS_LEVEL)."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def display_jpeg(picture: np.ndarray) -> bytes:
    """H x W x 3 uint8 as the JPEG bytes the app sends to the browser (see DISPLAY_JPEG_QUALITY)."""
    with io.BytesIO() as buffer:
        Image.fromarray(picture).save(buffer, format="JPEG", quality=DISPLAY_JPEG_QUALITY, subsampling=0)
        return buffer.getvalue()
