"""Helpers shared by the fake-checkpoint writers."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch
from huggingface_hub import constants

_BUILT = Path(tempfile.mkdtemp(prefix="seggallery-fakes-"))
atexit.register(shutil.rmtree, _BUILT, ignore_errors=True)


def built_once(key: str, build: Callable[[Path], None]) -> Path:
    """The folder `build(folder)` filled for `key`, built on the first call of the session only.

    Fakes are seeded, so a rebuild would write the same bytes; tests that need a checkpoint in a
    fresh cache of their own then only pay for placing the files.
    """
    folder = _BUILT / key
    if not folder.is_dir():
        partial = _BUILT / f"{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        build(partial)
        partial.rename(folder)
    return folder


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


def torch_default_init(module: torch.nn.Module) -> None:
    """Re-initialise every layer as plain PyTorch would (Kaiming-uniform convolutions and linears).

    transformers initialises weights with std 0.02 and zero biases; with randomised BatchNorm
    statistics that collapses a small model's output to one class everywhere, and an all-one-class
    mask would make an equality test with a reference say nothing.
    """
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()


def calibrate_batchnorm(module: torch.nn.Module, run_batches) -> None:
    """Set BatchNorm running statistics to those of real inputs, as training leaves them.

    `run_batches()` runs the module in train mode on a few batches; each BatchNorm layer then holds
    the cumulative mean and variance it saw. Random statistics unrelated to the activations drive a
    deep random network's output to one class everywhere; measured ones keep its answer varied.
    """
    layers = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over all batches seen
    module.train()
    with torch.no_grad():
        run_batches()
    module.eval()
    for layer in layers:
        layer.momentum = 0.1


def fake_commit(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


def put_in_hub_cache(
    repo: str, revision: str, files: dict[str, Path], repo_type: str = "model", commit: str | None = None
) -> Path:
    """Lay files out as huggingface_hub's cache does: blobs/<sha256>, snapshots/<commit>/<name> -> blob.

    A branch revision such as "main" gets refs/<branch> pointing at `commit`, else at a made-up one.
    """
    folder = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo.replace('/', '--')}"
    commit = commit or (revision if len(revision) == 40 else fake_commit(repo))
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


@contextmanager
def missing_from_hub_cache(repo: str, revision: str, name: str, repo_type: str = "model"):
    """Within the block, one file of a cached snapshot is gone, as if its download had never happened."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, name, revision=revision, repo_type=repo_type)
    assert isinstance(found, str), f"{repo}@{revision}/{name} is not in the Hub cache"
    link = Path(found)
    target = os.readlink(link)
    link.unlink()
    try:
        yield
    finally:
        os.symlink(target, link)
