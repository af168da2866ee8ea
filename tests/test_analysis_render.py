"""Class areas, the merged area table, overlays, legends and mask files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seggallery.catalog import get_spec, label_set
from seggallery.evidence.areas import OTHER, area_shares, area_table, class_areas
from seggallery.pictures.files import mask_png
from seggallery.pictures.legends import legend_html, with_legend
from seggallery.pictures.overlays import colorize, overlay
from seggallery.runtime.results import Prediction

VOC = label_set("voc21")


def _prediction(model_id: str, mask: np.ndarray) -> Prediction:
    return Prediction(get_spec(model_id), mask, {"total": 1.0}, "cpu", "fp32", cold=False)


def test_class_areas_count_every_pixel_once():
    mask = np.zeros((10, 20), dtype=np.int32)
    mask[:5, :10] = 15  # person: 50 px
    mask[9, :] = 7  # car: 20 px
    areas = class_areas(mask, VOC)
    assert [a.name for a in areas] == ["background", "person", "car"]
    assert [a.pixels for a in areas] == [130, 50, 20]
    assert sum(a.percent for a in areas) == pytest.approx(100.0)
    assert areas[1].color == VOC.colors[15]


def test_area_table_merges_rows_of_models_that_share_a_label_set():
    a = np.full((4, 4), 15, dtype=np.int32)
    b = np.zeros((4, 4), dtype=np.int32)
    b[:2] = 15
    ade = np.full((4, 4), 12, dtype=np.int32)  # ADE20K 'person'
    headers, rows = area_table([_prediction("fcn_resnet50", a), _prediction("deeplabv3_resnet50", b),
                                _prediction("segformer_b0_ade", ade)])
    assert headers[:2] == ["class", "label set"] and len(headers) == 2 + 2 * 3
    by_key = {(r[0], r[1]): r for r in rows}
    assert by_key[("person", "voc21")][2:6] == [100.0, 16, 50.0, 8]  # one row for both VOC models
    assert by_key[("person", "ade20k150")][6:8] == [100.0, 16]  # same name, other label set: own row
    for column in (2, 4, 6):
        assert sum(r[column] for r in rows) == pytest.approx(100.0)


def test_area_shares_give_the_top_classes_in_percent_and_the_rest_as_other():
    """The Compare tab's table: % only, classes by their largest share, the top N, then "other"."""
    voc = np.repeat(np.arange(21, dtype=np.int32), 5)[None].repeat(4, 0)  # 21 classes, 5 columns each
    voc[:, :50] = 15  # person: 55 of 105 columns; 11 classes are left (10 ... 20)
    ade = np.full((4, 105), 12, dtype=np.int32)  # ADE20K 'person', the whole image
    shares = area_shares([_prediction("fcn_resnet50", voc), _prediction("segformer_b0_ade", ade)], top=5)
    assert shares.headers() == ["class", "label set", "FCN ResNet-50 %", "SegFormer-B0 ADE20K %"]
    rows = shares.table()
    assert [r[0] for r in rows[:2]] == ["person", "person"] and len(rows) == 6
    assert rows[0][1:] == ["ade20k150", None, 100.0]  # ADE20K's person: not a class of VOC's label set
    assert rows[1][1:] == ["voc21", pytest.approx(100 * 55 / 105, abs=0.01), None]  # same name, other label set: own row
    assert rows[-1][0] == f"{OTHER} (7 classes)" and rows[-1][1] == ""
    assert rows[-1][2:] == [pytest.approx(100 * 35 / 105, abs=0.01), 0.0]
    for column in (2, 3):
        assert sum(r[column] or 0.0 for r in rows) == pytest.approx(100.0, abs=0.02)
    largest = [max(v for v in r[2:] if v is not None) for r in rows[:-1]]
    assert largest == sorted(largest, reverse=True)
    assert area_shares([_prediction("fcn_resnet50", voc)], top=50).other is None  # nothing left over: no "other" row


def test_stacked_area_chart_shows_the_tables_numbers():
    from seggallery.pictures.charts import stacked_area_chart

    a = np.zeros((4, 4), dtype=np.int32)
    a[:1] = 15
    b = np.full((4, 4), 7, dtype=np.int32)
    shares = area_shares([_prediction("fcn_resnet50", a), _prediction("deeplabv3_resnet50", b)])
    figure = stacked_area_chart(shares)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["FCN ResNet-50", "DeepLabV3 ResNet-50"]
    per_model = [0.0, 0.0]
    for bar in axes.patches:
        per_model[round(bar.get_y() + bar.get_height() / 2)] += bar.get_width()
    assert per_model == [pytest.approx(100.0), pytest.approx(100.0)], "each model's bar is its whole image"
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == [row.name for row in shares.rows]
    assert stacked_area_chart(area_shares([])) is None


def test_overlay_blends_photo_and_colours():
    image = np.full((2, 2, 3), 200, dtype=np.uint8)
    mask = np.array([[0, 15], [15, 0]], dtype=np.int32)
    assert np.array_equal(overlay(image, mask, VOC, 0.0), image)
    assert np.array_equal(overlay(image, mask, VOC, 1.0), colorize(mask, VOC))
    half = overlay(image, mask, VOC, 0.5)
    expected = (image.astype(float) + np.asarray(VOC.colors[15])) / 2
    assert np.allclose(half[0, 1], expected[0, 1], atol=1)


def test_mask_png_keeps_class_ids_and_palette(tmp_path):
    mask = np.random.default_rng(0).integers(0, 21, size=(30, 40)).astype(np.int32)
    path = tmp_path / "mask.png"
    mask_png(mask, VOC).save(path)
    reread = Image.open(path)
    assert reread.mode == "P"
    assert np.array_equal(np.asarray(reread), mask)
    assert reread.getpalette()[15 * 3 : 15 * 3 + 3] == list(VOC.colors[15])


def test_legends_list_present_classes_with_colours():
    mask = np.zeros((10, 10), dtype=np.int32)
    mask[:3] = 15
    areas = class_areas(mask, VOC)
    html = legend_html(areas)
    assert "person" in html and "background" in html and "rgb(192,128,128)" in html
    drawn = with_legend(overlay(np.zeros((100, 200, 3), np.uint8), mask.repeat(10, 0).repeat(20, 1), VOC), areas, "title")
    assert drawn.size[0] == 200 and drawn.size[1] > 100


def test_point_and_ask_says_when_the_label_map_and_the_nearest_score_cell_disagree():
    """A 4x4 label map from a 2x2 score grid: the map's class at a pixel and its nearest cell's top class agree
    inside a region and may not at a boundary, which the answer then says (instead of looking contradictory)."""
    from seggallery.evidence.inspect import answers_at
    from seggallery.ui.inspect import answers_markdown

    mask = np.zeros((4, 4), np.int32)
    mask[:, 1:] = 15  # person from column 1 on; the interpolated map moved the boundary left of the cells' one
    prediction = _prediction("fcn_resnet50", mask)
    prediction.top_class_ids = np.array([[[0, 15], [0, 15]], [[15, 0], [15, 0]], [[7, 7], [7, 7]]], np.int32)
    prediction.top_class_probs = np.array([[[0.6, 0.9], [0.6, 0.9]], [[0.3, 0.1], [0.3, 0.1]], [[0.1, 0.0], [0.1, 0.0]]],
                                          np.float32)
    inside = answers_at([prediction], mask.shape, x=3, y=0)["models"][0]
    assert inside["class"] == "person" and inside["top"][0] == {"class": "person", "probability": 0.9}
    assert not inside["between_cells"]
    boundary = answers_at([prediction], mask.shape, x=1, y=0)
    entry = boundary["models"][0]
    assert entry["class"] == "person" and entry["top"][0]["class"] == "background" and entry["between_cells"]
    assert "differs at this boundary" in answers_markdown(boundary)
