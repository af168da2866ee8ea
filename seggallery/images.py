"""Uploads -> RGB pixels: decode, orient by EXIF, flatten odd modes, bound the size, explain problems.

Every problem with an input becomes an ImageError whose message can be shown to a user as it is. The
work is bounded before any pixel is decoded: the file's size (MAX_UPLOAD_BYTES), its pixel count from
the header (MAX_PIXELS, which stops decompression bombs), its shape (MIN_SIDE, MAX_ASPECT), the formats
Pillow may try (READABLE_FORMATS: no plugin that hands the file to an external program), and only the
first frame of an animation is decoded. Large JPEGs are decoded at a reduced scale straight away.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = int(os.environ.get("SEGGALLERY_MAX_PIXELS", 50_000_000))  # decoding bound (decompression bombs)
MAX_SIDE = int(os.environ.get("SEGGALLERY_MAX_SIDE", 2048))  # longer side used for inference
MIN_SIDE = 8
MAX_ASPECT = 20.0
MAX_UPLOAD_BYTES = int(os.environ.get("SEGGALLERY_MAX_UPLOAD_MB", 25)) << 20
# Formats Pillow may decode. Others are refused unread: EPS would run Ghostscript, and exotic
# decoders are attack surface a photo upload does not need. (JPEG includes MPO, which many cameras write.)
READABLE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"


class ImageError(ValueError):
    """The input cannot be used; the message says why, in words meant for the user."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # H x W x 3 uint8 RGB, at the size models see
    original_size: tuple[int, int]  # (width, height) of the file, after EXIF orientation
    notes: list[str] = field(default_factory=list)  # what was done to it, for the user

    @property
    def scale(self) -> float:
        return self.pixels.shape[1] / self.original_size[0]


@dataclass
class DecodedFile:
    """The first frame of an image file, EXIF-oriented, in whatever mode the file has."""

    image: Image.Image  # may be smaller than original_size when a JPEG was decoded at reduced scale
    original_size: tuple[int, int]  # (width, height) after orientation
    format: str
    notes: list[str]


def load_image(source: str | os.PathLike | bytes, max_side: int = MAX_SIDE) -> LoadedImage:
    """Decode an image file (path or bytes) into RGB pixels that every model can take."""
    decoded = decode_file(read_upload(source), reduce_to=max_side)
    notes = decoded.notes
    width, height = decoded.original_size
    rgb = _convert(decoded.image, _to_rgb, notes)
    if max(width, height) > max_side:
        factor = max_side / max(width, height)
        new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS)
        notes.append(f"downscaled from {width}x{height} to {new_size[0]}x{new_size[1]} (scale {factor:.3f}) for inference")
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), (width, height), notes)


def read_upload(source: str | os.PathLike | bytes | bytearray) -> bytes:
    """The bytes of an upload (a path or the bytes themselves), refusing empty and oversized ones."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"no image file at {path}")
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise ImageError(f"the file is {path.stat().st_size >> 20} MB; the limit is {MAX_UPLOAD_BYTES >> 20} MB")
        data = path.read_bytes()
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"the file is {len(data) >> 20} MB; the limit is {MAX_UPLOAD_BYTES >> 20} MB")
    return data


def decode_file(data: bytes, reduce_to: int | None = None) -> DecodedFile:
    """Header checks, then decode the first frame and apply the EXIF orientation.

    `reduce_to`: a JPEG whose longer side is at least twice this is decoded at 1/2, 1/4 or 1/8 scale
    (still at least `reduce_to` on its longer side), which keeps decoding fast and small.
    """
    notes: list[str] = []
    try:
        image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
        check_dimensions(image.size)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            what = "multi-picture file (MPO)" if image.format == "MPO" else "animated image"
            notes.append(f"{what}: using its first frame of {frames}")
            image.seek(0)
        file_size = image.size
        if reduce_to and image.format in ("JPEG", "MPO") and max(file_size) >= 2 * reduce_to:
            factor = reduce_to / max(file_size)
            image.draft(image.mode, (math.ceil(file_size[0] * factor), math.ceil(file_size[1] * factor)))
        image.load()
        decoded_size, file_format = image.size, image.format or ""
        image = ImageOps.exif_transpose(image)  # a copy, which no longer knows its format
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageError(f"the image is too large to decode safely ({error})") from None
    except UnidentifiedImageError:
        raise ImageError(f"this file is not an image that can be read (expected {_FORMAT_NAMES})") from None
    except MemoryError:
        raise ImageError("the image needs more memory to decode than this server has") from None
    except Exception as error:  # noqa: BLE001 - a damaged file can trip any decoder; the user gets words, not a traceback
        raise ImageError(f"the image file is damaged or truncated and cannot be decoded ({type(error).__name__}: {error})"[:400]) from None
    rotated = image.size != decoded_size  # EXIF orientation turned it by 90 degrees
    original_size = (file_size[1], file_size[0]) if rotated else file_size
    return DecodedFile(image, original_size, file_format, notes)


def check_dimensions(size: tuple[int, int]) -> None:
    """Refuse sizes no model can use, or that would take too much memory to decode, before decoding."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"the image is {width}x{height} = {width * height / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width}x{height} pixels; segmentation needs at least {MIN_SIDE} on each side")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError(f"the image is {width}x{height}: an aspect ratio beyond {MAX_ASPECT:.0f}:1 is not supported")


def _convert(image: Image.Image, conversion, notes: list[str]) -> Image.Image:
    """Run a mode conversion, turning a decoder's late complaint into an ImageError."""
    try:
        return conversion(image, notes)
    except MemoryError:
        raise ImageError("the image needs more memory to convert than this server has") from None
    except Exception as error:  # noqa: BLE001 - pixels are decoded lazily by some plugins; see decode_file
        raise ImageError(f"the image's colour format ({image.mode}) cannot be converted to RGB ({type(error).__name__}: {error})"[:400]) from None


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """Any PIL mode -> RGB. Transparency is composited onto white; high bit depths are scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _to_8_bit_gray(image, notes)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("transparent areas shown on white")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    return image.convert("RGB")


def _to_8_bit_gray(image: Image.Image, notes: list[str]) -> Image.Image:
    """16-bit and 32-bit integer images by their full range; floating-point ones by their own min..max."""
    array = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if image.mode == "F":
        low, high = float(array.min()), float(array.max())
        array = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        notes.append("floating-point image scaled from its own range to 8 bits")
    else:
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = array / top * 255.0
        notes.append(f"{image.mode} image scaled to 8 bits per channel")
    return Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8))
