"""The catalog is complete, self-consistent and agrees with the upstream libraries it describes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from torchvision.models import detection as tv_detection
from torchvision.models import segmentation as tv_segmentation

from seggallery.backends.torchvision import weights_enum
from seggallery.catalog import catalog, label_set, label_set_ids, presets
from seggallery.docs import model_table_markdown, space_models_yaml

SPECS = list(catalog().values())
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def test_catalog_has_the_models_the_product_promises():
    ids = set(catalog())
    assert {"fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
            "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"} <= ids
    backends = {spec.backend for spec in SPECS}
    assert {"torchvision", "smp", "transformers"} <= backends
    families = {spec.family for spec in SPECS}
    assert {"fcn", "deeplabv3", "segformer", "upernet", "dpt", "oneformer", "mobilevit"} <= families


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_entry_is_complete(spec):
    assert re.fullmatch(r"[a-z0-9_]+", spec.id)
    assert spec.paper.startswith("https://")
    assert spec.license
    assert len(label_set(spec.labels)) >= 2
    for metric in spec.metrics:
        assert metric["dataset"] and metric["source"], "every published number names its dataset and source"


@pytest.mark.parametrize("spec", [s for s in SPECS if "repo" in s.source], ids=lambda s: s.id)
def test_hub_entries_are_pinned_or_say_why_not(spec):
    revision = spec.source["revision"]
    assert FULL_SHA.match(revision) or spec.source.get("unpinned_reason"), (
        f"{spec.id}: revision {revision!r} is neither a full commit SHA nor explained by unpinned_reason")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.backend == "torchvision" and s.task == "semantic"], ids=lambda s: s.id)
def test_torchvision_entries_match_the_weights_metadata(spec):
    weights = weights_enum(spec)
    assert callable(getattr(tv_segmentation, spec.source["builder"]))
    transforms = weights.transforms()
    assert spec.preprocess["resize_short_side"] == transforms.resize_size[0]
    assert spec.preprocess["mean"] == list(transforms.mean)
    assert spec.preprocess["std"] == list(transforms.std)
    published = weights.meta["_metrics"]["COCO-val2017-VOC-labels"]
    assert spec.metrics[0]["miou"] == published["miou"]
    assert spec.metrics[0]["pixel_accuracy"] == published["pixel_acc"]
    names = ["background" if n == "__background__" else n for n in weights.meta["categories"]]
    assert list(spec.label_set.names) == names


@pytest.mark.parametrize("spec", [s for s in SPECS if s.backend == "torchvision" and s.task == "instance"], ids=lambda s: s.id)
def test_torchvision_instance_entries_match_the_weights_metadata(spec):
    weights = weights_enum(spec)
    assert callable(getattr(tv_detection, spec.source["builder"]))
    assert type(weights.transforms()).__name__ == "ObjectDetection"
    transform = getattr(tv_detection, spec.source["builder"])(weights=None, weights_backbone=None).transform
    assert spec.preprocess["mean"] == list(transform.image_mean) and spec.preprocess["std"] == list(transform.image_std)
    assert (spec.preprocess["min_size"], spec.preprocess["max_size"]) == (transform.min_size[0], transform.max_size)
    published = weights.meta["_metrics"]["COCO-val2017"]
    assert (spec.metrics[0]["box_ap"], spec.metrics[0]["mask_ap"]) == (published["box_map"], published["mask_map"])
    assert spec.labels == "coco80"
    assert list(spec.label_set.names) == ["background"] + [n for n in weights.meta["categories"][1:] if n != "N/A"]


@pytest.mark.parametrize("label_set_id", label_set_ids())
def test_label_sets_are_well_formed(label_set_id):
    labels = label_set(label_set_id)
    assert labels.id == label_set_id
    assert len(labels.names) == len(labels.colors)
    assert len(set(labels.names)) == len(labels.names), "class names are unique within a label set"
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in labels.colors)


def test_presets_name_catalog_models():
    assert presets(), "at least the default preset"
    for preset in presets().values():
        assert preset["models"] and all(m in catalog() for m in preset["models"])


def test_readme_model_table_is_generated_from_the_catalog():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert model_table_markdown() in readme, "README model table is stale: paste `python -m seggallery models --markdown`"


def test_space_front_matter_lists_the_hub_models():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    front_matter = readme.split("---\n")[1]
    assert "sdk: gradio" in front_matter and "app_file: app.py" in front_matter
    assert space_models_yaml() in front_matter


NON_COMMERCIAL = re.compile(r"non[- ]?commercial|research[- ]only|\bNC\b|CC[- ]BY[- ]NC", re.IGNORECASE)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_every_non_commercial_licence_is_marked_in_the_catalog(spec):
    """The marking is data (commercial_use = false in the entry); a licence text that says non-commercial must have it."""
    if NON_COMMERCIAL.search(spec.license):
        assert spec.commercial_use is False, f"{spec.id}: licence {spec.license!r} needs commercial_use = false"


def test_models_not_for_commercial_use_say_so_where_they_are_picked_and_listed():
    from seggallery.explain.card import cards
    from seggallery.ui.common import model_choices
    from seggallery.ui.explain import runnable_markdown

    marked = {spec.id for spec in SPECS if not spec.commercial_use}
    assert {"segformer_b0_ade", "smp_segformer_b0_ade", "smp_segformer_b2_cityscapes"} <= marked
    labels = dict((model_id, label) for label, model_id in model_choices())
    for model_id, label in labels.items():
        assert ("not for commercial use" in label) == (model_id in marked), label
    table = {line.split(" | ")[0].strip("| `"): line for line in model_table_markdown().splitlines()[2:]}
    for model_id, line in table.items():
        assert ("not for commercial use" in line) == (model_id in marked), line
    listed = "\n".join(runnable_markdown(card) for card in cards().values())
    for spec in SPECS:
        line = next((item for item in listed.splitlines() if f"(`{spec.id}`," in item), None)
        if line is not None:
            assert ("not for commercial use" in line) == (spec.id in marked), line


def test_a_malformed_commercial_use_field_is_refused():
    from seggallery.catalog import CatalogError, _spec_from_entry

    entry = {key: "x" for key in ("id", "name", "family", "labels", "license", "paper")}
    entry.update(backend="smp", source={}, preprocess={}, commercial_use="no")
    with pytest.raises(CatalogError, match="commercial_use must be true or false"):
        _spec_from_entry(entry)
