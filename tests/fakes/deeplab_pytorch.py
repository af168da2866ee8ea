"""deeplab_pytorch: kazuto1011/deeplab-pytorch's own MSC(DeepLabV2) (tests/deeplab_pytorch_reference.py) with
random weights, saved as its release files are: a plain state_dict under the published file name."""

from __future__ import annotations

import shutil
from functools import cache

import deeplab_pytorch_reference as reference
import torch

from fakes.common import built_once, randomize_weights
from seggallery.backends.deeplab_pytorch import checkpoint_path


def reference_model(spec) -> torch.nn.Module:
    """The upstream module with the fake's weights (seeded; built once per session)."""
    return _reference_model(int(spec.source["outputs"]))


@cache
def _reference_model(outputs: int) -> torch.nn.Module:
    model = reference.DeepLabV2_ResNet101_MSC(n_classes=outputs)
    randomize_weights(model, seed=13)
    with torch.no_grad():  # keep the 33 residual sums' activations, and so the scores, at a readable scale
        for name, layer in model.named_modules():
            if name.endswith("increase.bn"):
                layer.weight.mul_(0.15)
                layer.bias.mul_(0.15)
        for branch in model.base.aspp.children():
            branch.weight.mul_(0.02)
    return model.eval()


def write(spec) -> None:
    name = spec.source["file"]
    folder = built_once(f"deeplab_pytorch-{spec.id}", lambda out: torch.save(reference_model(spec).state_dict(), out / name))
    target = checkpoint_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / name, target)
