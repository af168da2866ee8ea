"""Decoding uploads: common formats become RGB pixels; problems become clear messages."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from image_cases import RED, cases, encode, halves, near
from PIL import Image

import seggallery.images as images
from seggallery.images import ImageError, load_image


def test_jpeg_file_decodes_to_rgb(tmp_path):
    path = tmp_path / "a.jpg"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(path, quality=95)
    loaded = load_image(path)
    assert loaded.pixels.shape == (48, 64, 3) and loaded.pixels.dtype == np.uint8
    assert loaded.original_size == (64, 48) and loaded.scale == 1.0 and loaded.notes == []


def test_grayscale_and_rgba_become_rgb():
    gray = load_image(encode(Image.new("L", (20, 20), 128), "PNG"))
    assert gray.pixels.shape == (20, 20, 3) and (gray.pixels == 128).all()
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    loaded = load_image(encode(rgba, "PNG"))
    assert (loaded.pixels == 255).all(), "fully transparent pixels are shown on white"
    assert any("transparent" in note for note in loaded.notes)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    loaded = load_image(encode(image, "JPEG", exif=exif))
    assert loaded.pixels.shape[:2] == (40, 20)


def test_large_images_are_downscaled_with_a_note():
    loaded = load_image(encode(Image.new("RGB", (3000, 1500)), "PNG"), max_side=1000)
    assert loaded.pixels.shape[:2] == (500, 1000)
    assert loaded.original_size == (3000, 1500)
    assert loaded.scale == pytest.approx(1 / 3)
    assert "downscaled from 3000x1500" in loaded.notes[0]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (encode(Image.new("RGB", (64, 64)), "PNG")[:60], "damaged or truncated"),
        (encode(Image.new("RGB", (4, 4)), "PNG"), "at least"),
    ],
    ids=["empty", "text", "truncated", "tiny"],
)
def test_bad_input_gets_a_clear_message(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data)


# --- every kind of awkward upload (tests/image_cases.py): a correct result or a clear message ---


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
def test_awkward_uploads(case):
    if case.error:
        with pytest.raises(ImageError, match=case.error):
            load_image(case.data)
        return
    loaded = load_image(case.data)
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3
    if case.size:
        assert (loaded.pixels.shape[1], loaded.pixels.shape[0]) == case.size == loaded.original_size
    if case.note:
        assert any(case.note in note for note in loaded.notes), loaded.notes
    if case.check:
        case.check(loaded.pixels)


def test_upload_size_limit_for_bytes_and_files(monkeypatch, tmp_path):
    data = encode(Image.new("RGB", (64, 64)), "PNG")
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", len(data) - 1)
    with pytest.raises(ImageError, match="the limit is"):
        load_image(data)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="the limit is"):
        load_image(path)
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", len(data))
    assert load_image(path).pixels.shape == (64, 64, 3)


def test_pixel_bound_is_checked_before_decoding(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 64 * 64 - 1)
    with pytest.raises(ImageError, match="megapixels"):
        load_image(encode(Image.new("RGB", (64, 64)), "PNG"))


def test_a_missing_path_is_a_clear_message(tmp_path):
    with pytest.raises(ImageError, match="no image file"):
        load_image(tmp_path / "nothing.png")


def test_large_jpeg_is_decoded_at_reduced_scale_with_the_scale_noted(monkeypatch):
    photo = halves(RED, (0, 0, 255), size=(4800, 2400))
    data = encode(photo, "JPEG", quality=90)
    loaded = load_image(data, max_side=1000)
    assert loaded.pixels.shape == (500, 1000, 3) and loaded.original_size == (4800, 2400)
    assert loaded.scale == pytest.approx(1000 / 4800)
    assert any("scale 0.208" in note for note in loaded.notes)
    assert near(loaded.pixels[250, 10], RED) and near(loaded.pixels[250, -10], (0, 0, 255))
    # the same pixels, within JPEG noise, as decoding at full size and resizing
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((1000, 500), Image.Resampling.LANCZOS), dtype=int)
    assert np.abs(full - loaded.pixels).mean() < 2.0


def test_large_jpeg_with_exif_rotation_keeps_the_oriented_size():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (4000, 2000), RED), "JPEG", exif=exif)
    loaded = load_image(data, max_side=1000)
    assert loaded.original_size == (2000, 4000) and loaded.pixels.shape == (1000, 500, 3)


def test_odd_modes_become_rgb_or_a_clear_message():
    """Every mode Pillow can write to TIFF: RGB pixels out, or ImageError; nothing else escapes."""
    rng = np.random.default_rng(0)
    float_pixels = rng.normal(size=(16, 16)).astype(np.float32)
    float_pixels[0, 0] = np.nan
    for image in [Image.fromarray(float_pixels), Image.fromarray(rng.integers(0, 70000, (16, 16), dtype=np.int32)),
                  Image.new("LAB", (16, 16), (50, 10, 10)), Image.new("YCbCr", (16, 16), (100, 128, 128)),
                  Image.new("CMYK", (16, 16), (0, 0, 0, 0)), Image.new("I;16", (16, 16), 1000)]:
        data = encode(image, "TIFF")
        try:
            loaded = load_image(data)
        except ImageError:
            continue
        assert loaded.pixels.shape == (16, 16, 3), image.mode


def test_many_frame_gif_is_quick():
    """Only the first frame is decoded: a 2,000-frame GIF takes about as long as a still image."""
    frames = [Image.new("RGB", (64, 64), (i % 256, i // 256 * 20, 0)) for i in range(2000)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)
    start = time.perf_counter()
    loaded = load_image(data)
    assert time.perf_counter() - start < 2.0
    assert "first frame of 2000" in loaded.notes[0]


def test_truncated_files_stay_refused_after_the_app_imports_its_libraries():
    """Some libraries set ImageFile.LOAD_TRUNCATED_IMAGES globally; a half file must still be refused."""
    import gradio  # noqa: F401
    import transformers  # noqa: F401
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    truncated = next(case for case in cases() if case.name == "truncated JPEG")
    with pytest.raises(ImageError, match="truncated"):
        load_image(truncated.data)


def test_decode_file_reports_the_file_format():
    from seggallery.images import decode_file

    assert decode_file(encode(Image.new("RGB", (16, 16)), "JPEG")).format == "JPEG"
    assert decode_file(encode(Image.new("RGB", (16, 16)), "PNG")).format == "PNG"
