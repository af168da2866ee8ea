"""Our confusion-matrix scores against torchmetrics and against counts stated by the data's source."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_shared
from PIL import Image
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

from seggallery.catalog import label_set
from seggallery.evidence.metrics import Scores, confusion_matrix


def torchmetrics_scores(truth: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int):
    t, p = torch.from_numpy(truth.astype(np.int64)), torch.from_numpy(prediction.astype(np.int64))
    kwargs = {"num_classes": num_classes, "ignore_index": ignore_index, "validate_args": False}
    matrix = MulticlassConfusionMatrix(**kwargs)(p, t).numpy()
    iou = MulticlassJaccardIndex(average="none", **kwargs)(p, t).numpy()
    accuracy = MulticlassAccuracy(average="micro", **kwargs)(p, t).item()
    return matrix, iou, accuracy


@pytest.fixture(scope="module")
def bird_truth() -> np.ndarray:
    path = require_shared("data/voc-bird/bird_segmentation_mask.bmp")
    return np.asarray(Image.open(path), dtype=np.int64)


def shifted_with_errors(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """A prediction with the errors real models make: boundaries off by a few pixels and a blob of a wrong class."""
    prediction = np.roll(truth, (4, -3), axis=(0, 1)).copy()
    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, truth.shape[0] - 60), rng.integers(0, truth.shape[1] - 60)
    prediction[y : y + 60, x : x + 60] = 8  # "cat"
    return prediction


def test_bird_mask_counts_match_its_source(bird_truth):
    """SOURCE.md: 210,555 background pixels, 51,377 bird pixels, about 1,200 stray pixels of classes 1 and 2."""
    scores = Scores.from_masks(bird_truth, bird_truth, label_set("voc21").names, ignore_index=255)
    diagonal = np.diag(scores.confusion)
    assert diagonal[0] == 210_555 and diagonal[3] == 51_377
    assert 1_000 < diagonal[1] + diagonal[2] < 1_400
    assert scores.evaluated_pixels == 513 * 513
    assert scores.pixel_accuracy == 1.0 and scores.mean_iou == 1.0
    assert set(np.flatnonzero(~np.isnan(scores.iou))) == {0, 1, 2, 3}  # absent classes have no IoU


def test_bird_scores_match_torchmetrics(bird_truth):
    prediction = shifted_with_errors(bird_truth)
    truth = bird_truth.copy()
    truth[:8, :] = 255  # a band of VOC "border/ignore" pixels, as real VOC masks have
    scores = Scores.from_masks(truth, prediction, label_set("voc21").names, ignore_index=255)
    matrix, iou, accuracy = torchmetrics_scores(truth, prediction, 21, 255)
    np.testing.assert_array_equal(scores.confusion, matrix)
    assert scores.pixel_accuracy == pytest.approx(accuracy, abs=1e-6)
    present = ~np.isnan(scores.iou)
    np.testing.assert_allclose(scores.iou[present], iou[present], atol=1e-6)
    assert scores.mean_iou == pytest.approx(iou[present].mean(), abs=1e-6)
    assert scores.evaluated_pixels == int((truth != 255).sum())
    assert 0.3 < scores.mean_iou < 0.95  # the errors cost something, not everything


def test_camvid_dataset_scores_match_torchmetrics():
    """Summed over several real CamVid masks, with void (11) ignored as the benchmark does."""
    camvid = require_shared("data/camvid")
    names = sorted(p.name for p in (camvid / "testannot").iterdir())[::47]
    truths = [np.asarray(Image.open(camvid / "testannot" / n), dtype=np.int64) for n in names]
    rng = np.random.default_rng(1)
    predictions = []
    for truth in truths:  # real masks with shifted boundaries and some void predictions
        prediction = np.roll(truth, (3, 5), axis=(0, 1)).copy()
        prediction[rng.random(truth.shape) < 0.02] = 11
        predictions.append(prediction)
    scores = Scores(label_set("camvid11").names, ignore_index=11)
    for truth, prediction in zip(truths, predictions):
        scores.add(truth, prediction)
    truth_all, prediction_all = np.concatenate([t.ravel() for t in truths]), np.concatenate([p.ravel() for p in predictions])
    matrix, iou, accuracy = torchmetrics_scores(truth_all, prediction_all, 12, 11)
    np.testing.assert_array_equal(scores.confusion, matrix)
    np.testing.assert_allclose(scores.iou[:11], iou[:11], atol=1e-6)
    assert scores.pixel_accuracy == pytest.approx(accuracy, abs=1e-6)
    assert np.isnan(scores.iou[11])  # the void class never gets a score
    assert scores.mean_iou == pytest.approx(np.nanmean(iou[:11]), abs=1e-6)


def test_predictions_outside_the_space_count_as_misses():
    truth = np.array([[0, 0, 1, 255]])
    prediction = np.array([[0, 255, 1, 1]])  # 255: e.g. a void prediction projected to coarse space
    matrix, outside = confusion_matrix(truth, prediction, 2, ignore_index=255)
    assert matrix.tolist() == [[1, 0], [0, 1]] and outside.tolist() == [1, 0]
    scores = Scores.from_masks(truth, prediction, ("a", "b"), ignore_index=255)
    assert scores.pixel_accuracy == pytest.approx(2 / 3)
    assert scores.iou.tolist() == [0.5, 1.0]


def test_scores_dict_keeps_present_classes():
    truth = np.array([[0, 3], [3, 3]])
    scores = Scores.from_masks(truth, truth, label_set("voc21").names, ignore_index=255)
    data = scores.to_dict()
    assert data["confusion"]["classes"] == ["background", "bird"]
    assert data["per_class_iou"] == {"background": 1.0, "bird": 1.0}
