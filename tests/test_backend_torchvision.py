"""torchvision backend: real loading code on fake weights, and the same mask as torchvision's own recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.io import read_image
from torchvision.models import segmentation as tv_segmentation

from seggallery.backends import is_cached
from seggallery.backends.torchvision import weights_enum
from seggallery.catalog import catalog, get_spec
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction

TORCHVISION_IDS = [spec.id for spec in catalog().values() if spec.backend == "torchvision" and spec.task == "semantic"]
# (the instance models, Mask R-CNN: tests/test_backend_torchvision_instances.py)


def upstream_mask(model_id: str, png_path) -> np.ndarray:
    """torchvision's documented recipe: weights.transforms() on read_image, model(batch)["out"], resized to the photo."""
    spec = get_spec(model_id)
    weights = weights_enum(spec)
    model = getattr(tv_segmentation, spec.source["builder"])(weights=weights).eval()
    image = read_image(str(png_path))
    with torch.inference_mode():
        logits = model(weights.transforms()(image).unsqueeze(0))["out"]
        logits = F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].numpy()


@pytest.mark.parametrize("model_id", TORCHVISION_IDS)
def test_mask_equals_torchvision_reference(model_id, fake_weights, photo, photo_png):
    fake_weights(model_id)
    prediction = Engine(device=torch.device("cpu")).run(photo, model_id)
    assert isinstance(prediction, Prediction), getattr(prediction, "reason", "")
    assert prediction.mask.shape == photo.shape[:2]
    reference = upstream_mask(model_id, photo_png)
    assert np.array_equal(prediction.mask, reference)
    assert len(np.unique(prediction.mask)) > 1, "random weights still give a non-trivial map on a real photo"


def test_auxiliary_head_is_not_run(fake_weights):
    fake_weights("fcn_resnet50")
    segmenter, _ = Engine(device=torch.device("cpu")).segmenter("fcn_resnet50")
    assert segmenter.module.aux_classifier is None


def test_cache_status_follows_the_checkpoint_file(monkeypatch, tmp_path):
    from fakes import torchvision as fake_torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = get_spec("lraspp_mobilenet_v3_large")
    assert not is_cached(spec)
    fake_torchvision.write(spec)
    assert is_cached(spec)
