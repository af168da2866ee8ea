"""Instances as numbers, pictures and files: the object table, the id map, the overlay, and what
`python -m seggallery compare` writes for an instance model beside a semantic one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from conftest import EXAMPLES, REPO
from PIL import Image

from seggallery.catalog import label_set
from seggallery.evidence.instances import count_per_class, instance_id_map, instance_rows, instances_report
from seggallery.pictures.instances import instance_colors, instance_id_png, instance_overlay
from seggallery.runtime.results import Instances

COCO80 = label_set("coco80")
PERSON, CAR = COCO80.names.index("person"), COCO80.names.index("car")


def three_objects() -> Instances:
    """Two overlapping people (the better one listed second) and a car below the threshold, on a 200 x 300 photo."""
    masks = np.zeros((3, 200, 300), bool)
    masks[0, 20:120, 20:120] = True  # person, 0.7
    masks[1, 60:160, 60:160] = True  # person, 0.9: wins the overlap
    masks[2, 0:50, 200:300] = True  # car, 0.3
    boxes = np.array([[20, 20, 120, 120], [60, 60, 160, 160], [200, 0, 300, 50]], np.float32)
    return Instances(masks, np.array([PERSON, PERSON, CAR]), np.array([0.7, 0.9, 0.3], np.float32), boxes)


def test_rows_are_the_objects_over_the_threshold_best_first():
    rows = instance_rows(three_objects(), COCO80)
    assert [(r.instance_id, r.name, round(r.score, 2)) for r in rows] == [(1, "person", 0.9), (2, "person", 0.7)]
    assert [r.pixels for r in rows] == [10000, 10000]
    assert [r.visible_pixels for r in rows] == [10000, 10000 - 3600], "the better person covers the overlap"
    assert rows[0].box == (60, 60, 160, 160)
    assert count_per_class(rows) == {"person": 2}
    everything = instance_rows(three_objects(), COCO80, threshold=0.0)
    assert count_per_class(everything) == {"person": 2, "car": 1}
    report = instances_report(three_objects(), COCO80)
    assert report["count"] == 2 and report["below_threshold"] == 1 and report["score_threshold"] == 0.5
    assert report["objects"][0] == {"id": 1, "class_id": PERSON, "class": "person", "score": 0.9, "pixels": 10000,
                                    "visible_pixels": 10000, "box": [60.0, 60.0, 160.0, 160.0]}


def test_the_id_map_shows_the_best_object_per_pixel():
    ids = instance_id_map(three_objects())
    assert ids[100, 100] == 1 and ids[30, 30] == 2 and ids[20, 250] == 0 and ids[190, 0] == 0
    assert set(np.unique(ids)) == {0, 1, 2}
    assert instance_id_map(three_objects(), threshold=0.95).max() == 0
    png = instance_id_png(ids)
    assert png.mode == "L" and np.array_equal(np.asarray(png), ids)
    assert instance_id_png(np.full((2, 2), 300)).mode == "I;16"


def test_the_overlay_gives_each_object_its_own_colour():
    photo = np.full((200, 300, 3), 100, np.uint8)
    picture = instance_overlay(photo, three_objects(), COCO80, opacity=1.0)
    assert picture.shape == photo.shape and picture.dtype == np.uint8
    first, second = instance_colors(2)
    assert (first != second).any(), "two people, two colours"
    assert np.array_equal(picture[100, 100], first) and np.array_equal(picture[30, 30], second)
    assert np.array_equal(picture[190, 250], photo[190, 250]) and np.array_equal(picture[25, 250], photo[25, 250]), \
        "no object there, and the car is below the threshold"
    assert np.array_equal(picture[60, 110], first), "the best object's box outline in its colour"
    label = picture[50:59, 62:100]  # the label above the best object's box: its colour with dark text
    assert (label == first).all(-1).mean() > 0.3 and (label.max(-1) < 60).any()
    assert np.array_equal(instance_overlay(photo, three_objects(), COCO80, threshold=0.95), photo)


def test_compare_writes_instances_beside_a_semantic_model(tmp_path, fake_weights):
    models = ["maskrcnn_resnet50_fpn", "lraspp_mobilenet_v3_large"]
    for model_id in models:
        fake_weights(model_id)
    photo = EXAMPLES / "people-astronaut.jpg"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "seggallery", "compare", str(photo), "--models", ",".join(models),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    entry, semantic = report["models"]
    assert entry["task"] == "instance" and entry["label_set"] == "coco80" and semantic["task"] == "semantic"
    assert "instances" not in semantic
    objects = entry["instances"]["objects"]
    assert objects and all(o["score"] >= 0.5 for o in objects)
    assert [o["score"] for o in objects] == sorted((o["score"] for o in objects), reverse=True)
    counted = {}
    for o in objects:
        counted[o["class"]] = counted.get(o["class"], 0) + 1
        assert len(o["box"]) == 4 and o["pixels"] >= o["visible_pixels"] >= 0
    assert entry["instances"]["count_per_class"] == counted
    ids = np.asarray(Image.open(out / f"{models[0]}_instances.png"))
    width, height = Image.open(photo).size
    assert ids.shape == (height, width) and ids.max() <= len(objects)
    assert [int((ids == o["id"]).sum()) for o in objects] == [o["visible_pixels"] for o in objects]
    pair = json.loads((out / f"{models[0]}_instances.json").read_text())
    assert pair["id_map"] == f"{models[0]}_instances.png" and pair["objects"] == objects
    assert (out / f"{models[0]}_instances_overlay.png").is_file()
    # the semantic reading is a label map like any other: areas, the mask PNG, the agreement
    mask = np.asarray(Image.open(out / f"{models[0]}_mask.png"))
    assert {c["name"]: c["pixels"] for c in entry["classes"]} == {
        COCO80.names[i]: int(n) for i, n in enumerate(np.bincount(mask.ravel())) if n}
    assert (mask > 0).sum() == (ids > 0).sum(), "the semantic reading covers exactly the objects' pixels"
    assert "agreement" in report
    assert "mean_confidence" not in entry
