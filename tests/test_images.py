"""Decoding uploads: common formats become RGB pixels; problems become clear messages."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from seggallery.images import ImageError, load_image


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_jpeg_file_decodes_to_rgb(tmp_path):
    path = tmp_path / "a.jpg"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(path, quality=95)
    loaded = load_image(path)
    assert loaded.pixels.shape == (48, 64, 3) and loaded.pixels.dtype == np.uint8
    assert loaded.original_size == (64, 48) and loaded.scale == 1.0 and loaded.notes == []


def test_grayscale_and_rgba_become_rgb():
    gray = load_image(_encode(Image.new("L", (20, 20), 128), "PNG"))
    assert gray.pixels.shape == (20, 20, 3) and (gray.pixels == 128).all()
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    loaded = load_image(_encode(rgba, "PNG"))
    assert (loaded.pixels == 255).all(), "fully transparent pixels are shown on white"
    assert any("transparent" in note for note in loaded.notes)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    loaded = load_image(_encode(image, "JPEG", exif=exif))
    assert loaded.pixels.shape[:2] == (40, 20)


def test_large_images_are_downscaled_with_a_note():
    loaded = load_image(_encode(Image.new("RGB", (3000, 1500)), "PNG"), max_side=1000)
    assert loaded.pixels.shape[:2] == (500, 1000)
    assert loaded.original_size == (3000, 1500)
    assert loaded.scale == pytest.approx(1 / 3)
    assert "downscaled from 3000x1500" in loaded.notes[0]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (_encode(Image.new("RGB", (64, 64)), "PNG")[:60], "damaged or truncated"),
        (_encode(Image.new("RGB", (4, 4)), "PNG"), "at least"),
    ],
    ids=["empty", "text", "truncated", "tiny"],
)
def test_bad_input_gets_a_clear_message(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data)
