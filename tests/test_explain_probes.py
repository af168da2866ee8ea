"""Live mechanism view: the hooks named in probes.toml capture tensors of the expected shapes in every
runnable family, on random weights and a small input, and the captured tensors become pictures."""

from __future__ import annotations

import albumentations
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
import transformers

from seggallery.backends.smp import SmpSegmenter
from seggallery.backends.transformers import TransformersSegmenter
from seggallery.catalog import BACKENDS, catalog, get_spec
from seggallery.explain import views
from seggallery.explain.card import card_for_family
from seggallery.explain.probes import (
    Inside,
    capture,
    look_inside,
    matches,
    probe_for,
    probes,
)
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Failure, WeightsUnavailable

H, W = 96, 128  # a small input: every map below is a fraction of it
CPU = torch.device("cpu")


def test_every_catalog_family_and_backend_has_a_probe():
    missing = sorted({(spec.family, spec.backend) for spec in catalog().values() if probe_for(spec) is None})
    assert not missing, f"add [[probe]] entries to seggallery/explain/probes.toml for {missing}"


def test_every_probe_names_a_known_family_and_backend():
    for probe in probes():
        assert probe.backend in BACKENDS
        assert card_for_family(probe.family) is not None, f"probe for {probe.family!r} has no explanation card"
        assert probe.look_for and probe.ladder


def test_ladder_patterns_match_one_path_component_per_star():
    assert matches("backbone.*", "backbone.layer1")
    assert not matches("backbone.*", "backbone.layer1.0")
    assert matches("encoder.patch_embed*.proj", "encoder.patch_embed3.proj")
    assert not matches("classifier", "classifier.0")


FAKE_BACKENDS = ("torchvision", "mmseg", "native", "deeplab_pytorch")  # whose tests/fakes writers make quick full-size checkpoints


def _from_fake_checkpoint(fake_weights, model_id):
    fake_weights(model_id)  # a random checkpoint in the backend's real format, loaded by the real backend
    segmenter, _ = Engine(device=CPU).segmenter(model_id)
    return segmenter, torch.randn(1, 3, H, W)


# The smp and transformers models are built here from their library classes with random weights, with the
# architecture the catalog checkpoints use, except smaller encoders for UPerNet (ConvNeXt-atto for -tiny)
# and DPT (ViT-tiny for ViT-L) to keep the test fast: the decoders and their module paths are the same.
def _smp(model_id):
    builders = {
        "smp_segformer_b0_ade": lambda: smp.Segformer("mit_b0", encoder_weights=None, classes=150),
        "smp_upernet_convnext_tiny": lambda: smp.UPerNet("tu-convnext_atto", encoder_weights=None, classes=150),
        "smp_dpt_large_ade": lambda: smp.DPT("tu-vit_tiny_patch16_224", encoder_weights=None, classes=150, dynamic_img_size=True),
    }
    no_transform = albumentations.Compose([])  # the probes are fed model inputs directly
    return SmpSegmenter(get_spec(model_id), builders[model_id](), CPU, no_transform), torch.randn(1, 3, H, W)


def _transformers(model_id):
    spec = get_spec(model_id)
    pixels = {"pixel_values": torch.randn(1, 3, H, W)}
    if model_id == "segformer_b0_ade":
        model = transformers.SegformerForSemanticSegmentation(transformers.SegformerConfig(num_labels=150))
    elif model_id == "deeplabv3_mobilenet_v2":
        # output strides 8 and 16: what transformers' conversion scripts set for these two checkpoints
        model = transformers.MobileNetV2ForSemanticSegmentation(transformers.MobileNetV2Config(num_labels=21, output_stride=8))
    elif model_id == "deeplabv3_mobilevit_small":
        model = transformers.MobileViTForSemanticSegmentation(transformers.MobileViTConfig(num_labels=21, output_stride=16))
    elif model_id == "mask2former_swin_tiny_ade":
        swin_tiny = transformers.SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                            out_features=["stage1", "stage2", "stage3", "stage4"])
        model = transformers.Mask2FormerForUniversalSegmentation(transformers.Mask2FormerConfig(backbone_config=swin_tiny, num_labels=150))
    elif model_id == "eomt_large_ade":
        return _eomt_window_segmenter(spec)
    elif model_id == "oneformer_swin_tiny_ade":
        config = transformers.OneFormerConfig(num_labels=150)
        model = transformers.OneFormerForUniversalSegmentation(config)
        pixels["task_inputs"] = torch.randint(0, 1000, (1, config.task_seq_len))  # token ids, as the processor makes
    else:
        raise KeyError(model_id)
    return TransformersSegmenter(spec, model, CPU, processor=None, task=None), pixels


def _eomt_window_segmenter(spec):
    """EoMT with ViT-L's layout scaled down (4 blocks of 64 channels, queries in the last 2) on one square
    window: its grid is fixed by the config's image size, so its input is one EOMT_WINDOW x EOMT_WINDOW
    window with the processor's offsets, as the windowed segmenter gets it."""
    from seggallery.backends.transformers import WindowSegmenter

    config = transformers.EomtConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=2, image_size=EOMT_WINDOW,
                                     num_queries=20, num_blocks=2, num_labels=150)
    processor = transformers.EomtImageProcessor(size={"shortest_edge": EOMT_WINDOW}, do_split_image=True)
    inputs = {"pixel_values": torch.randn(1, 3, EOMT_WINDOW, EOMT_WINDOW), "patch_offsets": [torch.tensor([0, 0, EOMT_WINDOW])],
              "photo_size": (EOMT_WINDOW, EOMT_WINDOW)}
    model = transformers.EomtForUniversalSegmentation(config)
    return WindowSegmenter(spec, model, CPU, processor=processor, task=None), inputs


EOMT_WINDOW = 128
INPUT_SIZES = {"eomt_large_ade": (EOMT_WINDOW, EOMT_WINDOW)}  # the others take the H x W input


# model id -> {tap path: expected (channels, height, width)}. One model per (family, backend): the torchvision
# DeepLabV3s share one head, so the MobileNetV3 one (output stride 16, quicker) stands for the ResNets too.
EXPECTED = {
    "fcn_resnet50": {"backbone.layer4": (2048, 12, 16), "classifier.2": (512, 12, 16), "classifier": (21, 12, 16)},
    "deeplabv3_mobilenet_v3_large": {  # MobileNetV3's last stage is dilated: output stride 16
        **{f"classifier.0.convs.{i}": (256, 6, 8) for i in range(4)},
        "classifier.0.convs.4.3": (256, 1, 1), "classifier": (21, 6, 8)},
    "lraspp_mobilenet_v3_large": {
        "classifier.cbr": (128, 6, 8), "classifier.scale": (128, 1, 1), "classifier.high_classifier": (21, 12, 16),
        "classifier.low_classifier": (21, 12, 16), "classifier": (21, 12, 16)},
    "segformer_b0_ade": {
        "decode_head.linear_projections.0": (32, 24, 32), "decode_head.linear_projections.1": (64, 12, 16),
        "decode_head.linear_projections.2": (160, 6, 8), "decode_head.linear_projections.3": (256, 3, 4),
        "decode_head.activation": (256, 24, 32), "decode_head.classifier": (150, 24, 32)},
    "smp_segformer_b0_ade": {
        "decoder.mlp_stage.3": (32, 24, 32), "decoder.mlp_stage.2": (64, 12, 16), "decoder.mlp_stage.1": (160, 6, 8),
        "decoder.mlp_stage.0": (256, 3, 4), "decoder.fuse_stage": (256, 24, 32), "segmentation_head.0": (150, 24, 32)},
    "deeplabv3_mobilenet_v2": {
        "segmentation_head.conv_aspp": (256, 12, 16), "segmentation_head.conv_pool": (256, 1, 1),
        "segmentation_head.conv_projection": (256, 12, 16), "segmentation_head.classifier": (21, 12, 16)},
    "deeplabv3_mobilevit_small": {
        **{f"segmentation_head.aspp.convs.{i}": (256, 6, 8) for i in range(4)},
        "segmentation_head.aspp.convs.4.conv_1x1": (256, 1, 1), "segmentation_head.aspp.project": (256, 6, 8),
        "segmentation_head.classifier": (21, 6, 8)},
    # mmsegmentation checkpoints on SegGallery's modules (R50-D8: output stride 8; UPerNet's R50: 32)
    "fcn_r50_d8_voc": {"backbone.layer4": (2048, 12, 16), "decode_head.conv_cat": (512, 12, 16), "decode_head.conv_seg": (21, 12, 16)},
    "pspnet_r50_d8_voc": {
        **{f"decode_head.psp_modules.{i}": (512, s, s) for i, s in enumerate((1, 2, 3, 6))},
        "decode_head.bottleneck": (512, 12, 16), "decode_head.conv_seg": (21, 12, 16)},
    "deeplabv3_r50_d8_voc": {
        "decode_head.image_pool": (512, 1, 1), **{f"decode_head.aspp_modules.{i}": (512, 12, 16) for i in range(4)},
        "decode_head.bottleneck": (512, 12, 16), "decode_head.conv_seg": (21, 12, 16)},
    "deeplabv3plus_r50_d8_voc": {
        "decode_head.image_pool": (512, 1, 1), "decode_head.bottleneck": (512, 12, 16),
        "decode_head.c1_bottleneck": (48, 24, 32), "decode_head.sep_bottleneck": (512, 24, 32),
        "decode_head.conv_seg": (21, 24, 32)},
    "upernet_r50_voc": {
        "decode_head.psp_modules.0": (512, 1, 1), "decode_head.psp_modules.3": (512, 6, 6),
        "decode_head.bottleneck": (512, 3, 4), "decode_head.fpn_convs.0": (512, 24, 32),
        "decode_head.fpn_bottleneck": (512, 24, 32), "decode_head.conv_seg": (21, 24, 32)},
    "unet_s5_d16_cityscapes": {  # encoder levels at 1/1 .. 1/16; each decoder level's upsampled map at its skip's size
        **{f"backbone.encoder.{i}": (64 * 2**i, H >> i, W >> i) for i in range(5)},
        **{f"backbone.decoder.{i}.upsample": (64 * 2**i, H >> i, W >> i) for i in range(4)},
        "backbone.decoder.0": (64, H, W), "decode_head.conv_seg": (19, H, W)},
    "erfnet_cityscapes": {
        "backbone.encoder.0": (16, 48, 64), "backbone.encoder.6": (64, 24, 32), "backbone.encoder.15": (128, 12, 16),
        "backbone.decoder.0": (64, 24, 32), "backbone.decoder.5": (16, 48, 64), "decode_head.conv_seg": (19, 48, 64)},
    "cgnet_cityscapes": {
        "backbone.norm_prelu_0": (35, 48, 64), "backbone.norm_prelu_1": (131, 24, 32), "backbone.level2.1.f_loc": (64, 12, 16),
        "backbone.level2.1.f_sur": (64, 12, 16), "backbone.norm_prelu_2": (256, 12, 16), "decode_head.conv_seg": (19, 12, 16)},
    "fast_scnn_cityscapes": {
        "backbone.learning_to_downsample": (64, 12, 16), "backbone.global_feature_extractor.bottleneck3": (128, 3, 4),
        "backbone.global_feature_extractor.ppm.0": (32, 1, 1), "backbone.global_feature_extractor": (128, 3, 4),
        "backbone.feature_fusion": (128, 12, 16), "decode_head.conv_seg": (19, 12, 16)},
    "bisenetv2_cityscapes": {
        "backbone.detail": (128, 12, 16), "backbone.semantic.stage4_CEBlock": (128, 3, 4),
        "backbone.bga.semantic_conv": (128, 3, 4), "backbone.bga.detail_down": (128, 3, 4),
        "backbone.bga": (128, 12, 16), "decode_head.conv_seg": (19, 12, 16)},

    "danet_r50_d8_cityscapes": {
        "backbone.layer4": (2048, 12, 16), "decode_head.pam.attention": (1, 12, 16),
        **{f"decode_head.{m}": (512, 12, 16) for m in ("pam", "cam", "pam_out_conv", "cam_out_conv")},
        "decode_head.conv_seg": (19, 12, 16)},
    "fastfcn_r50_d32_jpu_aspp_cityscapes": {  # a strided backbone; JPU rebuilds 1/8
        "neck.conv_layers.0": (512, 12, 16), "neck.conv_layers.1": (1024, 6, 8), "neck.conv_layers.2": (2048, 3, 4),
        **{f"neck.dilation_layers.{i}": (512, 12, 16) for i in range(4)},
        "decode_head.aspp_modules.0": (2048, 12, 16), "decode_head.bottleneck": (512, 12, 16),
        "decode_head.conv_seg": (19, 12, 16)},
    "ccnet_r50_d8_cityscapes": {
        "decode_head.convs.0": (512, 12, 16), "decode_head.cca.attention": (1, 12, 16),
        "decode_head.cca": (512, 12, 16), "decode_head.convs.1": (512, 12, 16),
        "decode_head.conv_cat": (512, 12, 16), "decode_head.conv_seg": (19, 12, 16)},
    # Mask R-CNN resizes inside: 96 x 128 -> 800 x 1066, padded to 800 x 1088; the mask head's first RoI
    "maskrcnn_resnet50_fpn": {
        "backbone.body.layer4": (2048, 25, 34), "backbone.fpn": (256, 200, 272), "rpn.head.cls_logits": (3, 200, 272),
        "roi_heads.mask_predictor": (91, 28, 28)},
    "enet_camvid": {
        "initial_block": (16, 48, 64), "downsample1_0": (64, 24, 32), "upsample4_0": (64, 24, 32),
        "upsample5_0": (16, 48, 64), "transposed_conv": (12, 96, 128)},
    "oneformer_swin_tiny_ade": {
        "model.pixel_level_module.decoder.input_projections.0": (768, 3, 4),
        "model.pixel_level_module.decoder.mask_projection": (256, 24, 32), "output": (150, 24, 32)},
    "mask2former_swin_tiny_ade": {  # the output: 100 queries' masks at 1/4
        "model.pixel_level_module.decoder.input_projections.0": (768, 3, 4),
        "model.pixel_level_module.decoder.mask_projection": (256, 24, 32), "output": (100, 24, 32)},
    "eomt_large_ade": {  # 1/16 patch tokens, upscaled to 1/4; the output: the first window's 20 queries' masks
        "embeddings.patch_embeddings.projection": (64, 8, 8), "upscale_block": (64, 32, 32), "output": (20, 32, 32)},
    "smp_upernet_convnext_tiny": {
        "decoder.psp.blocks.0": (256, 1, 1), "decoder.psp.blocks.1": (256, 2, 2), "decoder.psp.blocks.2": (256, 3, 3),
        "decoder.psp.blocks.3": (256, 6, 6), "decoder.psp": (256, 3, 4), "decoder.fpn_conv_blocks.2": (256, 24, 32),
        "decoder.fusion_block": (256, 24, 32), "segmentation_head.0": (150, 24, 32)},
    "smp_dpt_large_ade": {
        "decoder.reassemble_blocks.0": (256, 24, 32), "decoder.reassemble_blocks.3": (256, 3, 4),
        "decoder.fusion_blocks.0": (256, 6, 8), "decoder.fusion_blocks.3": (256, 48, 64),
        "segmentation_head.head": (150, 48, 64)},
    # DeepLab v2: ResNet-101 at output stride 8 (Caffe's ceil-mode pool: 48 x 64 -> 25 x 33 -> 13 x 17); the
    # hooks keep the full-scale pass of MSC's three
    "deeplabv2_r101_voc": {**{f"base.aspp.c{i}": (21, 13, 17) for i in range(4)}, "output": (21, 13, 17)},
}
ATROUS = {"deeplabv3_mobilenet_v3_large": [12, 24, 36], "deeplabv3_mobilevit_small": [6, 12, 18],
          "deeplabv3_r50_d8_voc": [12, 24, 36], "deeplabv3plus_r50_d8_voc": [12], "deeplabv2_r101_voc": [6, 12, 18, 24],
          "fastfcn_r50_d32_jpu_aspp_cityscapes": [2, 4, 8]}  # JPU's dilated branches
# Entries for models that are not in this checkout's catalog (families other branches add) wait for them.
RUNNABLE = [model_id for model_id in EXPECTED if model_id in catalog()]


def test_expected_shapes_cover_every_probed_family():
    covered = {(get_spec(model_id).family, get_spec(model_id).backend) for model_id in RUNNABLE}
    assert covered == {(p.family, p.backend) for p in probes() if any(
        spec.family == p.family and spec.backend == p.backend for spec in catalog().values())}


def _segmenter(model_id, fake_weights):
    backend = get_spec(model_id).backend
    if backend in FAKE_BACKENDS:
        return _from_fake_checkpoint(fake_weights, model_id)
    return _smp(model_id) if backend == "smp" else _transformers(model_id)


@pytest.mark.parametrize("model_id", RUNNABLE)
def test_hooks_capture_the_expected_shapes(model_id, fake_weights, photo):
    torch.manual_seed(0)
    segmenter, inputs = _segmenter(model_id, fake_weights)
    probe = probe_for(segmenter.spec)
    names = [name for name, _ in segmenter.module.named_modules()]
    for pattern in probe.ladder:
        assert any(matches(pattern, name) for name in names), f"ladder pattern {pattern!r} matches no module of {model_id}"
    inside, _ = capture(segmenter, inputs, probe)
    assert inside.missing == []
    assert inside.input_size == INPUT_SIZES.get(model_id, (H, W))
    # by module path; where one module is tapped for its input and its output (ENet), the output is checked
    ordered = sorted(inside.captured, key=lambda c: c.tap.take == "output")
    shapes = {c.tap.path: tuple(c.tensor.shape) for c in ordered}
    for path, expected in EXPECTED[model_id].items():
        assert shapes[path] == expected, f"{model_id} {path}: {shapes[path]} != {expected}"
    # hooks are gone afterwards: the cached model runs exactly as before for everyone else
    ours = [h for m in segmenter.module.modules() for h in m._forward_hooks.values() if h.__qualname__.startswith("capture.")]
    assert ours == []  # (transformers installs hooks of its own on the first forward: those stay)
    # the ladder starts at the input and passes through the coarsest map the decoder reads
    assert (inside.ladder[0].height, inside.ladder[0].width) == INPUT_SIZES.get(model_id, (H, W))
    assert len(inside.ladder) >= 3
    if model_id in ATROUS:
        dilations = [c.layer for c in inside.captured if c.layer]
        assert dilations == [f"3x3 conv, dilation {rate}" for rate in ATROUS[model_id]]
    for picture, caption in views.all_pictures(inside, photo):
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
        assert caption


def test_look_inside_runs_the_checkpoint_preprocessing_on_a_photo(fake_weights, photo):
    fake_weights("lraspp_mobilenet_v3_large")
    inside = look_inside(Engine(device=CPU), "lraspp_mobilenet_v3_large", photo)
    assert isinstance(inside, Inside), inside
    assert inside.mask.shape == photo.shape[:2]
    assert min(inside.input_size) == 520  # torchvision's transform: short side resized to 520
    scores = next(c for c in inside.captured if c.tap.path == "classifier")
    assert scores.tensor.shape[1:] == (87, 65)  # output stride 8 of the 693 x 520 input (a 512 x 384 portrait)
    rows = views.ladder_rows(inside)
    assert [row[3] for row in rows][:2] == ["1/1", "1/2"] and "global (1x1)" in [row[3] for row in rows]
    chart = views.ladder_chart(inside)
    assert chart.ndim == 3 and chart.shape[2] == 3


def test_deeplabv2_shows_the_label_map_before_and_after_the_crf(fake_weights, photo, monkeypatch):
    """Its probe has crf = true: the CRF's label map and where it changed the one before, as pictures."""
    from seggallery.explain import probes as probes_module
    from seggallery.runtime.crf import CrfParams

    fake_weights("deeplabv2_r101_voc")
    engine = Engine(device=CPU)
    segmenter, _ = engine.segmenter("deeplabv2_r101_voc")
    segmenter.size = 129  # a quarter of the test size, and the CRF at a quarter of its size: seconds, not tens
    monkeypatch.setattr(probes_module, "CRF_PARAMS", CrfParams(size=128))
    inside = look_inside(engine, "deeplabv2_r101_voc", photo)
    assert isinstance(inside, Inside), inside
    assert inside.crf_mask.shape == inside.mask.shape == photo.shape[:2] and inside.crf_ms > 0
    assert (inside.crf_mask != inside.mask).any(), "the CRF moved no pixel: the before/after view would show nothing"
    captions = [caption for _, caption in views.all_pictures(inside, photo)]
    assert captions[0].startswith("Final label map") and captions[1].startswith("After the dense CRF")
    assert captions[2].startswith("Where the CRF changed the label")


def test_a_model_that_cannot_load_is_a_message(monkeypatch, photo):
    engine = Engine(device=CPU)

    def unavailable(model_id):
        raise WeightsUnavailable("no network")

    monkeypatch.setattr(engine, "segmenter", unavailable)
    result = look_inside(engine, "fcn_resnet50", photo)
    assert isinstance(result, Failure)
    assert "fetch fcn_resnet50" in result.fix


def test_pictures_keep_the_cells_of_a_coarse_map():
    grid = np.zeros((2, 3, 3), dtype=np.uint8)
    grid[0, 1] = 255
    big = views.enlarge(grid, side=300)
    assert big.shape[:2] == (200, 300)
    assert set(np.unique(big)) == {0, 255}  # nearest-neighbour: no blended values between cells
    assert (big[100:200, 0:100, 1] == 0).all() and (big[0:100, 100:200] == 255).all()
    assert views.stride_text(8.0) == "1/8" and views.stride_text(7.9) == "1/8"


def _centre_cell_tap(module: torch.nn.Module, show: str, model_id: str):
    """`module.attention` of a lone attention module on a random 16 x 5 x 7 map, tapped through capture() as
    probes.toml taps it: (the input, what was captured, the Inside)."""
    from types import SimpleNamespace

    from seggallery.explain.probes import Probe, Tap

    torch.manual_seed(0)
    x = torch.randn(1, 16, 5, 7)
    tap = Tap("attention", show, "Attention of the centre cell")
    spec = get_spec(model_id)
    segmenter = SimpleNamespace(module=module.eval(), forward=module, class_scores=lambda outputs: None, spec=spec)
    inside, _ = capture(segmenter, x, Probe(spec.family, spec.backend, (tap,), ("*",)))
    (captured,) = inside.captured
    assert captured.extra["query"].tolist() == [2, 3]  # the centre of 5 x 7
    return x, captured, inside


def test_an_attention_tap_keeps_the_centre_cells_weights_over_the_map():
    """DANet's position attention, tapped as probes.toml taps it: the kept 1 x h x w map is the softmax of the
    centre cell's query against every cell's key (computed here by hand), not another row or a transposed one."""
    from seggallery.archs.heads.da import PositionAttention

    torch.manual_seed(1)
    attention = PositionAttention(16, 4)
    x, captured, inside = _centre_cell_tap(attention, "attention", "danet_r50_d8_cityscapes")
    query = attention.query_project(x)[0, :, 2, 3]
    keys = attention.key_project(x)[0].flatten(1)
    expected = (query @ keys).softmax(0).view(5, 7)
    torch.testing.assert_close(captured.tensor, expected[None])

    picture, caption = views.attention_picture(captured, inside, np.zeros((50, 70, 3), np.uint8))
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert "row 3, column 4" in caption and "35 cells" in caption
    cell = picture.shape[0] / 5  # the brightest cell of the weights is the brightest of the picture
    row, column = divmod(int(expected.argmax()), 7)
    centre = picture[int((row + 0.5) * cell), int((column + 0.5) * cell)]
    assert int(centre.sum()) == int(picture.reshape(-1, 3).sum(1).max())


def test_a_cross_attention_tap_lays_the_centre_cells_weights_on_its_row_and_column():
    """CCNet's criss-cross attention, tapped as probes.toml taps it: the centre cell's weights sit on its own
    column and row only, sum to 1, and are the softmax of its query against those cells' keys (by hand here)."""
    from seggallery.archs.heads.cc import CrissCrossAttention

    torch.manual_seed(1)
    attention = CrissCrossAttention(16)
    x, captured, inside = _centre_cell_tap(attention, "cross_attention", "ccnet_r50_d8_cityscapes")
    query = attention.query_conv(x)[0, :, 2, 3]
    keys = attention.key_conv(x)[0]
    energies = torch.cat([query @ keys[:, torch.arange(5) != 2, 3], query @ keys[:, 2, :]])  # column without itself, row
    weights = energies.softmax(0)
    expected = torch.zeros(5, 7)
    expected[torch.arange(5) != 2, 3] = weights[:4]
    expected[2, :] = weights[4:]
    torch.testing.assert_close(captured.tensor, expected[None])
    assert float(captured.tensor.sum()) == pytest.approx(1.0, abs=1e-5)
    picture, caption = views.pictures(captured, inside, np.zeros((50, 70, 3), np.uint8))[0]
    assert picture.dtype == np.uint8 and "row 3, column 4" in caption and "its row and column (11 cells)" in caption
