"""torchvision: a full-size random model saved under the weights URL's file name in $TORCH_HOME.

Segmentation models are random throughout. A random Mask R-CNN finds nothing a test could compare (its
class scores are spread over 91 classes, its box regressions throw boxes off the photo), so the detector
fakes are random too but steered, deterministically: box regressions are zero (boxes are the anchors
and proposals themselves), and the box classifier's random weights are scaled to a small spread of
logits on the calibration photo, with biases that favour a few classes, so that on a real photo some
detections score above 0.5 and some below, of more than one class, and no 'N/A' class ever wins.
"""

from __future__ import annotations

import numpy as np
import torch

from seggallery.backends.torchvision import builder, checkpoint_path, weights_enum
from seggallery.images import load_image
from seggallery.runtime.speed import CALIBRATION_PHOTO

from .common import randomize_weights

# Mask R-CNN fakes: the spread of random class logits, and each favoured class's logit (background's is 1).
DETECTOR_LOGIT_SPREAD = {"maskrcnn_resnet50_fpn": 0.5, "maskrcnn_resnet50_fpn_v2": 0.6}
DETECTOR_FAVOURED = {"maskrcnn_resnet50_fpn": {"person": 5.0, "car": 4.8, "dog": 4.7},
                     "maskrcnn_resnet50_fpn_v2": {"person": 4.0, "car": 3.9, "dog": 3.8}}


def write(spec) -> None:
    torch.manual_seed(0)
    weights = weights_enum(spec)
    if spec.task == "instance":
        model = _steered_detector(spec, weights)
    else:
        has_aux = not spec.source["builder"].startswith("lraspp")
        extra = {"aux_loss": True} if has_aux else {}
        model = builder(spec)(weights=None, weights_backbone=None, num_classes=len(weights.meta["categories"]), **extra)
        randomize_weights(model)
    path = checkpoint_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)


@torch.no_grad()
def _steered_detector(spec, weights) -> torch.nn.Module:
    categories = weights.meta["categories"]
    model = builder(spec)(weights=None, weights_backbone=None, num_classes=len(categories))
    randomize_weights(model)
    for regression in (model.rpn.head.bbox_pred, model.roi_heads.box_predictor.bbox_pred):
        regression.weight.zero_()
        regression.bias.zero_()
    model.eval()
    features = []
    hook = model.roi_heads.box_head.register_forward_hook(lambda module, args, output: features.append(output))
    model([_calibration_tensor()])
    hook.remove()
    classifier = model.roi_heads.box_predictor.cls_score
    direction = torch.randn(classifier.weight.shape, generator=torch.Generator().manual_seed(1))
    spread = (features[0] @ direction.T).std()
    classifier.weight.copy_(direction * (DETECTOR_LOGIT_SPREAD[spec.source["builder"]] / spread))
    bias = torch.zeros(len(categories))
    bias[0] = 1.0
    bias[[i for i, name in enumerate(categories) if name == "N/A"]] = -20.0
    for name, logit in DETECTOR_FAVOURED[spec.source["builder"]].items():
        bias[categories.index(name)] = logit
    classifier.bias.copy_(bias)
    return model


def _calibration_tensor() -> torch.Tensor:
    pixels = load_image(CALIBRATION_PHOTO).pixels
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255
