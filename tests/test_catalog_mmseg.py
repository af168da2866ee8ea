"""models/mmseg.toml against its sources: the metafile.yaml (file, hash, published mIoU) and the config
(architecture, preprocessing) of each entry, both inside the mmsegmentation 1.2.2 wheel."""

from __future__ import annotations

import functools
import inspect
import re

import mmseg_reference
import pytest
import torch
import yaml

from seggallery.archs.encoder_decoder import BACKBONES
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

# Papers the metafiles link over plain http -> the same paper over https (the catalog links https only)
HTTPS_PAPERS = {
    "http://www.robesafe.uah.es/personal/eduardo.romera/pdfs/Romera17tits.pdf": "https://doi.org/10.1109/TITS.2017.2750080",
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
    assert spec.paper == HTTPS_PAPERS.get(entry["Paper"]["URL"], entry["Paper"]["URL"])


@pytest.mark.parametrize("spec", MMSEG_SPECS, ids=lambda spec: spec.id)
def test_architecture_is_the_configs(spec):
    model = mmseg_reference.config(spec).model
    head = model.decode_head
    assert head.type == spec.source["decode_head"]
    assert head.num_classes == len(spec.label_set)
    assert _mmseg_head_argument(head, "align_corners") == spec.source["align_corners"]
    backbone = model.backbone
    if spec.source["backbone"] in BACKBONE_LAYOUT:
        assert (backbone.type, backbone.depth, backbone.contract_dilation, backbone.style) == ("ResNetV1c", 50, True, "pytorch")
        assert (tuple(backbone.strides), tuple(backbone.dilations)) == BACKBONE_LAYOUT[spec.source["backbone"]]
    else:
        # Our UNet, ERFNet and CGNet build mmseg's default layout: the config must not change it.
        assert backbone.type == OWN_LAYOUT_BACKBONES[spec.source["backbone"]]
        defaults = inspect.signature(mmseg_reference.MODELS.get(backbone.type)).parameters
        for name, value in backbone.items():
            if name not in ("type", "norm_cfg", "act_cfg", "init_cfg", "pretrained"):
                assert _plain(value) == _plain(defaults[name].default), f"backbone {name}"
    # Every argument our head takes is set as the config sets mmseg's head: by `source.head_args`, or by
    # our default where the config leaves mmseg's own default or gives the same value.
    head_args = spec.source.get("head_args", {})
    parameters = inspect.signature(DECODE_HEADS[head.type]).parameters
    assert set(head_args) <= set(parameters) - {"num_classes", "align_corners"}
    outputs = backbone_outputs(spec.source["backbone"])
    for name, parameter in parameters.items():
        if name in ("num_classes", "align_corners"):
            continue
        ours, theirs = head_args.get(name, parameter.default), _mmseg_head_argument(head, name)
        if name == "in_index":  # 3 of four maps is -1
            ours, theirs = ours % outputs, theirs % outputs
        assert _plain(ours) == _plain(theirs), name
    # The neck, where there is one, likewise; the head reads its last output, as ours read the last map.
    neck = model.get("neck")
    assert (neck.type if neck else None) == spec.source.get("neck")
    if neck:
        for name, parameter in inspect.signature(NECKS[neck.type]).parameters.items():
            assert _plain(neck[name]) == _plain(parameter.default), name
        assert (neck.start_level, neck.end_level) == (0, -1)  # every input, as ours reads them
        assert list(backbone.out_indices) == [1, 2, 3] and head.in_index == 2
    elif spec.source["backbone"] in BACKBONE_LAYOUT:  # our ResNetV1c returns all four stages, as mmseg's by default
        assert list(backbone.get("out_indices", (0, 1, 2, 3))) == [0, 1, 2, 3]
    assert head.get("input_transform") in (None, "multiple_select")
    assert model.test_cfg.mode == "whole"


OWN_LAYOUT_BACKBONES = {"unet_s5_d16": "UNet", "erfnet": "ERFNet", "cgnet": "CGNet", "fast_scnn": "FastSCNN", "bisenetv2": "BiSeNetV2"}


@functools.cache
def backbone_outputs(name: str) -> int:
    """How many maps our backbone returns (what a head's in_index counts)."""
    with torch.no_grad():
        return len(BACKBONES[name].build().eval()(torch.zeros(1, 3, 32, 32)))


def _mmseg_head_argument(head, name: str):
    """The value mmseg's head gets for our head's argument `name`: the config's, else the class's default."""
    if name == "norm_eps":
        return head.norm_cfg.get("eps", 1e-5)
    if name in head:
        return head[name]
    cls = mmseg_reference.MODELS.get(head.type)
    for klass in cls.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    raise KeyError(f"{head.type} has no argument {name}")


@pytest.mark.parametrize("spec", [spec for spec in MMSEG_SPECS if spec.source["backbone"] in OWN_LAYOUT_BACKBONES],
                         ids=lambda spec: spec.id)
def test_batch_norms_have_the_configs_eps(spec):
    """CGNet's norm_cfg and ERFNet's own blocks use eps 1e-3, the rest mmseg's 1e-5: module by module, as mmseg builds them."""
    mmseg_reference.init_default_scope("mmseg")
    theirs = mmseg_reference.MODELS.build(mmseg_reference.config(spec).model)
    ours = backend.build_module(spec)
    eps = lambda model: {n: m.eps for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}  # noqa: E731
    expected = {n: e for n, e in eps(theirs).items() if not n.startswith("auxiliary_head.")}
    assert eps(ours) == expected
    assert expected


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
    # U-Net's input must be divisible by its whole downsampling rate (mmseg asserts it; we pad to it)
    assert spec.preprocess.get("size_divisor", 1) == _unet_downsample_rate(cfg.model.backbone)
    # ADE20K's label 0 is "other": reduce_zero_label drops it, leaving 150 classes and no background.
    annotations = next(t for t in cfg.test_pipeline if t["type"] == "LoadAnnotations")
    assert bool(annotations.get("reduce_zero_label")) == (spec.labels == "ade20k150")
    # our label files strip stray whitespace (mmseg's ADE20K has 'bed ')
    assert spec.label_set.names == tuple(name.strip() for name in mmseg_reference.dataset_metainfo(spec)["classes"])


def _unet_downsample_rate(backbone) -> int:
    """mmseg's UNet._check_input_divisible: 2 per stage that pools or strides; 1 for other backbones."""
    if backbone.type != "UNet":
        return 1
    return 2 ** sum(backbone.strides[i] == 2 or backbone.downsamples[i - 1] for i in range(1, backbone.num_stages))


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
