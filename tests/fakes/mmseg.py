"""mmseg: mmsegmentation's own model for the entry (built from the wheel's config, random weights), saved
as the model zoo saves it ({'meta', 'state_dict'}) under the published file name in $TORCH_HOME.

Where mmsegmentation is not installed (the GPU machine of `python -m seggallery.gpucheck` has no room for
it and mmcv), a stand-in is saved instead: SegGallery's own module for the entry with random weights, its
keys renamed back to the zoo's. It loads through exactly the same code; only the independent reference
behind the tests' numbers is missing, which the GPU check does not need (it compares the model with itself
on two devices).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch

from seggallery.archs.encoder_decoder import BACKBONES
from seggallery.archs.heads.common import Scale
from seggallery.backends.mmseg import build_module, checkpoint_path
from seggallery.gpucheck.environment import importable

from .common import calibrate_batchnorm, randomize_weights

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


def write(spec) -> None:
    path = checkpoint_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not importable("mmseg"):
        torch.save(stand_in_checkpoint(spec), path)
        return
    import mmseg_reference

    model = mmseg_reference.random_model(spec)
    torch.save(mmseg_reference.official_checkpoint(spec, model), path)


@cache
def calibration_batch() -> torch.Tensor:
    """The astronaut example at 128 x 128 and its mirror image, normalised as mmseg normalises its input."""
    from PIL import Image

    image = Image.open(EXAMPLES / "people-astronaut.jpg").convert("RGB").resize((128, 128), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    normalised = (pixels - mean) / std
    return torch.stack([normalised, normalised.flip(-1)])


def stand_in_checkpoint(spec) -> dict:
    """Our module for the entry, random but answering with several classes, as {'meta', 'state_dict'}
    with the zoo's key names (the auxiliary head, which the backend drops, is simply absent)."""
    torch.manual_seed(0)
    module = build_module(spec)
    randomize_weights(module)
    with torch.no_grad():  # the attention modules' scales (DANet, CCNet) start at 0: switch the attention on
        for layer in module.modules():
            if isinstance(layer, Scale):
                layer.scale.fill_(1.0)
    calibrate_batchnorm(module, lambda: module(calibration_batch()))
    with torch.no_grad():  # as the reference fake does: large enough for the bias not to decide every pixel
        classifier = module.decode_head.conv_seg
        classifier.weight.copy_(torch.randn(classifier.weight.shape, generator=torch.Generator().manual_seed(0)))
    backbone = BACKBONES[spec.source["backbone"]]
    state = {}
    for key, value in module.state_dict().items():
        if key.startswith("backbone."):
            key = "backbone." + backbone.mmseg_key(key[len("backbone."):])
        state[key] = value
    return {"meta": {"note": "SegGallery stand-in: random weights in the model zoo's layout"}, "state_dict": state}
