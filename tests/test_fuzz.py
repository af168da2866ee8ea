"""Property-based fuzzing of the two functions that read what anonymous users upload.

load_image: any bytes -> RGB pixels or an ImageError, quickly; never another exception, never a hang.
load_mask:  any bytes -> class ids or a MaskError; a valid mask in any encoding reads back exactly.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_cases import encode, halves
from PIL import Image

from seggallery.catalog import label_set
from seggallery.evidence.groundtruth import MaskError, ignore_id, load_mask
from seggallery.images import ImageError, load_image
from seggallery.pictures.files import mask_png
from seggallery.pictures.overlays import colorize

# Each example must finish well inside the deadline: that is the "never hangs" property.
FUZZ = settings(max_examples=150, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])

SEEDS = {
    "png": encode(halves((255, 0, 0), (0, 0, 255), (48, 32)), "PNG"),
    "jpeg": encode(halves((255, 0, 0), (0, 0, 255), (48, 32)), "JPEG"),
    "gif": encode(Image.new("RGB", (32, 32), (9, 9, 9)), "GIF", save_all=True,
                  append_images=[Image.new("RGB", (32, 32), (200, 0, 0))]),
    "webp": encode(halves((255, 0, 0), (0, 0, 255), (48, 32)), "WEBP"),
    "bmp": encode(Image.new("RGB", (16, 16), (1, 2, 3)), "BMP"),
    "tiff": encode(Image.new("RGB", (16, 16), (1, 2, 3)), "TIFF", compression="tiff_lzw"),
    "palette-png": encode(Image.new("P", (16, 16), 3), "PNG", transparency=3),
    "16bit-png": encode(Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200), "PNG"),
}


def _assert_rgb(loaded) -> None:
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3
    assert min(loaded.pixels.shape[:2]) >= 1


@st.composite
def mutated_files(draw):
    """A valid file of some format, then flipped bytes, a cut, or an inserted run: what damage looks like."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "overwrite"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_with_an_image_error(data):
    try:
        _assert_rgb(load_image(data))
    except ImageError as error:
        assert str(error)


@FUZZ
@given(st.sampled_from(list(SEEDS.values())) | mutated_files())
def test_damaged_files_decode_or_are_refused(data):
    try:
        _assert_rgb(load_image(data, max_side=64))
    except ImageError as error:
        assert str(error)


LABEL_SETS = [label_set(i) for i in ("voc21", "camvid11", "cityscapes19", "ade20k150")]


@st.composite
def id_maps(draw):
    labels = draw(st.sampled_from(LABEL_SETS))
    height, width = draw(st.integers(8, 40)), draw(st.integers(8, 40))
    usable = [i for i in range(len(labels)) if labels.colors.count(labels.colors[i]) == 1]  # colour-decodable ids
    choices = st.sampled_from(usable)
    ids = np.array(draw(st.lists(choices, min_size=height * width, max_size=height * width)), dtype=np.int32).reshape(height, width)
    if labels.ignore_index is not None and ids.min() == ids.max() == labels.ignore_index:
        ids[0, 0] = 0 if labels.ignore_index != 0 else 1  # an all-void mask is refused on purpose
    return labels, ids


@FUZZ
@given(id_maps(), st.sampled_from(["index", "palette", "colour"]))
def test_valid_masks_read_back_exactly_in_every_encoding(case, encoding):
    labels, ids = case
    if encoding == "index":
        data = encode(Image.fromarray(ids.astype(np.uint8)), "PNG")
    elif encoding == "palette":
        data = encode(mask_png(ids, labels), "PNG")
    else:
        data = encode(Image.fromarray(colorize(ids, labels)), "PNG")
    truth = load_mask(data, labels, (ids.shape[1], ids.shape[0]))
    assert np.array_equal(truth.mask, ids)


@FUZZ
@given(st.sampled_from(LABEL_SETS), st.integers(8, 24), st.integers(8, 24), st.data())
def test_any_index_mask_is_exact_or_names_the_bad_values(labels, height, width, data):
    ids = np.array(data.draw(st.lists(st.integers(0, 255), min_size=height * width, max_size=height * width)),
                   dtype=np.uint8).reshape(height, width)
    ignore = ignore_id(labels)
    valid = set(range(len(labels))) | {ignore, 255}  # 255 is VOC's border value: ignored in every label set
    present = set(np.unique(ids).tolist())
    try:
        truth = load_mask(encode(Image.fromarray(ids), "PNG"), labels, (width, height))
    except MaskError as error:
        all_ignored = present <= {ignore, 255}
        assert not present <= valid or all_ignored, str(error)
        if not present <= valid:
            assert str(min(present - valid)) in str(error)
        return
    assert present <= valid and np.array_equal(truth.mask, np.where(ids == 255, ignore, ids))


@FUZZ
@given(st.binary(max_size=2048) | mutated_files(), st.sampled_from(LABEL_SETS))
def test_any_bytes_as_a_mask_give_ids_or_a_mask_error(data, labels):
    try:
        truth = load_mask(data, labels, (48, 32))  # the size of most seeds
    except MaskError as error:
        assert str(error)
        return
    assert truth.mask.dtype == np.int32 and truth.mask.shape == (32, 48)


def test_seeds_are_valid_files():
    """The fuzzers mutate files that decode: otherwise they would only ever test the refusal path."""
    for name, data in SEEDS.items():
        _assert_rgb(load_image(data))
    with pytest.raises(ImageError):
        load_image(SEEDS["png"][:20])
