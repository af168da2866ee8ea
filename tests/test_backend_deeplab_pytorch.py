"""The deeplab_pytorch backend against kazuto1011/deeplab-pytorch's own code (tests/deeplab_pytorch_reference.py).

The fake checkpoint is that repository's MSC(DeepLabV2) with random weights, saved as its release files
are (tests/fakes/deeplab_pytorch.py). SegGallery loads it with strict keys into seggallery/archs/deeplabv2
and runs its pipeline; the reference runs demo.py's preprocessing and inference. The test size is 129
instead of 513 (a quarter: ResNet-101 at output stride 8 costs seconds per 513 input on a CPU); both sides
get the same size, and at 129 the 1/8 map (17 x 11) is still wider than ASPP's rate 6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from deeplab_pytorch_reference import DeepLabV2_ResNet101_MSC, inference, preprocessing
from fakes.deeplab_pytorch import reference_model

from seggallery.archs.deeplabv2 import deeplabv2_resnet101_msc
from seggallery.backends import deeplab_pytorch as backend
from seggallery.catalog import get_spec
from seggallery.runtime.results import Prediction

CPU = torch.device("cpu")
TEST_SIZE = 129
# COCO's thing ids that were withdrawn before release: in the 182 outputs, never supervised
WITHDRAWN = {11: "street sign", 25: "hat", 28: "shoe", 29: "eye glasses", 44: "plate", 65: "mirror", 67: "window",
             68: "desk", 70: "door", 82: "blender", 90: "hair brush"}


@pytest.mark.parametrize("outputs", [21, 182])
def test_module_has_the_upstream_state_dict_layout(outputs):
    with torch.device("meta"):  # layout only: no memory, no initialisation cost
        ours = deeplabv2_resnet101_msc(outputs).state_dict()
        theirs = DeepLabV2_ResNet101_MSC(n_classes=outputs).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[key].shape == theirs[key].shape for key in ours)


def _run_both(spec, photo, size, fake_weights):
    fake_weights(spec.id)
    ours = backend.build(spec, CPU)  # strict load of the fake release file
    ours.size = size
    theirs = reference_model(spec)
    mean = spec.preprocess["mean_bgr"]
    with torch.no_grad():
        inputs = ours.preprocess(photo)
        outputs = ours.forward(inputs)
        expected_inputs, _raw = preprocessing(np.ascontiguousarray(photo[:, :, ::-1]), CPU, size, mean)  # demo reads BGR
        expected_logits = theirs(expected_inputs)
        expected_labels = inference(theirs, expected_inputs)
    return ours, inputs, outputs, expected_inputs, expected_logits, expected_labels


def test_voc_pipeline_matches_demo_py(photo, fake_weights):
    spec = get_spec("deeplabv2_r101_voc")
    ours, inputs, outputs, expected_inputs, expected_logits, expected_labels = _run_both(spec, photo, TEST_SIZE, fake_weights)
    assert inputs.shape == expected_inputs.shape == (1, 3, TEST_SIZE, 97)
    torch.testing.assert_close(inputs, expected_inputs, rtol=0, atol=1e-4)
    scores = ours.class_scores(outputs)
    assert scores.shape == expected_logits.shape and scores.shape[1] == 21
    torch.testing.assert_close(scores, expected_logits, rtol=0, atol=1e-4)
    labels = ours.postprocess(outputs, expected_labels.shape).numpy()
    assert len(np.unique(expected_labels)) > 3, "random weights that predict one class would prove little"
    assert (labels == expected_labels).mean() >= 0.999
    result = ours.predict(photo)  # the whole pipeline, at the photo's size
    assert isinstance(result, Prediction)
    assert result.mask.shape == photo.shape[:2] and set(np.unique(result.mask)) <= set(range(21))


def test_cocostuff_drops_the_eleven_unsupervised_outputs():
    """The 182 outputs (layout checked above) minus COCO's 11 withdrawn ids are cocostuff171's classes in order.

    The pipeline is the VOC entry's; only the channel selection differs, so it is checked on a score tensor
    instead of a second 180 MB random ResNet-101."""
    spec = get_spec("deeplabv2_r101_cocostuff164k")
    names = spec.label_set.names
    assert not set(WITHDRAWN.values()) & set(names)
    used = backend.outputs_used(spec)
    assert len(used) == len(names) == 171 and not set(WITHDRAWN) & set(used) and used == sorted(used)
    segmenter = backend.DeepLabV2Segmenter(spec, torch.nn.Identity(), CPU)
    logits = torch.randn(1, 182, 5, 7)
    scores = segmenter.class_scores((logits, (40, 56)))
    torch.testing.assert_close(scores, logits[:, used], rtol=0, atol=0)
    assert segmenter.postprocess((logits, (40, 56)), (80, 112)).max() < 171
