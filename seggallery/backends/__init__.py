"""How to build a runnable model from a ModelSpec: one module per library, one door for all of them.

Every backend module provides
    build(spec, device) -> Segmenter   load weights (downloading them on first use) and wrap the model
    is_cached(spec) -> bool            are all weight files in the local cache already?
    fetch(spec) -> None                download the weight files into the standard cache, load nothing
Adding a library means adding one module here and naming it in catalog.BACKENDS.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from ..catalog import ModelSpec
from ..engine import Segmenter
from ..safety import check_catalog_spec


class WeightsUnavailable(RuntimeError):
    """The weights are not in the local cache and could not be downloaded."""


def backend(spec: ModelSpec) -> ModuleType:
    return importlib.import_module(f"{__name__}.{spec.backend}")


def load_segmenter(spec: ModelSpec, device: torch.device) -> Segmenter:
    check_catalog_spec(spec)
    return backend(spec).build(spec, device)


def is_cached(spec: ModelSpec) -> bool:
    try:
        return backend(spec).is_cached(spec)
    except ImportError:
        return False


def fetch(spec: ModelSpec) -> None:
    check_catalog_spec(spec)
    backend(spec).fetch(spec)


def fetch_command(spec: ModelSpec) -> str:
    return f"python -m seggallery fetch {spec.id}"


def describe_failure(spec: ModelSpec, error: BaseException) -> tuple[str, str]:
    """A reason a user can act on, and the command that fixes it (empty when there is none)."""
    if isinstance(error, WeightsUnavailable):
        return (
            f"The weights of {spec.name} are not in the local cache and could not be downloaded: {error}",
            f"{fetch_command(spec)}   (run it where the network can reach the weights' host)",
        )
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return (
            f"{spec.name} ran out of memory on this device, also at a lower resolution.",
            "Use a smaller image, fewer models at once, or SEGGALLERY_DEVICE=cpu.",
        )
    if isinstance(error, ImportError):
        return (f"{spec.name} needs a package that is not installed: {error}", "pip install -r requirements.txt")
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return (f"{spec.name} failed: {type(error).__name__}: {message}"[:500], "")
