"""Ground-truth masks as users have them: index PNGs, VOC palette PNGs, colour PNGs; and the mistakes."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from conftest import require_shared
from image_cases import cases
from PIL import Image

from seggallery.catalog import label_set
from seggallery.evidence.groundtruth import MaskError, load_mask
from seggallery.images import ImageError
from seggallery.pictures.files import mask_png
from seggallery.pictures.overlays import colorize

VOC = label_set("voc21")
CAMVID = label_set("camvid11")


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bird_ids() -> np.ndarray:
    return np.asarray(Image.open(require_shared("data/voc-bird/bird_segmentation_mask.bmp")), dtype=np.int32)


def test_index_bmp_from_the_shared_data(bird_ids):
    truth = load_mask(require_shared("data/voc-bird/bird_segmentation_mask.bmp"), VOC, (513, 513))
    assert truth.kind == "index"
    np.testing.assert_array_equal(truth.mask, bird_ids)
    assert (truth.mask == 3).sum() == 51_377


def test_voc_palette_png_with_border(bird_ids):
    ids = bird_ids.copy()
    ids[:, :5] = 255  # VOC marks borders with 255, shown as (224, 224, 192)
    palette_image = mask_png(ids.clip(0, 20), VOC)  # the app's own indexed PNG, VOC palette
    raw = np.asarray(palette_image).copy()
    raw[:, :5] = 255
    voc_style = Image.fromarray(raw, mode="P")
    palette = VOC.palette + [0] * (768 - len(VOC.palette))
    palette[255 * 3 : 255 * 3 + 3] = [224, 224, 192]
    voc_style.putpalette(palette)
    truth = load_mask(png_bytes(voc_style), VOC, (513, 513))
    assert truth.kind == "palette"
    np.testing.assert_array_equal(truth.mask, ids)
    assert truth.ignored_pixels == 513 * 5


def test_colour_png_in_the_label_set_palette(bird_ids):
    truth = load_mask(png_bytes(Image.fromarray(colorize(bird_ids, VOC))), VOC, (513, 513))
    assert truth.kind == "colour"
    np.testing.assert_array_equal(truth.mask, bird_ids)


def test_camvid_colour_mask_with_void():
    annotation = require_shared("data/camvid/testannot/0001TP_008550.png")
    ids = np.asarray(Image.open(annotation), dtype=np.int32)
    truth = load_mask(png_bytes(Image.fromarray(colorize(ids, CAMVID))), CAMVID, (480, 360))
    np.testing.assert_array_equal(truth.mask, ids)
    assert truth.ignored_pixels == int((ids == 11).sum()) > 0


def test_palette_in_another_order_is_read_by_colour(bird_ids):
    order = np.random.default_rng(0).permutation(256)
    shuffled = Image.fromarray(np.argsort(order)[bird_ids].astype(np.uint8), mode="P")  # index k shows colour of class order[k]
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(VOC)] = VOC.colors
    shuffled.putpalette(palette[order].ravel().tolist())
    truth = load_mask(png_bytes(shuffled), VOC, (513, 513))
    np.testing.assert_array_equal(truth.mask, bird_ids)
    assert any("palette order" in note for note in truth.notes)


def test_downscaled_photo_gets_a_resized_mask(bird_ids):
    truth = load_mask(png_bytes(Image.fromarray(bird_ids.astype(np.uint8))), VOC, (513, 513), inference_shape=(257, 257))
    assert truth.mask.shape == (257, 257)
    assert set(np.unique(truth.mask)) <= set(np.unique(bird_ids))


@pytest.mark.parametrize(
    "make, labels, size, message",
    [
        (lambda ids: png_bytes(Image.fromarray(ids[:500].astype(np.uint8))), VOC, (513, 513), "the mask is 513x500 pixels but the photo is 513x513"),
        (lambda ids: png_bytes(Image.fromarray((ids + 37).astype(np.uint8))), VOC, (513, 513), "class id(s) 37, 38, 39, 40"),
        (lambda ids: png_bytes(Image.fromarray(colorize(ids, CAMVID))), VOC, (513, 513), "not in the Pascal VOC (21 classes) palette"),
        (lambda ids: png_bytes(Image.fromarray(ids.astype(np.uint8)).convert("RGB"), "JPEG"), VOC, (513, 513), "JPEG"),
        (lambda ids: b"not an image at all", VOC, (513, 513), "not an image that can be read"),
        (lambda ids: png_bytes(Image.fromarray(np.full((513, 513), 255, np.uint8))), VOC, (513, 513), "nothing to score"),
    ],
    ids=["wrong size", "unknown ids", "wrong palette", "jpeg", "garbage", "all ignored"],
)
def test_bad_masks_are_explained(bird_ids, make, labels, size, message):
    with pytest.raises(MaskError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_mask(make(bird_ids), labels, size)
    assert isinstance(caught.value, ImageError)  # the UI shows every ImageError as a message


def test_ambiguous_colour_is_refused():
    ade = label_set("ade20k150")
    road = [n.strip() for n in ade.names].index("road")
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:] = ade.colors[road]  # (140, 140, 140) is both road and skyscraper in the ADE20K palette
    with pytest.raises(MaskError, match="road / skyscraper"):
        load_mask(png_bytes(Image.fromarray(rgb)), ade, (16, 16))


# --- bounded like a photo: what a public Space's users can upload as a "mask" ---


@pytest.mark.parametrize(
    "data, size, message",
    [
        (png_bytes(Image.new("L", (24, 32))), (32, 24), "turned by 90 degrees"),
        (png_bytes(Image.new("L", (16, 12))), (32, 24), "at another scale"),
        (next(c.data for c in cases() if c.name == "decompression bomb"), (8000, 7000), "megapixels"),
        (next(c.data for c in cases() if c.name == "truncated PNG"), (64, 64), "damaged or truncated"),
        (next(c.data for c in cases() if c.name == "EPS (would run Ghostscript)"), (64, 64), "not an image that can be read"),
        (png_bytes(Image.new("LA", (32, 24))), (32, 24), "mode LA"),
    ],
    ids=["rotated", "scaled", "decompression bomb", "truncated", "eps", "grey+alpha"],
)
def test_unusable_uploads_are_explained(data, size, message):
    with pytest.raises(MaskError, match=message):
        load_mask(data, VOC, size)


def test_a_photo_uploaded_as_a_mask_is_refused_quickly():
    """~200k distinct colours: each must not be counted over all pixels separately (that took hours)."""
    noise = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    start = time.perf_counter()
    with pytest.raises(MaskError, match="not in the Pascal VOC"):
        load_mask(png_bytes(Image.fromarray(noise)), VOC, (800, 600))
    assert time.perf_counter() - start < 5.0


def test_sixteen_bit_and_grey_rgb_index_masks():
    ade = label_set("ade20k150")
    ids = np.random.default_rng(1).integers(0, 150, (24, 32)).astype(np.int32)
    sixteen = load_mask(png_bytes(Image.fromarray(ids.astype(np.uint16))), ade, (32, 24))
    assert sixteen.kind == "index" and np.array_equal(sixteen.mask, ids)
    grey = np.repeat(ids.astype(np.uint8)[..., None], 3, axis=2)
    as_rgb = load_mask(png_bytes(Image.fromarray(grey)), ade, (32, 24))
    assert as_rgb.kind == "index" and np.array_equal(as_rgb.mask, ids)


def test_exif_orientation_applies_to_masks_as_to_photos():
    ids = np.zeros((24, 32), np.uint8)
    ids[:, :16] = 3  # left half: bird
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the left half goes to the top
    buffer = io.BytesIO()
    Image.fromarray(ids).save(buffer, format="PNG", exif=exif)
    truth = load_mask(buffer.getvalue(), VOC, (24, 32))
    assert (truth.mask[:16] == 3).all() and (truth.mask[16:] == 0).all()
