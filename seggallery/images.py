"""Uploads -> RGB pixels: decode, orient by EXIF, flatten odd modes, bound the size, explain problems.

Every problem with an input becomes an ImageError whose message can be shown to a user as it is.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = int(os.environ.get("SEGGALLERY_MAX_PIXELS", 50_000_000))  # decoding bound (decompression bombs)
MAX_SIDE = int(os.environ.get("SEGGALLERY_MAX_SIDE", 2048))  # longer side used for inference
MIN_SIDE = 8
MAX_ASPECT = 20.0
MAX_UPLOAD_BYTES = int(os.environ.get("SEGGALLERY_MAX_UPLOAD_MB", 25)) << 20


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


def load_image(source: str | os.PathLike | bytes, max_side: int = MAX_SIDE) -> LoadedImage:
    """Decode an image file (path or bytes) into RGB pixels that every model can take."""
    data = _read_bytes(source)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            _check_pixel_count(image.size)
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notes.append(f"animated image: using its first frame of {frames}")
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageError(f"the image is too large to decode safely ({error})") from None
        except UnidentifiedImageError:
            raise ImageError("this file is not an image that can be read (expected JPEG, PNG, WebP, GIF, BMP or TIFF)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageError(f"the image file is damaged or truncated and cannot be decoded ({error})") from None
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width}x{height} pixels; segmentation needs at least {MIN_SIDE} on each side")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError(f"the image is {width}x{height}: an aspect ratio beyond {MAX_ASPECT:.0f}:1 is not supported")
    rgb = _to_rgb(image, notes)
    if max(rgb.size) > max_side:
        factor = max_side / max(rgb.size)
        new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS)
        notes.append(f"downscaled from {width}x{height} to {new_size[0]}x{new_size[1]} (scale {factor:.3f}) for inference")
    return LoadedImage(np.asarray(rgb, dtype=np.uint8).copy(), (width, height), notes)


def _read_bytes(source: str | os.PathLike | bytes) -> bytes:
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


def _check_pixel_count(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(f"the image is {width}x{height} = {width * height / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}")


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """Any PIL mode -> RGB. Transparency is composited onto white; high bit depths are scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"{image.mode} image scaled to 8 bits per channel")
        image = Image.fromarray(array, mode="L")
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
