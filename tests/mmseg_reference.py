"""mmsegmentation 1.2.2 itself, as the independent reference for SegGallery's mmseg backend (tests only).

`import mmseg.models` imports mmcv's compiled ops (`mmcv._ext`), which the pure-Python mmcv-lite wheel
does not ship. None of the catalog's models calls one, so a stand-in module whose attributes are
functions raising NotImplementedError is enough; any call to a compiled op would fail loudly.

Models are built from the config files inside the wheel (mmseg/.mim/configs), with pretrained=None and
BN instead of SyncBN (numerically the same at inference; SyncBN needs a process group).
"""

from __future__ import annotations

import copy
import importlib.machinery
import os
import sys
import types
import zlib
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from seggallery.catalog import ModelSpec


def _install_mmcv_ext_stand_in() -> None:
    if "mmcv._ext" in sys.modules:
        return
    ext = types.ModuleType("mmcv._ext")
    # A spec without a loader: mmengine's mmcv_full_available() then answers False instead of failing.
    ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", loader=None)

    def __getattr__(name: str):
        if name.startswith("__"):  # inspect, copy and pickle probe dunders: they must not exist
            raise AttributeError(name)

        def compiled_op(*args, **kwargs):
            raise NotImplementedError(f"mmcv._ext.{name} is a compiled mmcv op, absent from mmcv-lite")

        compiled_op.__name__ = name
        return compiled_op

    ext.__getattr__ = __getattr__
    sys.modules["mmcv._ext"] = ext


def _import_mmseg():
    """mmseg, or a skip where the test-only dependencies are absent (a failure under CI, where they must be)."""
    _install_mmcv_ext_stand_in()
    try:
        import mmseg.apis
        import mmseg.models  # noqa: F401  (registers the models)
    except ImportError as error:
        message = f"mmsegmentation reference unavailable ({error}); pip install -r requirements-test.txt"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)
    return mmseg


mmseg = _import_mmseg()

from fakes.mmseg import calibration_batch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.apis import inference_model, init_model  # noqa: E402
from mmseg.registry import DATASETS, MODELS  # noqa: E402

CONFIGS = Path(mmseg.__file__).parent / ".mim" / "configs"


def config_path(spec: ModelSpec) -> Path:
    matches = list(CONFIGS.glob(f"*/{spec.source['config']}.py"))
    assert len(matches) == 1, f"{spec.id}: config {spec.source['config']} found {len(matches)} times in the wheel"
    return matches[0]


@cache
def _config(spec_id: str, path: Path) -> Config:
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    _replace_sync_bn(cfg.model)
    return cfg


def config(spec: ModelSpec) -> Config:
    """The wheel's config of this entry, with pretrained=None and BN for SyncBN (a fresh copy each call)."""
    return copy.deepcopy(_config(spec.id, config_path(spec)))


def _replace_sync_bn(node) -> None:
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_sync_bn(value)


def dataset_metainfo(spec: ModelSpec) -> dict:
    init_default_scope("mmseg")
    return DATASETS.get(config(spec).test_dataloader.dataset.type).METAINFO


def random_model(spec: ModelSpec) -> torch.nn.Module:
    """mmseg's model for this entry with random weights and BatchNorm layers that behave as trained ones do.

    Random BatchNorm statistics would leave the deeper maps nearly constant across the image (a random
    DeepLabV3+ then paints one class everywhere), so the statistics are measured instead: one
    training-mode pass with momentum 1 over a small real photo, after the affine parameters are
    randomised. The classifier gets weights large enough for its bias not to decide every pixel.
    The attention modules' learned scales (mmcv's Scale: DANet's gamma, CCNet's) start at 0, which would
    switch the attention off: they get random values in 0.5..1.5. A BatchNorm after global pooling (ASPP's
    image pooling, PSP's 1x1 bin) sees one value per image: its variance over the two-image batch is near
    0 in some channels, which at inference multiplies them by up to 1/sqrt(eps) and lets that branch
    decide every pixel (a random FastFCN painted one class). Its variance is floored at the layer's median.
    """
    from mmcv.cnn import Scale

    init_default_scope("mmseg")
    seed = zlib.crc32(spec.id.encode())
    torch.manual_seed(seed)
    model = MODELS.build(config(spec).model)
    generator = torch.Generator().manual_seed(seed)
    norms = [layer for layer in model.modules() if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, Scale):
                layer.scale.copy_(torch.rand((), generator=generator) + 0.5)
        for layer in norms:
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) + 0.5)
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 0.4 - 0.2)
            layer.momentum = 1.0
        model.train()
        pooled = set()
        hooks = [layer.register_forward_pre_hook(lambda layer, args: pooled.add(layer) if args[0][0, 0].numel() == 1 else None)
                 for layer in norms]
        features = model.extract_feat(calibration_batch())
        model.decode_head(features)
        for head in auxiliary_heads(model):
            head(features)
        for hook in hooks:
            hook.remove()
        for layer in norms:
            layer.momentum = 0.1
        for layer in pooled:
            layer.running_var.clamp_(min=float(layer.running_var.median()))
        classifier = model.decode_head.conv_seg
        classifier.weight.copy_(torch.randn(classifier.weight.shape, generator=generator))
        classifier.bias.copy_(torch.rand(classifier.bias.shape, generator=generator) * 0.2 - 0.1)
    model.eval()
    return model


def auxiliary_heads(model) -> list[torch.nn.Module]:
    """The model's training-only heads: none (ERFNet, CGNet), one, or several (a ModuleList)."""
    if not getattr(model, "with_auxiliary_head", False):
        return []
    head = model.auxiliary_head
    return list(head) if isinstance(head, torch.nn.ModuleList) else [head]


def official_checkpoint(spec: ModelSpec, model: torch.nn.Module) -> dict:
    """What the model zoo's .pth files hold: {'meta': {...}, 'state_dict': every weight, auxiliary head included}."""
    info = dataset_metainfo(spec)
    meta = {
        "mmseg_version": mmseg.__version__,
        "config": config_path(spec).read_text(),
        "CLASSES": tuple(info["classes"]),
        "PALETTE": [list(color) for color in info["palette"]],
        "iter": 0,
    }
    return {"meta": meta, "state_dict": model.state_dict()}


def load(spec: ModelSpec, checkpoint: Path) -> torch.nn.Module:
    """mmseg's own loader (init_model) reading a checkpoint file, on the CPU."""
    model = init_model(config(spec), str(checkpoint), device="cpu")
    model.eval()
    return model


def scores(model, x: torch.Tensor) -> torch.Tensor:
    """The decode head's scores at its own resolution, before any resize."""
    return model.decode_head(model.extract_feat(x))


@contextmanager
def pipeline_scale(model, scale: tuple[int, int]):
    """Run inference_model with another Resize scale in the model's test pipeline."""
    resize = next(t for t in model.cfg.test_pipeline if t["type"] == "Resize")
    original = resize["scale"]
    resize["scale"] = tuple(scale)
    try:
        yield
    finally:
        resize["scale"] = original


def inference_mask(model, image_path: Path) -> np.ndarray:
    """mmseg.apis.inference_model on an image file: the predicted label map at the image's size."""
    result = inference_model(model, str(image_path))
    return result.pred_sem_seg.data[0].cpu().numpy()


def preprocessed(spec: ModelSpec, image_path: Path) -> torch.Tensor:
    """The network input mmseg makes of an image file: test pipeline, then the model's data preprocessor."""
    init_default_scope("mmseg")
    cfg = config(spec)
    pipeline = Compose([t for t in cfg.test_pipeline if t["type"] != "LoadAnnotations"])
    data = pipeline({"img_path": str(image_path)})
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    batch = preprocessor({"inputs": [data["inputs"]], "data_samples": [data["data_samples"]]}, False)
    return batch["inputs"]
