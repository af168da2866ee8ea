"""Our own architectures (seggallery/archs) with weights from a plain URL, checked against a sha256.

A catalog entry names `source = { url, sha256, file }`: the file is downloaded once into torch hub's
checkpoint cache ($TORCH_HOME/hub/checkpoints/<file>), its sha256 is checked on download and on every
load (a truncated or altered file is refused), and it is read with torch.load(weights_only=True). The
architecture is chosen by the entry's family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..catalog import ModelSpec
from ..integrity import sha256_of
from ..engine import Segmenter
from . import WeightsUnavailable


def _enet(num_classes: int) -> torch.nn.Module:
    from ..archs.enet import ENet

    return ENet(num_classes)


# family -> constructor(num_classes); the class count comes from the entry's label set
ARCHITECTURES: dict[str, Callable[[int], torch.nn.Module]] = {"enet": _enet}


def checkpoint_path(spec: ModelSpec) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.source["file"]


def is_cached(spec: ModelSpec) -> bool:
    return checkpoint_path(spec).is_file()


def fetch(spec: ModelSpec) -> None:
    """Download the file unless a copy with the right sha256 is cached; a damaged copy is replaced."""
    path = checkpoint_path(spec)
    if path.is_file():
        if sha256_of(path) == spec.source["sha256"]:
            return
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    url = spec.source["url"]
    try:  # torch.hub writes to a temporary file and renames it only when the whole sha256 matches
        torch.hub.download_url_to_file(url, str(path), hash_prefix=spec.source["sha256"], progress=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a hash mismatch is a RuntimeError
        raise WeightsUnavailable(f"{url}: {error}") from error


def load_state_dict(spec: ModelSpec) -> dict[str, torch.Tensor]:
    path = checkpoint_path(spec)
    actual = sha256_of(path)
    if actual != spec.source["sha256"]:
        raise WeightsUnavailable(
            f"{path} has sha256 {actual[:12]}..., the catalog expects {spec.source['sha256'][:12]}... (fetch replaces it)"
        )
    # map_location: checkpoints saved from a GPU must also load on a machine without one
    return torch.load(path, map_location="cpu", weights_only=True)


class NativeSegmenter(Segmenter):
    """Resize to the checkpoint's input size (when the photo differs), scale to [0, 1], optional mean/std."""

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device):
        super().__init__(spec, module, device)
        self.input_size = tuple(spec.preprocess["resize"])  # (height, width)
        self.mean = torch.tensor(spec.preprocess.get("mean", [0.0, 0.0, 0.0]), device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.preprocess.get("std", [1.0, 1.0, 1.0]), device=device).view(1, 3, 1, 1)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(image).to(self.device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        if tuple(tensor.shape[-2:]) != self.input_size:
            tensor = F.interpolate(tensor, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return (tensor - self.mean) / self.std


def build(spec: ModelSpec, device: torch.device) -> Segmenter:
    if spec.family not in ARCHITECTURES:
        raise ValueError(f"{spec.id}: no native architecture for family {spec.family!r} (have {', '.join(ARCHITECTURES)})")
    fetch(spec)
    model = ARCHITECTURES[spec.family](len(spec.label_set))
    model.load_state_dict(load_state_dict(spec), strict=True)
    return NativeSegmenter(spec, model, device)
