"""torchvision: a full-size random model saved under the weights URL's file name in $TORCH_HOME."""

from __future__ import annotations

import torch
from torchvision.models import segmentation as tv_segmentation

from seggallery.backends.torchvision import checkpoint_path, weights_enum

from .common import randomize_weights


def write(spec) -> None:
    torch.manual_seed(0)
    weights = weights_enum(spec)
    builder = getattr(tv_segmentation, spec.source["builder"])
    has_aux = not spec.source["builder"].startswith("lraspp")
    extra = {"aux_loss": True} if has_aux else {}
    model = builder(weights=None, weights_backbone=None, num_classes=len(weights.meta["categories"]), **extra)
    randomize_weights(model)
    path = checkpoint_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
