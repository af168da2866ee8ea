"""Helpers shared by the fake-checkpoint writers."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch
from huggingface_hub import constants


def randomize_batchnorm(module: torch.nn.Module, seed: int = 0) -> None:
    """Give BatchNorm layers non-trivial running statistics, so that loading them is actually tested."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and layer.track_running_stats:
            layer.running_mean.copy_(torch.rand(layer.running_mean.shape, generator=generator) - 0.5)
            layer.running_var.copy_(torch.rand(layer.running_var.shape, generator=generator) + 0.5)


@torch.no_grad()
def randomize_weights(module: torch.nn.Module, seed: int = 0) -> None:
    """He-normal convolutions, random biases and BatchNorm affine terms and statistics.

    Default initialisations leave some heads (e.g. LR-ASPP) predicting one class everywhere, which would
    make a mask comparison trivially true; these weights give varied label maps on a real photo.
    """
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = layer.weight[0].numel()
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            if layer.bias is not None:
                layer.bias.copy_((torch.rand(layer.bias.shape, generator=generator) - 0.5) * 0.2)
        elif isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) + 0.5)
            layer.bias.copy_((torch.rand(layer.bias.shape, generator=generator) - 0.5) * 0.4)
    randomize_batchnorm(module, seed)


def fake_commit(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


def put_in_hub_cache(repo: str, revision: str, files: dict[str, Path], repo_type: str = "model") -> Path:
    """Lay files out as huggingface_hub's cache does: blobs/<sha256>, snapshots/<commit>/<name> -> blob.

    A branch revision such as "main" gets refs/<branch> pointing at a made-up commit.
    """
    folder = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo.replace('/', '--')}"
    commit = revision if len(revision) == 40 else fake_commit(repo)
    if commit != revision:
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / revision).write_text(commit)
    snapshot = folder / "snapshots" / commit
    for name, source in files.items():
        blob = folder / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snapshot
