"""The coarse taxonomy: every class of every label set mapped exactly once, and the shared spaces."""

from __future__ import annotations

import numpy as np
import pytest

from seggallery.catalog import label_set, label_set_ids
from seggallery.evidence.taxonomy import (
    IGNORE,
    coarse_labels,
    coarse_lut,
    mapped_label_sets,
    mapping_problems,
    shared_space,
    to_coarse,
)


def test_every_label_set_is_mapped():
    assert set(mapped_label_sets()) == set(label_set_ids())


@pytest.mark.parametrize("label_set_id", label_set_ids())
def test_every_class_is_mapped_exactly_once(label_set_id):
    assert mapping_problems(label_set_id) == []
    lut = coarse_lut(label_set_id)
    labels = label_set(label_set_id)
    for class_id in range(len(labels)):
        if class_id == labels.ignore_index:
            assert lut[class_id] == IGNORE
        else:
            assert 0 <= lut[class_id] < len(coarse_labels()), labels.names[class_id]
    assert lut[255] == IGNORE


@pytest.mark.parametrize("label_set_id", label_set_ids())
def test_round_trip_fine_to_coarse_and_back(label_set_id):
    """Each class goes to one coarse class, and that coarse class's members (the inverse) contain it."""
    labels = label_set(label_set_id)
    lut = coarse_lut(label_set_id)
    members: dict[int, set[int]] = {}
    for class_id in range(len(labels)):
        members.setdefault(int(lut[class_id]), set()).add(class_id)
    assert set().union(*members.values()) == set(range(len(labels)))  # nothing lost
    for class_id in range(len(labels)):
        assert class_id in members[int(lut[class_id])]
    # a mask with every class projects pixel by pixel through the same table
    mask = np.arange(len(labels)).reshape(1, -1)
    assert to_coarse(mask, label_set_id).tolist() == [[int(lut[i]) for i in range(len(labels))]]


def test_expected_examples():
    names = coarse_labels().names

    def coarse(label_set_id, name):
        labels = label_set(label_set_id)
        index = [n.strip() for n in labels.names].index(name)
        value = coarse_lut(label_set_id)[index]
        return "void" if value == IGNORE else names[value]

    assert coarse("voc21", "person") == coarse("cityscapes19", "rider") == coarse("camvid11", "Pedestrian") == "person"
    assert coarse("voc21", "car") == coarse("ade20k150", "van") == coarse("cocostuff171", "truck") == "vehicle"
    assert coarse("cityscapes19", "sidewalk") == coarse("camvid11", "Pavement") == coarse("ade20k150", "road") == "road"
    assert coarse("ade20k150", "bed") == "furniture"  # the label file spells it 'bed ' with a space
    assert coarse("camvid11", "Unlabelled") == "void"
    assert coarse("voc21", "background") == "other"


def test_same_label_set_is_compared_natively():
    space = shared_space(["voc21", "voc21"])
    assert space.native and space.labels.id == "voc21"
    mask = np.array([[3, 15]])
    assert space.project(mask, "voc21") is mask


def test_cross_label_set_space_keeps_only_classes_both_can_name():
    space = shared_space(["voc21", "cityscapes19"])
    assert not space.native
    assert space.labels.names == ("other", "person", "vehicle", "vegetation")
    cityscapes = label_set("cityscapes19")
    road, rider, car = (cityscapes.names.index(n) for n in ("road", "rider", "car"))
    projected = space.project(np.array([[road, rider, car]]), "cityscapes19")
    assert [space.labels.names[i] for i in projected[0]] == ["other", "person", "vehicle"]  # VOC cannot name road
    wide = shared_space(["ade20k150", "cityscapes19"])
    assert {"road", "building", "sky", "vegetation", "street object"} <= set(wide.labels.names)


def test_void_stays_ignored_across_label_sets():
    space = shared_space(["camvid11", "cityscapes19"])
    assert space.project(np.array([[11]]), "camvid11")[0, 0] == IGNORE
