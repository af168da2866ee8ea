"""torchvision's Mask R-CNN: real loading code on fake weights, the same objects as torchvision's documented
inference, and a semantic reading that agrees with an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.io import read_image

from seggallery.backends.torchvision import builder, weights_enum
from seggallery.backends.torchvision_instances import NO_CLASS, TorchvisionInstanceSegmenter, label_lookup
from seggallery.catalog import catalog, get_spec, label_set
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction
from seggallery.runtime.semantic_reading import semantic_reading

INSTANCE_IDS = [spec.id for spec in catalog().values() if spec.backend == "torchvision" and spec.task == "instance"]
CPU = torch.device("cpu")


def upstream_instances(model_id: str, png_path) -> dict[str, np.ndarray]:
    """torchvision's documented recipe: weights.transforms() on read_image, model([image]), masks > 0.5;
    labels as torchvision's category names."""
    spec = get_spec(model_id)
    weights = weights_enum(spec)
    model = builder(spec)(weights=weights).eval()
    with torch.inference_mode():
        output = model([weights.transforms()(read_image(str(png_path)))])[0]
    names = [weights.meta["categories"][i] for i in output["labels"].tolist()]
    return {"masks": (output["masks"] > 0.5)[:, 0].numpy(), "names": names, "scores": output["scores"].numpy(),
            "boxes": output["boxes"].numpy()}


def painted_label_map(masks, label_ids, scores, shape, threshold=0.5) -> np.ndarray:
    """The semantic reading the slow, obvious way: paint instances from the lowest score to the highest."""
    label_map = np.zeros(shape, np.int32)
    for index in sorted(range(len(scores)), key=lambda i: scores[i]):  # ascending: the best is painted last
        if scores[index] >= threshold:
            label_map[masks[index]] = label_ids[index]
    return label_map


@pytest.mark.parametrize("model_id", INSTANCE_IDS)
def test_instances_equal_torchvision_reference(model_id, fake_weights, photo, photo_png):
    fake_weights(model_id)
    prediction = Engine(device=CPU).run(photo, model_id)
    assert isinstance(prediction, Prediction), getattr(prediction, "reason", "")
    assert prediction.task == "instance"
    reference = upstream_instances(model_id, photo_png)
    assert "N/A" not in reference["names"], "the fake never lets an N/A slot win"
    found = prediction.instances
    coco80 = label_set("coco80")
    assert [coco80.names[i] for i in found.labels] == reference["names"]
    np.testing.assert_array_equal(found.masks, reference["masks"])
    np.testing.assert_array_equal(found.scores, reference["scores"])
    np.testing.assert_array_equal(found.boxes, reference["boxes"])
    assert found.masks.shape[1:] == photo.shape[:2]
    # the fake is steered so that this comparison can fail: objects on both sides of the threshold, several classes
    assert 0 < len(found.above(0.5)) < len(found)
    assert len(set(found.labels.tolist())) >= 2
    assert prediction.confidence is None and prediction.entropy is None


@pytest.mark.parametrize("model_id", INSTANCE_IDS)
def test_semantic_reading_is_the_best_instance_per_pixel(model_id, fake_weights, photo, photo_png):
    fake_weights(model_id)
    prediction = Engine(device=CPU).run(photo, model_id)
    reference = upstream_instances(model_id, photo_png)
    names = list(label_set("coco80").names)
    label_ids = [names.index(name) for name in reference["names"]]
    expected = painted_label_map(reference["masks"], label_ids, reference["scores"], photo.shape[:2])
    np.testing.assert_array_equal(prediction.mask, expected)
    assert len(np.unique(prediction.mask)) >= 2 and (prediction.mask == 0).any()


def test_semantic_reading_rules():
    masks = torch.zeros(4, 2, 3, dtype=torch.bool)
    masks[0, :, :2] = True  # label 5, score 0.6
    masks[1, :, 1:] = True  # label 7, score 0.9: wins where both cover
    masks[2, 0, :] = True  # label 9, score 0.3: below the threshold, covers nothing
    masks[3, 1, :] = True  # label NO_CLASS, score 0.95: no class, covers nothing
    labels = torch.tensor([5, 7, 9, NO_CLASS])
    scores = torch.tensor([0.6, 0.9, 0.3, 0.95])
    reading = semantic_reading(masks, labels, scores, (2, 3), background=0, threshold=0.5)
    assert reading.tolist() == [[5, 7, 7], [5, 7, 7]]
    assert semantic_reading(masks, labels, scores, (2, 3), threshold=0.2).tolist() == [[5, 7, 7], [5, 7, 7]]
    assert semantic_reading(masks[:1], labels[:1], torch.tensor([0.6]), (2, 3), threshold=0.7).tolist() == [[0] * 3] * 2
    tie = semantic_reading(masks[:2], labels[:2], torch.tensor([0.8, 0.8]), (2, 3))
    assert tie.tolist() == [[5, 5, 7], [5, 5, 7]], "a tie goes to the instance listed first"
    empty = semantic_reading(torch.zeros(0, 2, 3, dtype=torch.bool), labels[:0], scores[:0], (2, 3), background=3)
    assert empty.tolist() == [[3] * 3] * 2


def test_label_ids_map_by_name_and_n_a_slots_have_no_class():
    categories = weights_enum(get_spec("maskrcnn_resnet50_fpn_v2")).meta["categories"]
    coco80 = label_set("coco80")
    lookup = label_lookup(categories, coco80).tolist()
    assert len(categories) == 91 and categories.count("N/A") == 10 and len(coco80) == 81
    assert lookup[0] == 0 and [lookup[i] for i, name in enumerate(categories) if name == "N/A"] == [NO_CLASS] * 10
    named = [i for i, name in enumerate(categories) if name not in ("N/A", "__background__")]
    assert [lookup[i] for i in named] == list(range(1, 81)), "coco80 keeps torchvision's order"
    assert all(coco80.names[lookup[i]] == categories[i] for i in named)


def test_a_detection_of_an_n_a_slot_is_dropped():
    spec = get_spec("maskrcnn_resnet50_fpn")
    weights = weights_enum(spec)
    segmenter = TorchvisionInstanceSegmenter(spec, torch.nn.Identity(), CPU, weights)
    masks = torch.zeros(3, 1, 4, 5)
    masks[0, 0, :2] = 0.9
    masks[1, 0, 2:] = 0.7
    masks[2, 0, :, :1] = 0.6
    outputs = {"boxes": torch.tensor([[0.0, 0, 5, 2], [0, 2, 5, 4], [0, 0, 1, 4]]), "labels": torch.tensor([1, 12, 3]),
               "scores": torch.tensor([0.9, 0.8, 0.4]), "masks": masks}
    assert weights.meta["categories"][12] == "N/A"
    found = segmenter.instances(outputs, (4, 5))
    assert found.labels.tolist() == [1, 3] and found.scores.tolist() == pytest.approx([0.9, 0.4])
    assert found.boxes.tolist() == [[0, 0, 5, 2], [0, 0, 1, 4]] and found.masks[1].sum() == 4
    reading = segmenter.postprocess(outputs, (4, 5))
    assert reading.tolist() == [[1] * 5] * 2 + [[0] * 5] * 2, "N/A covers nothing; car is below 0.5"
    with pytest.raises(ValueError, match="not the photo's"):
        segmenter.instances(outputs, (8, 10))
