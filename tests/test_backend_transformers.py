"""The transformers backend against transformers' own recommended inference, on every catalog entry.

The reference is what the model cards show: the processor class and the model class loaded with
from_pretrained(repo, revision=...), processor(images=PIL image), model(**inputs) and
processor.post_process_semantic_segmentation(outputs, target_sizes=[(h, w)]), reading the same Hub
cache by repo id as a user's script would (HF_HUB_OFFLINE=1 is set by conftest).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from backend_checks import (
    CPU,
    assert_absent_weights_give_the_fetch_command,
    assert_is_cached_follows_the_files,
    assert_masks_equal,
)
from fakes import transformers as fake_transformers
from PIL import Image

from seggallery.catalog import catalog, get_spec
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction

TRANSFORMERS_IDS = [spec.id for spec in catalog().values() if spec.backend == "transformers"]
SEMANTIC_IDS = [model_id for model_id in TRANSFORMERS_IDS if get_spec(model_id).task == "semantic"]
PANOPTIC_IDS = [model_id for model_id in TRANSFORMERS_IDS if get_spec(model_id).task == "panoptic"]
WITH_SECOND_REPO = [model_id for model_id in TRANSFORMERS_IDS if "extra" in get_spec(model_id).source]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device=CPU)


def card_processor_class(source: dict):
    """The class the model cards load: the named processor, else <Model>ImageProcessor (no Auto class)."""
    name = source.get("processor_class") or source["model_class"].split("For")[0] + "ImageProcessor"
    return getattr(transformers, name)


def model_card_inference(source: dict, image_path) -> tuple[dict, np.ndarray]:
    """The model inputs and the mask, computed as the model cards show."""
    repo, revision = source["repo"], source["revision"]
    processor = card_processor_class(source).from_pretrained(repo, revision=revision)
    model = getattr(transformers, source["model_class"]).from_pretrained(repo, revision=revision)
    image = Image.open(image_path)
    task = {"task_inputs": [source["task"]]} if "task" in source else {}
    inputs = processor(images=image, return_tensors="pt", **task)
    with torch.no_grad():
        outputs = model(**inputs)
    mask = processor.post_process_semantic_segmentation(outputs, target_sizes=[(image.height, image.width)])[0]
    return dict(inputs), mask.numpy()


@pytest.mark.parametrize("model_id", SEMANTIC_IDS)
def test_mask_equals_the_model_cards_inference(model_id, fake_weights, photo, photo_png, engine):
    spec = get_spec(model_id)
    fake_weights(model_id)
    result = engine.run(photo, model_id)
    expected_inputs, expected_mask = model_card_inference(spec.source, photo_png)
    assert_masks_equal(result, expected_mask, photo)
    # The model saw exactly what the processor makes of the PIL image (tensors, task tokens included).
    segmenter, _ = engine.segmenter(model_id)
    assert segmenter.on_device, "the processor takes the photo as a tensor on the model's device (on-device preprocessing)"
    inputs = segmenter.preprocess(photo)
    extra = getattr(segmenter, "EXTRA_INPUTS", ())  # the photo's size beside EoMT's windows: not a model input
    assert inputs.keys() - set(extra) == expected_inputs.keys()
    for name, expected in expected_inputs.items():
        torch.testing.assert_close(inputs[name], expected, rtol=0, atol=0, msg=f"{model_id}: {name} differs")


@pytest.mark.parametrize("model_id", TRANSFORMERS_IDS)
def test_is_cached_follows_the_files(model_id, empty_hub_cache, photo):
    assert_is_cached_follows_the_files(get_spec(model_id), fake_transformers.write, photo)


@pytest.mark.parametrize("model_id", TRANSFORMERS_IDS)
def test_absent_weights_give_a_failure_with_the_fetch_command(model_id, empty_hub_cache, photo):
    assert_absent_weights_give_the_fetch_command(get_spec(model_id), photo)


@pytest.mark.parametrize("model_id", WITH_SECOND_REPO)
def test_second_repo_is_read_at_its_pinned_revision(model_id, empty_hub_cache, photo):
    """`seggallery fetch` caches the second repo's files at the pinned commit only, with no refs/main.
    Left to itself OneFormer's image processor would look the class-info file up on main: the
    backend must not need that branch."""
    spec = get_spec(model_id)
    fake_transformers.write(spec)
    extra = spec.source["extra"]
    (empty_hub_cache / f"{extra['repo_type']}s--{extra['repo'].replace('/', '--')}" / "refs" / "main").unlink()
    result = Engine(device=CPU).run(photo, model_id)
    assert isinstance(result, Prediction), getattr(result, "reason", result)


@pytest.mark.parametrize("model_id", TRANSFORMERS_IDS)
def test_catalog_preprocess_describes_the_processor_that_runs(model_id, fake_weights, engine):
    """The catalog's `preprocess` is documentation; the image processor loaded from the repo is what runs."""
    doc = get_spec(model_id).preprocess
    fake_weights(model_id)
    processor = engine.segmenter(model_id)[0].processor
    processor = getattr(processor, "image_processor", processor)
    size, crop = processor.size, getattr(processor, "crop_size", None)
    if "resize" in doc:
        assert (size.height, size.width) == tuple(doc["resize"])
    if "resize_short_side" in doc:
        assert size.shortest_edge == doc["resize_short_side"]
    assert size.longest_edge == doc.get("max_long_side")
    assert bool(getattr(processor, "do_center_crop", False)) == ("center_crop" in doc)
    if "center_crop" in doc:
        assert (crop.height, crop.width) == tuple(doc["center_crop"])
    assert bool(processor.do_normalize) == ("mean" in doc)
    if "mean" in doc:
        unit = 255.0 if doc.get("scale") == "0-255" else 1.0  # the processor rescales to 0-1 first
        np.testing.assert_allclose(np.array(processor.image_mean) * unit, doc["mean"], rtol=1e-6)
        np.testing.assert_allclose(np.array(processor.image_std) * unit, doc["std"], rtol=1e-6)
    assert bool(getattr(processor, "do_flip_channel_order", False)) == (doc.get("channel_order") == "BGR")


@pytest.mark.parametrize("model_id", TRANSFORMERS_IDS)
def test_checkpoint_classes_match_the_label_set(model_id, fake_weights):
    """id2label of the (fake) checkpoint names the label set's classes in order, as the real ones do."""
    spec = get_spec(model_id)
    fake_weights(model_id)
    config = transformers.AutoConfig.from_pretrained(spec.source["repo"], revision=spec.source["revision"])
    assert [config.id2label[i] for i in range(len(config.id2label))] == list(spec.label_set.names)


@pytest.mark.parametrize("model_id", PANOPTIC_IDS)
def test_panoptic_segments_equal_the_model_cards_inference(model_id, fake_weights, photo, photo_png, engine):
    """The card's panoptic call (post_process_panoptic_segmentation with its defaults): every segment is one
    instance with the same pixels, class and score; the label map is the segments' classes, and the card's
    semantic post-processing of the same outputs where no segment was kept."""
    spec = get_spec(model_id)
    fake_weights(model_id)
    result = engine.run(photo, model_id)
    assert isinstance(result, Prediction), getattr(result, "reason", result)
    repo, revision = spec.source["repo"], spec.source["revision"]
    processor = card_processor_class(spec.source).from_pretrained(repo, revision=revision)
    model = getattr(transformers, spec.source["model_class"]).from_pretrained(repo, revision=revision)
    image = Image.open(photo_png)
    with torch.no_grad():
        outputs = model(**processor(images=image, return_tensors="pt", task_inputs=["panoptic"]))
    size = [(image.height, image.width)]
    panoptic = processor.post_process_panoptic_segmentation(outputs, target_sizes=size)[0]
    segments = panoptic["segments_info"]
    assert len({info["label_id"] for info in segments}) > 1, "segments of one class would make the comparison say little"
    segmentation = panoptic["segmentation"].numpy()
    np.testing.assert_array_equal(result.instances.masks, np.stack([segmentation == info["id"] for info in segments]))
    np.testing.assert_array_equal(result.instances.labels, [info["label_id"] for info in segments])
    np.testing.assert_allclose(result.instances.scores, [info["score"] for info in segments], rtol=1e-6)
    expected = processor.post_process_semantic_segmentation(outputs, target_sizes=size)[0].numpy()
    for info in segments:
        expected[segmentation == info["id"]] = info["label_id"]
    assert_masks_equal(result, expected, photo)
    box = result.instances.boxes[0]  # x0, y0, x1, y1 around the first segment's pixels
    rows, cols = np.nonzero(result.instances.masks[0])
    assert tuple(box) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_eomt_segments_overlapping_windows_in_either_orientation(fake_weights, photo, tmp_path, engine):
    """EoMT's processor cuts the resized photo into 512x512 windows along its long side; the backend stitches
    them as its post-processing does, for a portrait (windows stacked) and a landscape (side by side) photo."""
    from seggallery.backends.transformers import WindowSegmenter

    spec = get_spec("eomt_large_ade")
    fake_weights(spec.id)
    segmenter, _ = engine.segmenter(spec.id)
    assert isinstance(segmenter, WindowSegmenter)
    landscape = np.ascontiguousarray(photo.transpose(1, 0, 2))  # 384 x 512
    Image.fromarray(landscape).save(tmp_path / "landscape.png")
    windows = segmenter.preprocess(landscape)
    assert windows["pixel_values"].shape == (2, 3, 512, 512)  # resized to 512 x 682: two windows
    (_, first_start, first_end), (_, second_start, second_end) = (offsets.tolist() for offsets in windows["patch_offsets"])
    assert (first_start, second_end) == (0, 682) and second_start < first_end, "the two windows overlap"
    with torch.inference_mode():
        assert segmenter.forward(windows).first_window == (0.0, 0.0, 1.0, 512 / 682)  # left: what the live view shows
    _, expected = model_card_inference(spec.source, tmp_path / "landscape.png")
    assert_masks_equal(engine.run(landscape, spec.id), expected, landscape)


def test_a_checkpoint_that_lacks_weights_is_refused(fake_weights, tmp_path):
    """from_pretrained would fill missing weights at random and only warn; the backend refuses instead."""
    import shutil

    from safetensors.torch import load_file, save_file

    from seggallery.backends.transformers import _download, load_model

    spec = get_spec("segformer_b0_ade")
    fake_weights(spec.id)
    snapshot, _ = _download(spec)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(snapshot / name, folder / name)
    assert load_model(spec, folder) is not None
    tensors = load_file(folder / "model.safetensors")
    dropped = next(key for key in tensors if key.startswith("decode_head.classifier"))
    del tensors[dropped]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="does not fit SegformerForSemanticSegmentation: 1 missing keys"):
        load_model(spec, folder)
