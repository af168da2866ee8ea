"""The smp backend against smp's own recommended inference, on every smp catalog entry.

The reference is the smp-hub model card's snippet (smp.from_pretrained + A.Compose.from_pretrained +
model + bilinear resize + argmax), reading the same Hub cache by repo id as a user's script would.
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from backend_checks import (
    CPU,
    assert_absent_weights_give_the_fetch_command,
    assert_is_cached_follows_the_files,
    assert_masks_equal,
)
from fakes import smp as fake_smp
from PIL import Image

from seggallery.catalog import catalog, get_spec
from seggallery.runtime.engine import Engine

SMP_IDS = [spec.id for spec in catalog().values() if spec.backend == "smp"]

# albumentations_config_eval.json of smp-hub/segformer-b1-1024x1024-city-160k as the Hub serves it
# (written by albumentations 1.4.14; research notes hf_repos.md section 7).
REAL_EVAL_CONFIG_1024 = (
    '{"__version__": "1.4.14", "transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": ['
    '{"__class_fullname__": "Resize", "p": 1.0, "height": 1024, "width": 1024, "interpolation": 1}, '
    '{"__class_fullname__": "Normalize", "p": 1.0, "mean": [123.675, 116.28, 103.53], '
    '"std": [58.395, 57.12, 57.375], "max_pixel_value": 1.0, "normalization": "standard"}], '
    '"bbox_params": null, "keypoint_params": null, "additional_targets": {}, "is_check_shapes": true}}'
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(device=CPU)


def model_card_mask(repo: str, revision: str, image_path) -> np.ndarray:
    """smp-hub's model card inference, step by step; only the image comes from a file instead of a URL."""
    model = smp.from_pretrained(repo, revision=revision).eval()
    preprocessing = A.Compose.from_pretrained(repo, revision=revision)
    image = Image.open(image_path)
    np_image = np.array(image)
    normalized_image = preprocessing(image=np_image)["image"]
    input_tensor = torch.as_tensor(normalized_image)
    input_tensor = input_tensor.permute(2, 0, 1).unsqueeze(0)  # HWC -> BCHW
    with torch.no_grad():
        output_mask = model(input_tensor)
    mask = F.interpolate(output_mask, size=(image.height, image.width), mode="bilinear", align_corners=False)
    return mask.argmax(1)[0].numpy()


@pytest.mark.parametrize("model_id", SMP_IDS)
def test_mask_equals_the_model_cards_inference(model_id, fake_weights, photo, photo_png, engine):
    spec = get_spec(model_id)
    fake_weights(model_id)
    result = engine.run(photo, model_id)
    assert_masks_equal(result, model_card_mask(spec.source["repo"], spec.source["revision"], photo_png), photo)


@pytest.mark.parametrize("model_id", SMP_IDS)
def test_is_cached_follows_the_files(model_id, empty_hub_cache, photo):
    assert_is_cached_follows_the_files(get_spec(model_id), fake_smp.write, photo)


@pytest.mark.parametrize("model_id", SMP_IDS)
def test_absent_weights_give_a_failure_with_the_fetch_command(model_id, empty_hub_cache, photo):
    assert_absent_weights_give_the_fetch_command(get_spec(model_id), photo)


def test_fake_eval_transform_matches_the_real_hub_file(tmp_path, photo):
    """The fakes write their transform with albumentations 2; the Hub's files were written by 1.4.14."""
    (tmp_path / "albumentations_config_eval.json").write_text(REAL_EVAL_CONFIG_1024)
    real = A.Compose.from_pretrained(str(tmp_path))
    ours = fake_smp.eval_transform(1024, 1024)
    assert repr(real) == repr(ours)
    np.testing.assert_array_equal(real(image=photo)["image"], ours(image=photo)["image"])


@pytest.mark.parametrize("model_id", SMP_IDS)
def test_the_device_normalisation_gives_the_transforms_exact_input(model_id, fake_weights, photo, engine):
    """The Normalize runs on the device through a lookup table; the model input is the transform's, bit for bit."""
    fake_weights(model_id)
    segmenter, _ = engine.segmenter(model_id)
    assert segmenter.table is not None, "every smp-hub eval transform ends with a per-pixel Normalize"
    source = get_spec(model_id).source
    transform = A.Compose.from_pretrained(source["repo"], revision=source["revision"], key="eval")
    expected = torch.from_numpy(transform(image=photo)["image"]).permute(2, 0, 1).unsqueeze(0)
    inputs = segmenter.preprocess(photo)
    torch.testing.assert_close(inputs, expected, rtol=0, atol=0)
    assert inputs.stride() == expected.stride()


def test_a_transform_without_a_final_normalize_stays_on_the_host(photo):
    from seggallery.backends.smp import split_normalize

    transform = A.Compose([A.Normalize(normalization="image"), A.Resize(64, 64)])
    host, table = split_normalize(transform)
    assert host is transform and table is None
    per_image = A.Compose([A.Resize(64, 64), A.Normalize(normalization="image")])
    assert split_normalize(per_image) == (per_image, None)  # per-image statistics: no per-pixel table
