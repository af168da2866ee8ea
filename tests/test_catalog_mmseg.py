"""models/mmseg.toml against its sources: the metafile.yaml (file, hash, published mIoU) and the config
(architecture, preprocessing) of each entry, both inside the mmsegmentation 1.2.2 wheel."""

from __future__ import annotations

import inspect
import re

import mmseg_reference
import pytest
import yaml

from seggallery.archs.heads import DECODE_HEADS
from seggallery.archs.necks import NECKS
from seggallery.backends import mmseg as backend
from seggallery.catalog import catalog, get_spec, presets

MMSEG_SPECS = [spec for spec in catalog().values() if spec.backend == "mmseg"]
BACKBONE_LAYOUT = {  # catalog backbone -> the (strides, dilations) of mmseg's ResNetV1c config
    "resnet50_v1c_d8": ((1, 2, 1, 1), (1, 1, 2, 4)),
    "resnet50_v1c": ((1, 2, 2, 2), (1, 1, 1, 1)),
    "resnet50_v1c_d32": ((1, 2, 2, 2), (1, 1, 2, 4)),  # FastFCN's: strided and dilated
}


def metafile_entry(spec) -> tuple[str, dict]:
    algo = mmseg_reference.config_path(spec).parent.name
    models = yaml.safe_load((mmseg_reference.CONFIGS / algo / "metafile.yaml").read_text())["Models"]
    return algo, next(model for model in models if model["Name"] == spec.source["config"])


@pytest.mark.parametrize("spec", MMSEG_SPECS, ids=lambda spec: spec.id)
def test_weights_and_metrics_are_the_metafiles(spec):
    algo, entry = metafile_entry(spec)
    assert spec.source["url"] == entry["Weights"]
    assert re.fullmatch(r"[0-9a-f]{8}", backend.hash_prefix(spec))
    assert backend.checkpoint_name(spec).endswith(f"-{backend.hash_prefix(spec)}.pth")
    single, *multi = spec.metrics
    published = entry["Results"]["Metrics"]
    assert single["miou"] == published["mIoU"] and "single scale" in single["dataset"]
    if "mIoU(ms+flip)" in published:
        (multi,) = multi
        assert multi["miou"] == published["mIoU(ms+flip)"] and "multi-scale + flip" in multi["dataset"]
    else:  # the zoo gives no multi-scale figure for some configs (DANet R50-D8 Cityscapes 40k)
        assert multi == []
    for metric in spec.metrics:
        assert f"configs/{algo}/metafile.yaml, {spec.source['config']}" in metric["source"]
    assert spec.paper == entry["Paper"]["URL"]


@pytest.mark.parametrize("spec", MMSEG_SPECS, ids=lambda spec: spec.id)
def test_architecture_is_the_configs(spec):
    model = mmseg_reference.config(spec).model
    head = model.decode_head
    assert head.type == spec.source["decode_head"]
    assert head.num_classes == len(spec.label_set)
    assert head.align_corners == spec.source["align_corners"]
    backbone = model.backbone
    assert (backbone.type, backbone.depth, backbone.contract_dilation, backbone.style) == ("ResNetV1c", 50, True, "pytorch")
    assert (tuple(backbone.strides), tuple(backbone.dilations)) == BACKBONE_LAYOUT[spec.source["backbone"]]
    # Every argument our head takes has, as its default, the value the config gives mmseg's head.
    for name, parameter in inspect.signature(DECODE_HEADS[head.type]).parameters.items():
        if name not in ("num_classes", "align_corners"):
            assert _plain(head[name]) == _plain(parameter.default), name
    # The neck, where there is one, likewise; the head reads its last output, as ours read the last map.
    neck = model.get("neck")
    assert (neck.type if neck else None) == spec.source.get("neck")
    if neck:
        for name, parameter in inspect.signature(NECKS[neck.type]).parameters.items():
            assert _plain(neck[name]) == _plain(parameter.default), name
        assert (neck.start_level, neck.end_level) == (0, -1)  # every input, as ours reads them
        assert list(backbone.out_indices) == [1, 2, 3] and head.in_index == 2
    else:
        assert list(backbone.get("out_indices", (0, 1, 2, 3))) == [0, 1, 2, 3] and head.in_index in (3, [0, 1, 2, 3])
    if head.type == "FCNHead":
        assert (head.num_convs, head.concat_input, head.get("kernel_size", 3), head.get("dilation", 1)) == (2, True, 3, 1)
    assert head.get("input_transform") in (None, "multiple_select")
    assert model.test_cfg.mode == "whole"


@pytest.mark.parametrize("spec", MMSEG_SPECS, ids=lambda spec: spec.id)
def test_preprocessing_is_the_configs(spec):
    cfg = mmseg_reference.config(spec)
    resize = next(t for t in cfg.test_pipeline if t["type"] == "Resize")
    assert list(resize["scale"]) == spec.preprocess["scale"]
    assert resize["keep_ratio"] is spec.preprocess["keep_ratio"] is True
    assert resize.get("interpolation", "bilinear") == "bilinear"
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.bgr_to_rgb  # mmseg reads BGR and converts: the mean and std are RGB, as ours are
    assert list(preprocessor.mean) == spec.preprocess["mean"]
    assert list(preprocessor.std) == spec.preprocess["std"]
    assert [t["type"] for t in cfg.test_pipeline] == ["LoadImageFromFile", "Resize", "LoadAnnotations", "PackSegInputs"]
    # ADE20K's label 0 is "other": reduce_zero_label drops it, leaving 150 classes and no background.
    annotations = next(t for t in cfg.test_pipeline if t["type"] == "LoadAnnotations")
    assert bool(annotations.get("reduce_zero_label")) == (spec.labels == "ade20k150")
    # our label files strip stray whitespace (mmseg's ADE20K has 'bed ')
    assert spec.label_set.names == tuple(name.strip() for name in mmseg_reference.dataset_metainfo(spec)["classes"])


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


@pytest.mark.parametrize("dataset", ["VOC", "ADE20K", "Cityscapes"])
def test_same_backbone_presets_differ_only_in_the_decoder(dataset):
    specs = [get_spec(model_id) for model_id in presets()[f"Same backbone, different decoder: {dataset}"]["models"]]
    assert [spec.family for spec in specs] == ["fcn", "pspnet", "deeplabv3", "deeplabv3plus", "upernet"]
    assert {spec.backend for spec in specs} == {"mmseg"}
    assert len({spec.labels for spec in specs}) == 1
    assert [spec.source["backbone"] for spec in specs] == ["resnet50_v1c_d8"] * 4 + ["resnet50_v1c"]
    # One recipe: the same schedule, crop and dataset in every config name (e.g. 4xb4-20k_voc12aug-512x512).
    assert len({spec.source["config"].split("_", 2)[-1] for spec in specs}) == 1
    assert len({tuple(spec.preprocess["scale"]) for spec in specs}) == 1



def test_context_modules_preset_compares_context_heads_on_one_label_set():
    """PSPNet, DeepLabV3, DANet and CCNet on the one dilated ResNet-50 and 40k recipe; FastFCN (80k) on the
    strided one with JPU: every model reads Cityscapes at the same scale."""
    specs = [get_spec(model_id) for model_id in presets()["Context modules on Cityscapes"]["models"]]
    assert [spec.family for spec in specs] == ["pspnet", "deeplabv3", "danet", "ccnet", "fastfcn"]
    assert {spec.backend for spec in specs} == {"mmseg"} and {spec.labels for spec in specs} == {"cityscapes19"}
    assert [spec.source["backbone"] for spec in specs] == ["resnet50_v1c_d8"] * 4 + ["resnet50_v1c_d32"]
    assert {spec.source["config"].split("_", 2)[-1] for spec in specs[:4]} == {"4xb2-40k_cityscapes-512x1024"}
    assert len({tuple(spec.preprocess["scale"]) for spec in specs}) == 1
