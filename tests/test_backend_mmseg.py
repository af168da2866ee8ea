"""The mmseg backend against mmsegmentation 1.2.2 itself: the same keys, the same scores, the same masks.

For every catalog entry, mmseg builds its model from the wheel's config with random weights and saves it
as the model zoo does (tests/fakes/mmseg.py); SegGallery loads that file with its own loader and modules,
mmseg with init_model. Inputs are small where the check allows: an R50-D8 forward at 512x512 costs
seconds on a CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import urllib.error
from pathlib import Path

import mmseg_reference
import numpy as np
import pytest
import torch
from conftest import EXAMPLES
from fakes.common import put_in_hub_cache
from PIL import Image

from seggallery import backends, safety
from seggallery.archs.encoder_decoder import from_mmseg_state_dict
from seggallery.archs.resnet_v1c import ResNetV1c
from seggallery.backends import hub, weights
from seggallery.backends import mmseg as backend
from seggallery.catalog import ModelSpec, catalog, get_spec, presets
from seggallery.evidence.areas import area_table
from seggallery.images import load_image
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction, WeightsUnavailable, describe_failure

MMSEG_IDS = [spec.id for spec in catalog().values() if spec.backend == "mmseg"]
SCORE_STRIDE = {"unet_s5_d16": 1, "erfnet": 2, "cgnet": 8, "fast_scnn": 8, "bisenetv2": 8}  # the ResNet models' depends on the head
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def strip(tmp_path_factory) -> tuple[np.ndarray, Path]:
    """A 1024 x 256 band of the street photo, as pixels and as a lossless PNG (both libraries decode the same).

    At a quarter of the published scale it becomes a 512 x 128 network input: cheap, while its 1/8 map
    (64 x 16) is wider than ASPP's largest dilation (36), so every branch's off-centre taps take part.
    """
    pixels = np.ascontiguousarray(load_image(EXAMPLES / "street-city.jpg").pixels[256:512])
    path = tmp_path_factory.mktemp("strip") / "street-strip.png"
    Image.fromarray(pixels).save(path)
    return pixels, path


@dataclasses.dataclass
class Compared:
    spec: ModelSpec
    ours: backend.MmsegSegmenter
    theirs: torch.nn.Module
    scores: torch.Tensor  # the decode head's output during our pipeline
    expected_scores: torch.Tensor  # ... and during mmseg's inference_model
    mask: np.ndarray
    expected_mask: np.ndarray


def _capture_classifier_output(module: torch.nn.Module, into: list) -> torch.utils.hooks.RemovableHandle:
    # mmseg's decode head is run through its predict() method, which no module hook sees; its classifier
    # conv is called as a module in both implementations, so its output is what both pipelines expose.
    return module.register_forward_hook(lambda _module, _inputs, output: into.append(output.detach().clone()))


@pytest.fixture(scope="module", params=MMSEG_IDS)
def compared(request, fake_weights, strip) -> Compared:
    """One entry, loaded from the same official-format file by SegGallery and by mmseg's init_model, and
    both full pipelines (ours: predict; mmseg: inference_model) run once on the real-photo strip.

    Module scope with one parameter per entry: pytest runs every test of one entry, then frees it.
    """
    spec = get_spec(request.param)
    fake_weights(spec.id)
    ours = backend.build(spec, CPU)
    theirs = mmseg_reference.load(spec, backend.checkpoint_path(spec))
    pixels, path = strip
    scale = [side // 4 for side in spec.preprocess["scale"]]
    quarter = backend.MmsegSegmenter(dataclasses.replace(spec, preprocess={**spec.preprocess, "scale": scale}), ours.module, CPU)
    ours_scores, their_scores = [], []
    with contextlib.ExitStack() as stack:
        stack.callback(_capture_classifier_output(ours.module.decode_head.conv_seg, ours_scores).remove)
        stack.callback(_capture_classifier_output(theirs.decode_head.conv_seg, their_scores).remove)
        mask = quarter.predict(pixels).mask
        with mmseg_reference.pipeline_scale(theirs, scale):
            expected_mask = mmseg_reference.inference_mask(theirs, path)
    return Compared(spec, ours, theirs, ours_scores[0], their_scores[0], mask, expected_mask)


# DAHead's per-branch classifiers, which only train (its prediction is the classifier of the branches' sum)
DANET_TRAINING_CLASSIFIERS = {f"decode_head.{branch}_conv_seg.{name}" for branch in ("pam", "cam") for name in ("weight", "bias")}


def test_checkpoint_loads_every_key_but_the_training_only_ones(compared):
    """Every key of the file is loaded but the auxiliary head's and, for DANet, its two branch classifiers'."""
    official = torch.load(backend.checkpoint_path(compared.spec), map_location="cpu", weights_only=True)["state_dict"]
    auxiliary = {key for key in official if key.startswith("auxiliary_head.")}
    # the zoo's checkpoints carry the auxiliary heads' weights where the config trains with any
    assert bool(auxiliary) == bool(mmseg_reference.auxiliary_heads(compared.theirs))
    training_only = auxiliary | (DANET_TRAINING_CLASSIFIERS if compared.spec.source["decode_head"] == "DAHead" else set())
    assert training_only <= set(official)
    loaded = compared.ours.module.state_dict()
    converted = from_mmseg_state_dict(official, compared.spec.source["backbone"])
    assert len(converted) == len(official) - len(training_only)
    assert set(converted) == set(loaded)
    assert not set(converted) & training_only
    for key, value in converted.items():
        assert torch.equal(value, loaded[key]), key


def test_scores_match_mmseg(compared):
    """The same network input (checked bit for bit below) gives the same per-class scores."""
    expected, actual = compared.expected_scores, compared.scores
    stride = SCORE_STRIDE.get(compared.spec.source["backbone"]) or \
        (4 if compared.spec.source["decode_head"] in ("DepthwiseSeparableASPPHead", "UPerHead") else 8)
    assert actual.shape == expected.shape == (1, len(compared.spec.label_set), 128 // stride, 512 // stride)
    assert expected.std() > 0
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)


def test_masks_match_inference_model(compared, strip):
    """Preprocess -> forward -> resize to the input's size, then the image's -> argmax, on a real photo, at a
    quarter of the published scale (test_preprocessing_matches_mmseg_pipeline checks that scale itself)."""
    mask, expected = compared.mask, compared.expected_mask
    assert mask.shape == expected.shape == strip[0].shape[:2]
    assert len(np.unique(expected)) > 1, "a one-class mask would make the comparison meaningless"
    assert (mask == expected).mean() >= 0.999


def _one_per_preprocessing(model_ids: list[str]) -> list[str]:
    """The first entry of each distinct `preprocess` (scale, mean, std). test_catalog_mmseg checks every entry's
    values against its own config's pipeline, so entries with the same values get the same network input."""
    firsts: dict[tuple, str] = {}
    for model_id in model_ids:
        pre = get_spec(model_id).preprocess
        firsts.setdefault((tuple(pre["scale"]), tuple(pre["mean"]), tuple(pre["std"])), model_id)
    return list(firsts.values())


@pytest.mark.parametrize("model_id", _one_per_preprocessing(MMSEG_IDS))
def test_preprocessing_matches_mmseg_pipeline(model_id, tmp_path):
    """The network input, bit for bit: mmcv's keep-ratio rescale (enlarging one photo, shrinking the
    other for the 512 scale), RGB order, mean and std."""
    spec = get_spec(model_id)
    segmenter = backend.MmsegSegmenter(spec, torch.nn.Identity(), CPU)
    for name in ("animal-cat.jpg", "street-city.jpg"):
        pixels = load_image(EXAMPLES / name).pixels
        path = tmp_path / f"{name}.png"
        Image.fromarray(pixels).save(path)
        expected = mmseg_reference.preprocessed(spec, path)
        actual = segmenter.preprocess(pixels)
        assert actual.shape == expected.shape, name
        assert torch.equal(actual, expected), name


def test_rescale_is_mmcv_imrescale():
    import mmcv

    rng = np.random.default_rng(0)
    for height, width in [(300, 451), (768, 1024), (512, 512), (513, 2047), (1, 1), (7, 3000), (4000, 23)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for scale in [(2048, 512), (2048, 1024), (512, 128)]:
            expected = mmcv.imrescale(image, scale, interpolation="bilinear")
            np.testing.assert_array_equal(backend.rescale(image, scale), expected, err_msg=f"{height}x{width} {scale}")


def test_backbone_is_timms_resnet50c():
    import timm

    for output_stride in (8, 32):
        with torch.device("meta"):  # shapes and geometry only
            ours = ResNetV1c(output_stride)
            theirs = timm.create_model("resnet50c", pretrained=False, output_stride=output_stride, num_classes=0, global_pool="")
        assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
        geometry = lambda model: [(n, m.stride, m.padding, m.dilation) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]  # noqa: E731
        assert geometry(ours) == geometry(theirs)


def test_key_map_renames_the_stem_and_drops_only_the_auxiliary_head():
    state = {
        "backbone.stem.0.weight": 0,
        "backbone.stem.4.running_var": 1,
        "backbone.stem.7.num_batches_tracked": 2,
        "backbone.layer1.0.downsample.1.weight": 3,
        "decode_head.conv_seg.bias": 4,
        "auxiliary_head.convs.0.conv.weight": 5,
        "auxiliary_head.conv_seg.weight": 6,
    }
    assert from_mmseg_state_dict(state, "resnet50_v1c_d8") == {
        "backbone.conv1.0.weight": 0,
        "backbone.conv1.4.running_var": 1,
        "backbone.bn1.num_batches_tracked": 2,
        "backbone.layer1.0.downsample.1.weight": 3,
        "decode_head.conv_seg.bias": 4,
    }


def test_key_map_keeps_the_names_of_backbones_that_use_mmsegs_own():
    """CGNet also has a `stem` (three ConvModules): the ResNet stem's renaming must not touch it."""
    state = {"backbone.stem.0.conv.weight": 0, "backbone.stem.2.activate.weight": 1, "decode_head.conv_seg.bias": 2}
    assert from_mmseg_state_dict(state, "cgnet") == state
    assert from_mmseg_state_dict({**state, "auxiliary_head.0.conv_seg.weight": 3}, "unet_s5_d16") == state


def _random_pair(model_id: str):
    """mmseg's model for the entry with its own random initialisation (no BatchNorm calibration: these tests
    compare scores, not masks), and ours with its weights (no file in between)."""
    spec = get_spec(model_id)
    mmseg_reference.init_default_scope("mmseg")
    torch.manual_seed(0)
    theirs = mmseg_reference.MODELS.build(mmseg_reference.config(spec).model).eval()
    return spec, backend.module_from_state_dict(spec, theirs.state_dict()).eval(), theirs


@pytest.mark.parametrize("model_id", ["erfnet_cityscapes", "fast_scnn_cityscapes", "bisenetv2_cityscapes"])
def test_odd_sized_inputs_match_mmseg(model_id):
    """Odd sides round differently in a stride-2 conv and a 2x2 pool (ERFNet resizes the pooled half to the
    conv's size) and in the 1/32 branches that Fast-SCNN and BiSeNetV2 upsample to 1/8; the scores must still be
    mmseg's."""
    _, ours, theirs = _random_pair(model_id)
    x = torch.randn(1, 3, 37, 83, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = mmseg_reference.scores(theirs, x)
        assert expected.std() > 0
        torch.testing.assert_close(ours(x), expected, atol=1e-4, rtol=0)


def test_unet_pads_an_input_whose_sides_are_not_multiples_of_16():
    """mmseg's UNet refuses such an input; ours pads it with zeros on the right and at the bottom and crops
    the scores back: exactly mmseg's scores for the padded input, cropped."""
    spec, ours, theirs = _random_pair("unet_s5_d16_cityscapes")
    x = torch.randn(1, 3, 40, 72, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), pytest.raises(AssertionError, match="divisible"):
        mmseg_reference.scores(theirs, x)
    with pytest.raises(ValueError, match="multiples of 16"):
        ours(x)
    segmenter = backend.MmsegSegmenter(spec, ours, CPU)
    with torch.no_grad():
        scores, size = segmenter.forward(x)
        expected = mmseg_reference.scores(theirs, torch.nn.functional.pad(x, (0, 8, 0, 8)))[..., :40, :72]
    assert size == (40, 72) and scores.shape == (1, 19, 40, 72) and expected.std() > 0
    torch.testing.assert_close(scores, expected, atol=1e-4, rtol=0)


class NotWeights:
    """A Python object a checkpoint should not carry."""


def test_loader_reads_only_weights(tmp_path):
    path = tmp_path / "ok.pth"
    # Some training scripts leave numpy scalars in `meta`: plain data, allowed without leaving weights_only.
    torch.save({"meta": {"seed": np.int64(3), "lr": np.float32(0.01)}, "state_dict": {"w": torch.ones(2)}}, path)
    assert torch.equal(backend.load_state_dict(path)["w"], torch.ones(2))

    torch.save({"meta": {"hook": NotWeights()}, "state_dict": {}}, path)
    with pytest.raises(ValueError, match="NotWeights"):
        backend.load_state_dict(path)

    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ValueError, match="no 'state_dict'"):
        backend.load_state_dict(path)


def test_a_missing_or_foreign_key_fails_the_load(fake_weights):
    spec = get_spec("fcn_r50_d8_voc")
    fake_weights(spec.id)
    official = backend.load_state_dict(backend.checkpoint_path(spec))
    missing = {key: value for key, value in official.items() if key != "decode_head.conv_cat.bn.running_var"}
    foreign = {**official, "decode_head.extra.weight": torch.zeros(1)}
    for state in (missing, foreign):
        with pytest.raises(RuntimeError, match=r"decode_head\.(conv_cat\.bn\.running_var|extra\.weight)"):
            backend.module_from_state_dict(spec, state)


def _elsewhere(spec, payload: bytes, mirror: dict | None = None):
    """The entry with a published file name carrying `payload`'s sha256 prefix, absent from the cache."""
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    source = {**spec.source, "url": f"https://download.invalid/zoo/{spec.id}_20200101_000000-{prefix}.pth"}
    if mirror is not None:
        source["mirror"] = mirror
    return dataclasses.replace(spec, source=source)


def _unreachable(url, dst, hash_prefix=None, progress=True):
    """torch.hub.download_url_to_file where download.openmmlab.com cannot be reached."""
    raise urllib.error.URLError("no route to host")


def _cached(spec) -> bool:
    return weights.is_cached(backend.files(spec))


def _fetch(spec) -> Path:
    (path,) = weights.fetch(backend.files(spec))
    return path


def test_a_mirror_on_the_hub_serves_the_file(tmp_path):
    payload = tmp_path / "weights.pth"
    payload.write_bytes(b"the published checkpoint")
    mirror = {"repo": "someone/mmseg-mirror", "filename": "fcn.pth", "revision": "1" * 40}
    spec = _elsewhere(get_spec("fcn_r50_d8_voc"), payload.read_bytes(), mirror)
    assert not _cached(spec)
    put_in_hub_cache(mirror["repo"], mirror["revision"], {mirror["filename"]: payload})
    assert _cached(spec)
    assert _fetch(spec).read_bytes() == payload.read_bytes()


def test_a_mirror_download_must_be_the_published_file(tmp_path, monkeypatch):
    published = b"the published checkpoint"
    mirror = {"repo": "someone/bad-mirror", "filename": "fcn.pth", "revision": "2" * 40}
    spec = _elsewhere(get_spec("fcn_r50_d8_voc"), published, mirror)
    served = tmp_path / "served.pth"
    served.write_bytes(b"something else")

    def download(repo, revision, name, repo_type="model"):  # hub.fetch_file, as if it had downloaded the file
        return put_in_hub_cache(repo, revision, {name: served}) / name

    monkeypatch.setattr(hub, "fetch_file", download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _unreachable)
    with pytest.raises(WeightsUnavailable) as caught:
        _fetch(spec)
    message = str(caught.value)
    assert "mirror" in message and "sha256" in message and "download.invalid" in message
    assert not _cached(spec), "a file that failed the check must not stay in the cache"

    served.write_bytes(published)
    assert _fetch(spec).read_bytes() == published


@pytest.fixture
def mirrored_entry(tmp_path, monkeypatch, empty_hub_cache):
    """fcn_r50_d8_voc as a catalog entry with a Hub mirror (the published catalog has none yet), in empty
    caches; returns (spec, the published bytes, the mirror, the Hub cache folder)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    published = b"the published checkpoint, mirrored"
    mirror = {"repo": "openmmlab-mirror/fcn", "filename": "fcn_r50_d8_voc.pth", "revision": "3" * 40}
    spec = _elsewhere(get_spec("fcn_r50_d8_voc"), published, mirror)
    entries = {**catalog(), spec.id: spec}
    for module in (safety, backends):
        monkeypatch.setattr(module, "catalog", lambda: entries)
    backends.catalog_hub_files.cache_clear()
    yield spec, published, mirror, empty_hub_cache
    backends.catalog_hub_files.cache_clear()


def test_a_catalog_mirror_is_downloaded_from_the_mirror_when_it_is_reachable(mirrored_entry, tmp_path, monkeypatch):
    """The door (backends.fetch) lets a catalog entry's mirror through: its repo is in the allowlist,
    which is derived from every entry's files(). Before, the mirror was refused as an unknown repo."""
    spec, published, mirror, hub_cache = mirrored_entry
    served = tmp_path / "served.pth"
    served.write_bytes(published)
    hub_calls = []

    def hf_hub_download(repo_id, filename, revision=None, repo_type="model", **kwargs):  # the Hub, reachable
        hub_calls.append(repo_id)
        return str(put_in_hub_cache(repo_id, revision, {filename: served}) / filename)

    monkeypatch.setattr(hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _unreachable)
    assert mirror["repo"] in backends.hub_repos()
    backends.fetch(spec)
    assert hub_calls == [mirror["repo"]]
    assert backends.is_cached(spec)
    (path,) = weights.fetch(backends.files(spec))
    assert path.read_bytes() == published and path.is_relative_to(hub_cache)
    assert not backend.checkpoint_path(spec).exists(), "the official URL was not needed"


def test_a_catalog_mirror_falls_back_to_the_official_url(mirrored_entry, monkeypatch):
    spec, published, mirror, _ = mirrored_entry
    urls = []

    def hf_hub_download(repo_id, filename, **kwargs):  # the Hub, unreachable
        from huggingface_hub.errors import LocalEntryNotFoundError

        raise LocalEntryNotFoundError("no connection to the Hub in this test")

    def download_url_to_file(url, dst, hash_prefix=None, progress=True):  # the official host, reachable
        urls.append(url)
        assert hashlib.sha256(published).hexdigest().startswith(hash_prefix)
        Path(dst).write_bytes(published)

    monkeypatch.setattr(hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download_url_to_file)
    backends.fetch(spec)
    assert urls == [spec.source["url"]]
    assert backend.checkpoint_path(spec).read_bytes() == published
    assert backends.is_cached(spec)


def test_missing_weights_tell_how_to_fetch_them(monkeypatch):
    spec = _elsewhere(get_spec("pspnet_r50_d8_voc"), b"never downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", _unreachable)
    with pytest.raises(WeightsUnavailable) as caught:
        backend.build(spec, CPU)
    reason, fix = describe_failure(spec, caught.value)
    assert "download.invalid" in reason and "no route to host" in reason
    assert fix.startswith(f"python -m seggallery fetch {spec.id}")


def test_same_backbone_preset_runs_end_to_end(fake_weights, photo, photo_png):
    """One click in the Compare tab: five decoders on VOC at the published scale, one area table with a row
    per VOC class found; the first model's mask is also mmseg's inference_model's."""
    model_ids = presets()["Same backbone, different decoder: VOC"]["models"]
    for model_id in model_ids:
        fake_weights(model_id)
    results = Engine(device=CPU).run_many(photo, model_ids)
    assert all(isinstance(result, Prediction) for result in results), results
    assert [result.spec.family for result in results] == ["fcn", "pspnet", "deeplabv3", "deeplabv3plus", "upernet"]
    for result in results:
        assert result.mask.shape == photo.shape[:2]
        assert result.mask.min() >= 0 and result.mask.max() < 21
    headers, rows = area_table(results)
    assert len(headers) == 2 + 2 * len(model_ids)
    assert {row[1] for row in rows} == {"voc21"}
    assert len({row[0] for row in rows}) == len(rows)  # one row per class, shared by the five models

    first = results[0].spec
    expected = mmseg_reference.inference_mask(mmseg_reference.load(first, backend.checkpoint_path(first)), photo_png)
    assert len(np.unique(expected)) > 1
    assert (results[0].mask == expected).mean() >= 0.999


def test_real_time_preset_runs_end_to_end(fake_weights):
    """ENet (CamVid) beside ERFNet, CGNet, Fast-SCNN and BiSeNetV2 (Cityscapes), as the Compare tab runs them, at their published
    scales: one area table with rows of both label sets, the agreement in the coarse classes both name.

    A 1024 x 64 band of the street photo keeps it cheap: fitted into 2048 x 1024 it becomes 2048 x 128."""
    from seggallery.evidence.agreement import agreement

    model_ids = presets()["Real-time road scenes"]["models"]
    for model_id in model_ids:
        fake_weights(model_id)
    band = np.ascontiguousarray(load_image(EXAMPLES / "street-city.jpg").pixels[416:480])
    results = Engine(device=CPU).run_many(band, model_ids)
    assert all(isinstance(result, Prediction) for result in results), results
    assert [(r.spec.family, r.spec.labels) for r in results] == [
        ("enet", "camvid11"), ("erfnet", "cityscapes19"), ("cgnet", "cityscapes19"), ("fast_scnn", "cityscapes19"),
        ("bisenetv2", "cityscapes19")]
    for result in results:
        assert result.mask.shape == band.shape[:2]
        assert len(np.unique(result.mask)) > 1
    _, rows = area_table(results)
    assert {row[1] for row in rows} == {"camvid11", "cityscapes19"}
    shared = agreement(results)
    assert shared is not None and not shared.space.native
    assert {"road", "vehicle", "person", "building", "sky"} <= set(shared.space.labels.names)
    assert shared.pixel_agreement.shape == (5, 5)
    assert shared.pixel_agreement[1, 2] == shared.pixel_agreement[2, 1] < 1


def test_an_mmseg_compare_has_confidence_and_entropy_maps(fake_weights, photo):
    """The Agreement section's confidence and entropy galleries and report.json's mean_confidence for mmseg
    models (they had none: the uncertainty code did not understand MmsegSegmenter's (scores, size) output).
    The maps are checked against the decode head's own scores, softmaxed here."""
    from seggallery.report import model_report
    from seggallery.ui.evidence import _uncertainty_galleries

    model_id = "pspnet_r50_d8_voc"
    fake_weights(model_id)
    engine = Engine(device=CPU)
    result = engine.run(photo, model_id)
    assert isinstance(result, Prediction), getattr(result, "reason", "")
    assert result.confidence is not None and result.entropy is not None
    segmenter, _ = engine.segmenter(model_id)
    with torch.inference_mode():
        scores, _ = segmenter.forward(segmenter.preprocess(photo))
    expected = scores[0].softmax(0).max(0).values.numpy()
    assert result.confidence.shape == expected.shape
    assert np.allclose(result.confidence, expected, atol=1e-5)
    assert 0.0 <= result.entropy.min() and result.entropy.max() <= 1.0
    assert model_report(result)["mean_confidence"] == pytest.approx(float(expected.mean()), abs=1e-5)
    confidence_gallery, entropy_gallery = _uncertainty_galleries([result], photo.shape[:2])
    assert len(confidence_gallery) == 1 and len(entropy_gallery) == 1
