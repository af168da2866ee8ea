"""Agreement, uncertainty maps, ground-truth comparison, charts and the ZIP the Compare tab offers."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from conftest import require_shared
from PIL import Image
from real_weights import install_enet

from seggallery.backends.transformers import mask_classification_scores
from seggallery.catalog import get_spec, label_set
from seggallery.cli import main
from seggallery.evidence.agreement import agreement, compare_to_truth, distinct_labels
from seggallery.evidence.groundtruth import load_mask
from seggallery.evidence.metrics import Scores
from seggallery.evidence.uncertainty import class_probabilities, uncertainty_maps
from seggallery.images import load_image
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction
from seggallery.ui.compare import Comparison  # what the Compare tab keeps per session

FAKE_VOC_MODEL = "lraspp_mobilenet_v3_large"
IMAGE = "0001TP_008550.png"

pytestmark = pytest.mark.usefixtures("one_thread")


def fake_prediction(model_id: str, mask: np.ndarray) -> Prediction:
    return Prediction(get_spec(model_id), mask.astype(np.int32), {"forward": 1.0, "total": 1.0}, "cpu", "fp32", cold=False)


@pytest.fixture(scope="module")
def street(fake_weights):
    """A real CamVid photo and its mask, ENet (real weights) and a VOC model (random weights) run on it."""
    camvid = require_shared("data/camvid")
    install_enet()
    fake_weights(FAKE_VOC_MODEL)
    image = load_image(camvid / "test" / IMAGE)
    results = Engine().run_many(image.pixels, ["enet_camvid", FAKE_VOC_MODEL])
    assert all(isinstance(r, Prediction) for r in results), results
    mask_path = camvid / "testannot" / IMAGE
    truth = load_mask(mask_path, label_set("camvid11"), image.original_size, image.pixels.shape[:2])
    return image, results, truth, mask_path


def test_pairwise_agreement_by_hand():
    a = np.array([[0, 0, 3, 3]])
    b = np.array([[0, 3, 3, 3]])
    c = np.array([[15, 3, 3, 0]])
    agreed = agreement([fake_prediction("fcn_resnet50", m) for m in (a, b, c)])
    assert agreed.space.native
    assert agreed.pixel_agreement[0, 1] == 0.75 and agreed.pixel_agreement[0, 2] == 0.25
    # a vs b: background IoU 1/2, bird IoU 2/3 -> mean 7/12
    assert agreed.miou[0, 1] == pytest.approx(7 / 12) and agreed.miou[1, 0] == agreed.miou[0, 1]
    assert agreed.distinct.tolist() == [[2, 2, 1, 2]]
    assert np.all(np.diag(agreed.pixel_agreement) == 1)


def test_distinct_labels_counts_every_label():
    masks = [np.array([[1, 1, 1]]), np.array([[1, 2, 2]]), np.array([[1, 3, 2]])]
    assert distinct_labels(masks).tolist() == [[1, 3, 2]]


def test_agreement_across_label_sets_uses_shared_coarse_classes():
    voc, camvid = label_set("voc21"), label_set("camvid11")
    person_voc, car_voc = voc.names.index("person"), voc.names.index("car")
    pedestrian, car, road = camvid.names.index("Pedestrian"), camvid.names.index("Car"), camvid.names.index("Road")
    agreed = agreement([fake_prediction("fcn_resnet50", np.array([[person_voc, car_voc, 0]])),
                        fake_prediction("enet_camvid", np.array([[pedestrian, car, road]]))])
    assert not agreed.space.native
    assert agreed.pixel_agreement[0, 1] == 1.0  # VOC cannot name road: background and road are both `other`


def test_uncertainty_maps_from_logits_and_mask_classification():
    logits = torch.tensor([[[[2.0]], [[0.0]], [[0.0]]]])  # 1 x 3 x 1 x 1
    confidence, entropy = uncertainty_maps(logits)
    p = torch.softmax(torch.tensor([2.0, 0.0, 0.0]), 0)
    assert confidence[0, 0] == pytest.approx(p.max().item(), abs=1e-6)
    assert entropy[0, 0] == pytest.approx(float(-(p * p.log()).sum() / np.log(3)), abs=1e-6)
    uniform = uncertainty_maps(torch.zeros(1, 4, 2, 2))
    assert np.allclose(uniform[0], 0.25) and np.allclose(uniform[1], 1.0)

    class Queries:  # MaskFormer-style output: 2 queries, 2 classes + "no object"
        class_queries_logits = torch.tensor([[[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0]]])
        masks_queries_logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # query 0 left pixel, query 1 right

    probs = class_probabilities(mask_classification_scores(Queries()))
    assert probs.shape == (2, 1, 2) and torch.allclose(probs.sum(0), torch.ones(1, 2))
    assert probs.argmax(0).tolist() == [[0, 1]]
    # independently: left pixel = softmax(query 0's classes)[:2] * sigmoid(9) + query 1's * sigmoid(-9), normalised
    class_probs = torch.softmax(Queries.class_queries_logits[0], -1)[:, :2]
    left = class_probs[0] * torch.sigmoid(torch.tensor(9.0)) + class_probs[1] * torch.sigmoid(torch.tensor(-9.0))
    assert torch.allclose(probs[:, 0, 0], left / left.sum(), atol=1e-6)
    assert mask_classification_scores(object()) is None


def test_uncertainty_maps_of_large_outputs_are_sampled_not_resized():
    from seggallery.evidence.uncertainty import MAX_MAP_SIDE

    torch.manual_seed(0)
    logits = torch.randn(1, 5, 700, 1100)  # a model that outputs at the input's size
    maps = uncertainty_maps(logits)
    stride = 3  # the smallest that brings 1100 to MAX_MAP_SIDE (512) or less
    assert maps.shape == (2, len(range(0, 700, stride)), len(range(0, 1100, stride))) and max(maps.shape) <= MAX_MAP_SIDE
    exact = logits[0].softmax(0).max(0).values  # the full-resolution map, at the sampled pixels
    torch.testing.assert_close(maps[0], exact[::stride, ::stride])
    assert uncertainty_maps(torch.randn(1, 5, 512, 300)).shape == (2, 512, 300)  # small enough: untouched


def test_enet_prediction_carries_confidence_matching_its_logits(street):
    image, results, _, _ = street
    enet = results[0]
    assert enet.confidence.shape == enet.entropy.shape == (360, 480)
    segmenter, _ = Engine().segmenter("enet_camvid")
    with torch.inference_mode():
        logits = segmenter.forward(segmenter.preprocess(image.pixels))
    expected = logits[0].softmax(0).max(0).values.numpy()
    np.testing.assert_allclose(enet.confidence, expected, atol=1e-5)
    assert 0 <= enet.entropy.min() and enet.entropy.max() <= 1
    # the confident pixels are the right ones more often than the unsure ones
    truth = np.asarray(Image.open(street[3]))
    right = (enet.mask == truth)[truth != 11]
    sure = (enet.confidence > np.median(enet.confidence))[truth != 11]
    assert right[sure].mean() > right[~sure].mean() + 0.05


def test_truth_comparison_native_and_across_label_sets(street):
    _, (enet, voc), truth, _ = street
    native = compare_to_truth(enet, truth)
    assert native.space.native
    direct = Scores.from_masks(truth.mask, enet.mask, label_set("camvid11").names, ignore_index=11)
    assert native.scores.mean_iou == direct.mean_iou and native.scores.pixel_accuracy == direct.pixel_accuracy
    assert native.scores.mean_iou > 0.5  # ENet on a CamVid test image
    assert set(np.unique(native.correct)) == {-1, 0, 1}
    assert (native.correct == -1).sum() == (truth.mask == 11).sum()
    coarse = compare_to_truth(voc, truth)
    assert coarse.comparable and not coarse.space.native
    assert coarse.space.labels.names == ("other", "person", "vehicle", "vegetation")


def test_charts_draw(street):
    from seggallery.pictures.charts import (
        accuracy_latency_chart,
        area_chart,
        figure_png,
        latency_chart,
    )

    _, results, _, _ = street
    for figure in (area_chart(results), latency_chart(results), accuracy_latency_chart(results)):
        assert figure_png(figure).startswith(b"\x89PNG")
    labels = [t.get_text() for t in area_chart(results).axes[0].get_xticklabels()]
    assert set(labels) <= {"other", "person", "vehicle", "vegetation"}  # the models' shared coarse classes


def zip_listing(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def test_export_zip_holds_what_the_cli_writes(street, tmp_path):
    from seggallery.ui.evidence import build_view

    image, results, _, mask_path = street
    view = build_view(Comparison(image, results), str(mask_path), "camvid11", 0.5, IMAGE)
    files = zip_listing(view.zip_path)
    expected = {"report.json", "areas.csv", "models.csv", "per_class_iou.csv", "disagreement.png"}
    for model_id in ("enet_camvid", FAKE_VOC_MODEL):
        expected |= {f"{model_id}_{kind}.png" for kind in ("overlay", "mask", "color", "correct")}
    assert set(files) == expected
    enet_mask = np.asarray(Image.open(io.BytesIO(files["enet_camvid_mask.png"])))
    np.testing.assert_array_equal(enet_mask, results[0].mask)
    report = json.loads(files["report.json"])
    assert report["ground_truth"]["label_set"] == "camvid11"
    assert report["models"][0]["ground_truth"]["mean_iou"] == pytest.approx(
        compare_to_truth(results[0], load_mask(mask_path, label_set("camvid11"), (480, 360))).scores.mean_iou, abs=1e-6)
    assert report["agreement"]["models"] == [r.spec.name for r in results]
    models_csv = files["models.csv"].decode().splitlines()
    assert models_csv[0].startswith("id,name,label_set,status") and "mean_iou" in models_csv[0] and len(models_csv) == 3

    # the CLI writes the same files for the same photo, models and mask
    out = tmp_path / "cli"
    assert main(["compare", str(mask_path.parent.parent / "test" / IMAGE), "--models", f"enet_camvid,{FAKE_VOC_MODEL}",
                 "--mask", str(mask_path), "--mask-labels", "camvid11", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == expected
    for name in ("enet_camvid_mask.png", "enet_camvid_color.png", "enet_camvid_correct.png", "disagreement.png"):
        assert (out / name).read_bytes() == files[name], name
    assert (out / "per_class_iou.csv").read_bytes() == files["per_class_iou.csv"]


def test_view_sections(street, tmp_path):
    from seggallery.pictures.maps import disagreement_image
    from seggallery.pictures.overlays import colorize
    from seggallery.ui.evidence import build_view

    image, results, truth, mask_path = street
    view = build_view(Comparison(image, results), str(mask_path), "auto", 0.5, IMAGE, export=False)
    assert list(view.truth_table["model"]) == [r.spec.name for r in results]
    assert len(view.correct) == 2 and len(view.confusion) == 2 and len(view.confidence) == 2
    assert view.agreement_plot is not None
    # pictures go to the browser as JPEG files of the photo's size, close to the lossless picture
    shown = np.asarray(Image.open(view.disagreement))
    agreed = Comparison(image, results).agreed
    exact = disagreement_image(image.pixels, agreed.distinct, len(results))
    assert shown.shape == exact.shape and np.abs(shown.astype(int) - exact).mean() < 2
    assert all(Image.open(path).format == "JPEG" for path, _ in view.correct + view.confidence + view.entropy)
    assert "camvid" in view.truth_status.lower() or "CamVid" in view.truth_status
    colour_mask = tmp_path / "colour.png"  # CamVid colours, declared as a VOC mask
    Image.fromarray(colorize(truth.mask, label_set("camvid11"))).save(colour_mask)
    wrong = build_view(Comparison(image, results), str(colour_mask), "voc21", 0.5, IMAGE, export=False)
    assert "cannot be used" in wrong.truth_status and wrong.truth_table.empty
    none = build_view(Comparison(image, results), None, "auto", 0.5, IMAGE, export=False)
    assert "Upload" in none.truth_status and view.area_plot is not None


def test_evaluate_tab_function_resumes(street, tmp_path, monkeypatch):
    from seggallery.ui import evaluate as tab

    monkeypatch.setattr(tab, "EVAL_ROOT", tmp_path)
    camvid = require_shared("data/camvid")
    names = sorted(p.name for p in (camvid / "test").iterdir())[:2]
    images = [str(camvid / "test" / n) for n in names]
    masks = [str(camvid / "testannot" / n) for n in names]
    engine = Engine()
    status, table, per_class, files, leaderboard = tab.evaluate_uploads(engine, images, masks, ["enet_camvid"], "auto")
    assert "Evaluated 2 image(s)" in status and table.loc[0, "images"] == 2
    assert {f.rsplit("/", 1)[1] for f in files} == {"results.json", "results.csv", "per_class_iou.csv", "per_image.csv"}
    enet = leaderboard.iloc[0]  # the same table as `eval`'s leaderboard.csv: measured beside the catalog's 53.31
    assert enet["model"] == "ENet (CamVid)" and enet["published mIoU (%)"] == 53.31 and enet["images"] == 2
    assert enet["measured mIoU (%)"] == round(100 * table.loc[0, "mean IoU"], 2) and "cpu" in enet["machine"]
    assert enet["dataset split"] == "2 uploaded image(s)" and "its own classes" in enet["compared in"]
    again, table_again, *_ = tab.evaluate_uploads(engine, images, masks, ["enet_camvid"], "auto")
    assert "2 (image, model) result(s) of an earlier run" in again
    assert table_again.loc[0, "mean IoU"] == table.loc[0, "mean IoU"]
    message, *_ = tab.evaluate_uploads(engine, images, masks[:0] or None, ["enet_camvid"], "auto")
    assert "Upload" in message


def test_app_has_the_new_tab_and_sections():
    from seggallery.ui import build_app

    app = build_app(Engine())
    labels = {getattr(block, "label", None) for block in app.blocks.values()}
    assert {"Evaluate", "Label set of the mask", "Pixel agreement", "Area per class"} <= labels


def test_evaluate_tab_stop_keeps_finished_images(street, tmp_path, monkeypatch):
    from seggallery.evidence.evaluation import EvaluationStopped
    from seggallery.ui import evaluate as tab

    monkeypatch.setattr(tab, "EVAL_ROOT", tmp_path)
    camvid = require_shared("data/camvid")
    names = sorted(p.name for p in (camvid / "test").iterdir())[2:5]
    images = [str(camvid / "test" / n) for n in names]
    masks = [str(camvid / "testannot" / n) for n in names]

    def stop_after_first(done, total, name):
        if done == 1:
            raise EvaluationStopped(done)

    status, *_ = tab.evaluate_uploads(Engine(), images, masks, ["enet_camvid"], "auto", stop_after_first)
    assert status.startswith("Stopped after 1 image(s)")
    again, table, *_ = tab.evaluate_uploads(Engine(), images, masks, ["enet_camvid"], "auto")
    assert "1 (image, model) result(s) of an earlier run" in again and table.loc[0, "images"] == 3


def test_disagreement_picture_shades_by_how_many_labels_meet():
    from matplotlib import colormaps

    from seggallery.pictures.maps import disagreement_image

    photo = np.full((1, 3, 3), 100, dtype=np.uint8)
    picture = disagreement_image(photo, np.array([[1, 2, 3]]), models=3).astype(float)
    grey = 100 * 0.6
    assert picture[0, 0].tolist() == [60, 60, 60]  # all three agree: the photo in grey
    for column, level in ((1, 0.5), (2, 1.0)):  # two labels: halfway to red; three: all differ
        expected = 0.3 * grey + 0.7 * np.asarray(colormaps["YlOrRd"](0.25 + 0.75 * level)[:3]) * 255
        np.testing.assert_allclose(picture[0, column], expected, atol=0.5)


def test_evaluate_tab_prunes_runs_not_written_for_a_day(tmp_path):
    import os
    import time

    from seggallery.ui.evaluate import KEEP_RUNS_S, prune_runs

    old, recent, resumed = (tmp_path / name for name in ("old", "recent", "resumed"))
    for folder in (old, recent, resumed):
        folder.mkdir()
        (folder / "progress.jsonl").write_text("{}\n")
    day_ago = time.time() - KEEP_RUNS_S - 60
    os.utime(old / "progress.jsonl", (day_ago, day_ago))
    os.utime(resumed, (day_ago, day_ago))  # an old folder whose file was written just now stays
    (tmp_path / "stray.txt").write_text("not a run")
    assert prune_runs(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recent", "resumed", "stray.txt"]
    assert prune_runs(tmp_path / "absent") == []


def test_class_focus_matches_other_label_sets_through_coarse_classes():
    from seggallery.catalog import get_spec, label_set
    from seggallery.evidence.focus import classes_found, focus_for
    from seggallery.runtime.results import Prediction

    def prediction(model_id, mask):
        return Prediction(get_spec(model_id), np.asarray(mask, np.int32), {}, "cpu", "fp32", cold=False)

    voc = prediction("fcn_resnet50", [[15, 15, 0, 0]])  # person, background
    city = prediction("fcn_r50_d8_cityscapes", [[11, 12, 0, 13]])  # person, rider, road, car
    assert classes_found([voc, city]) == ["background", "person", "road", "rider", "car"]  # largest share first
    sources = [label_set("voc21"), label_set("cityscapes19")]
    assert focus_for(city, "person", sources).ids == {11} and focus_for(city, "person", sources).how == "same name"
    car = focus_for(voc, "car", sources)  # VOC has its own `car`
    assert car.how == "same name" and car.ids == {7}
    rider = focus_for(voc, "rider", sources)  # VOC has no rider: its coarse class (person) instead
    assert rider.ids == {15} and rider.how == "coarse class person"
    assert focus_for(voc, "road", sources).ids == frozenset()  # VOC names nothing in the road coarse class
