"""smp-hub: a small random smp model of the checkpoint's class, saved the way the smp-hub repos are.

A real smp-hub repo holds `config.json` (`_model_class` + the constructor's arguments, written by
smp's save_pretrained), `model.safetensors` and `albumentations_config_eval.json` (Resize to a fixed
size with interpolation 1, then Normalize with 0-255 ImageNet statistics and max_pixel_value 1.0).
The fake writes the same three files with the same tools, placed in the Hub cache at the entry's
revision. Only the encoder is smaller than the real one, and the Resize is capped at TEST_SIDE.
"""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import segmentation_models_pytorch as smp
import torch

from seggallery.backends.smp import file_names as catalog_files

from .common import built_once, put_in_hub_cache, randomize_batchnorm

# family -> (smp class the real checkpoint's config.json names, small stand-in arguments).
# The real encoders are mit_b0 / mit_b2, tu-convnext_tiny and tu-vit_large_patch16_384.
SMALL_MODELS = {
    "segformer": ("Segformer", {"encoder_name": "mit_b0", "decoder_segmentation_channels": 64}),
    "upernet": ("UPerNet", {"encoder_name": "tu-test_convnext", "decoder_channels": 64}),
    "dpt": (
        "DPT",
        {
            "encoder_name": "tu-test_vit",
            "decoder_intermediate_channels": (16, 32, 64, 64),
            "decoder_fusion_channels": 16,
        },
    ),
}

# DPT-Large evaluates at 384 x 384 (smp's own test of smp-hub/dpt-large-ade20k feeds 384 x 384).
DEFAULT_RESIZE = {"dpt": [384, 384]}
TEST_SIDE = 256  # the real Resize (512 or 1024) costs seconds per forward on a shared 2-core CPU
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def eval_transform(height: int, width: int) -> A.Compose:
    """The smp-hub eval transform: a plain (aspect-ignoring) resize, then 0-255 ImageNet normalisation."""
    return A.Compose(
        [
            A.Resize(height, width, interpolation=1),
            A.Normalize(mean=MEAN, std=STD, max_pixel_value=1.0),
        ]
    )


def fake_resize(spec) -> tuple[int, int]:
    height, width = spec.preprocess.get("resize", DEFAULT_RESIZE.get(spec.family, [512, 512]))
    return min(height, TEST_SIDE), min(width, TEST_SIDE)


def write(spec) -> None:
    folder = built_once(spec.id, lambda folder: _build(spec, folder))
    put_in_hub_cache(spec.source["repo"], spec.source["revision"], {name: folder / name for name in catalog_files(spec)})


def _build(spec, folder: Path) -> None:
    if spec.family not in SMALL_MODELS:
        raise NotImplementedError(f"tests/fakes/smp.py has no small stand-in for family {spec.family!r} ({spec.id})")
    class_name, arguments = SMALL_MODELS[spec.family]
    torch.manual_seed(0)
    model = getattr(smp, class_name)(encoder_weights=None, classes=len(spec.label_set), **arguments)
    randomize_batchnorm(model)
    model.save_pretrained(folder)  # config.json with _model_class, model.safetensors (and a model card)
    eval_transform(*fake_resize(spec)).save_pretrained(folder, key="eval")
    missing = [name for name in catalog_files(spec) if not (folder / name).is_file()]
    assert not missing, f"{spec.id}: save_pretrained did not write {missing}"
