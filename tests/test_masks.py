"""Ground-truth masks: index, palette and colour PNGs become class ids; every unusable mask gets a clear message."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import require_shared
from image_cases import encode
from seggallery.catalog import label_set
from seggallery.masks import MaskError, check_mask_size, load_mask, resize_ids
from seggallery.render import colorize, mask_png

VOC, CAMVID, ADE, CITYSCAPES = (label_set(i) for i in ("voc21", "camvid11", "ade20k150", "cityscapes19"))


def _ids(shape=(24, 32), top=21, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, top, shape).astype(np.int32)


def _voc_palette_png(ids: np.ndarray) -> bytes:
    """As the VOC devkit writes SegmentationClass PNGs: indices = ids, VOC colour map, 255 drawn 224,224,192."""
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    palette = VOC.palette + [0] * (768 - len(VOC.palette))
    palette[255 * 3 : 256 * 3] = [224, 224, 192]
    image.putpalette(palette)
    return encode(image, "PNG")


def test_the_real_voc_mask_reads_as_voc_ids():
    folder = require_shared("data/voc-bird")
    path = folder / "bird_segmentation_mask.bmp"
    mask = load_mask(path, VOC, image_size=Image.open(folder / "bird_segmentation.bmp").size)
    assert mask.encoding == "index" and mask.size == (513, 513)
    assert np.array_equal(mask.ids, np.asarray(Image.open(path)))
    assert (mask.ids == 3).sum() == 51_377, "bird pixels, as SOURCE.md counts them"


def test_a_real_camvid_mask_keeps_void_as_the_ignore_index():
    folder = require_shared("data/camvid")
    path = sorted((folder / "testannot").glob("*.png"))[0]
    mask = load_mask(path, CAMVID, image_size=(480, 360))
    assert mask.encoding == "index" and mask.ids.max() <= 11
    assert np.array_equal(mask.labelled, mask.ids != 11)


def test_voc_palette_png_with_void_border():
    ids = _ids()
    ids[0, :] = 255
    mask = load_mask(_voc_palette_png(ids), VOC, image_size=(32, 24))
    assert mask.encoding == "palette" and np.array_equal(mask.ids, ids)
    assert not mask.labelled[0].any() and mask.labelled[1:].all()


def test_our_own_mask_png_reads_back(tmp_path):
    ids = _ids(top=150)
    mask_png(ids, ADE).save(tmp_path / "mask.png")
    mask = load_mask(tmp_path / "mask.png", ADE)
    assert mask.encoding == "palette" and np.array_equal(mask.ids, ids)


@pytest.mark.parametrize("labels", [VOC, CAMVID, CITYSCAPES], ids=lambda l: l.id)
def test_colour_png_in_the_label_sets_palette(labels):
    ids = _ids(top=len(labels))
    mask = load_mask(encode(Image.fromarray(colorize(ids, labels)), "PNG"), labels)
    assert mask.encoding == "colour" and np.array_equal(mask.ids, ids)


def test_colour_png_void_colours_become_the_ignore_index():
    ids = _ids(top=19)
    rgb = colorize(ids, CITYSCAPES)
    rgb[:2] = 0  # black: no Cityscapes class is black
    mask = load_mask(encode(Image.fromarray(rgb), "PNG"), CITYSCAPES)
    assert (mask.ids[:2] == 255).all() and np.array_equal(mask.ids[2:], ids[2:])
    assert any("(0, 0, 0) read as unlabelled" in note for note in mask.notes)


def test_sixteen_bit_and_grey_rgb_index_masks():
    ids = _ids(top=150)
    sixteen = load_mask(encode(Image.fromarray(ids.astype(np.uint16)), "PNG"), ADE)
    assert sixteen.encoding == "index" and np.array_equal(sixteen.ids, ids)
    grey = np.repeat(ids.astype(np.uint8)[..., None], 3, axis=2)
    as_rgb = load_mask(encode(Image.fromarray(grey), "PNG"), ADE)
    assert as_rgb.encoding == "index" and np.array_equal(as_rgb.ids, ids) and as_rgb.notes


@pytest.mark.parametrize(
    "mask_size, message",
    [((24, 32), "rotated"), ((16, 12), "another scale"), ((30, 24), "must have the photo's size")],
)
def test_wrong_size(mask_size, message):
    with pytest.raises(MaskError, match=message):
        load_mask(encode(Image.new("L", mask_size), "PNG"), VOC, image_size=(32, 24))
    with pytest.raises(MaskError, match=message):
        check_mask_size(mask_size, (32, 24))


def test_unknown_class_ids_are_named():
    ids = _ids()
    ids[0, :3] = [21, 40, 254]
    with pytest.raises(MaskError, match=r"not class ids of Pascal VOC \(21 classes\): 21, 40, 254 \(3 pixels\); valid ids are 0-20, 255 = unlabelled"):
        load_mask(encode(Image.fromarray(ids.astype(np.uint8)), "PNG"), VOC)


def test_a_mask_for_a_larger_label_set_is_refused():
    with pytest.raises(MaskError, match="not class ids of CamVid"):
        load_mask(encode(Image.fromarray(_ids(top=150).astype(np.uint8)), "PNG"), CAMVID)


def test_wrong_palette_is_explained():
    ids = _ids(top=4)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (768 - 12))
    with pytest.raises(MaskError, match=r"palette does not match Pascal VOC.*index 1 is drawn \(10, 20, 30\) but class 1 \(aeroplane\) is \(128, 0, 0\)"):
        load_mask(encode(image, "PNG"), VOC)


def test_palette_image_drawn_in_the_label_sets_colours_is_read_by_colour():
    ids = _ids(top=4)
    image = Image.fromarray((3 - ids).astype(np.uint8), mode="P")  # indices in reverse order ...
    image.putpalette([c for i in (3, 2, 1, 0) for c in VOC.colors[i]] + [0] * (768 - 12))  # ... with matching colours
    mask = load_mask(encode(image, "PNG"), VOC)
    assert mask.encoding == "colour" and np.array_equal(mask.ids, ids)


def test_colours_outside_the_palette_are_listed():
    rgb = colorize(_ids(), VOC)
    rgb[0, 0] = (1, 2, 3)  # an anti-aliased edge pixel
    with pytest.raises(MaskError, match=r"not in the palette of Pascal VOC.*\(1, 2, 3\) \(1 px\)"):
        load_mask(encode(Image.fromarray(rgb), "PNG"), VOC)


def test_a_colour_two_classes_share_is_refused():
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:] = ADE.colors[ADE.names.index("road")]
    with pytest.raises(MaskError, match="road, skyscraper"):
        load_mask(encode(Image.fromarray(rgb), "PNG"), ADE)


@pytest.mark.parametrize(
    "data, message",
    [
        (encode(Image.fromarray(colorize(_ids(), VOC)), "JPEG", quality=100), "JPEG"),
        (encode(Image.new("L", (32, 24), 255), "PNG"), "every pixel of the mask is unlabelled"),
        (encode(Image.new("RGBA", (32, 24), (0, 0, 0, 0)), "PNG"), "transparent"),
        (encode(Image.new("LA", (32, 24)), "PNG"), "alpha channel"),
        (encode(Image.new("CMYK", (32, 24)), "TIFF"), "colour mode CMYK"),
        (b"", "empty"),
        (b"not a png", "cannot be read"),
        (encode(Image.new("L", (2, 2)), "PNG"), "at least"),
    ],
    ids=["jpeg", "all-void", "transparent", "grey-alpha", "cmyk", "empty", "not-an-image", "tiny"],
)
def test_unusable_masks_get_a_clear_message(data, message):
    with pytest.raises(MaskError, match=message):
        load_mask(data, VOC)


def test_resize_to_the_inference_size_is_nearest_neighbour():
    ids = np.array([[1, 2], [3, 4]], dtype=np.int32)
    assert resize_ids(ids, (4, 4)).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    mask = load_mask(encode(Image.fromarray(_ids(shape=(40, 60)).astype(np.uint8)), "PNG"), VOC)
    half = mask.resized((30, 20))
    assert half.size == (30, 20) and np.array_equal(half.ids, mask.ids[1::2, 1::2])
