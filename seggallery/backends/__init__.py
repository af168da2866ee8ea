"""How to build a runnable model from a ModelSpec: one module per library (base.Backend), one door for all.

Every backend module answers the protocol in base.py: `files(spec)`, `build(spec, device)` and
`describe_source(spec)`. Everything else about weights is derived here from `files()`, the same way for
every backend: whether a model is cached, fetching it, the allowlist of Hub repos, the Space card's model
list. Backend modules are imported when first needed (so that listing the catalog does not import
transformers), from BACKEND_MODULES; adding a library means adding its module there (backends/README.md).
"""

from __future__ import annotations

import importlib
import time
from functools import cache

import torch

from ..catalog import BACKENDS, ModelSpec, catalog
from ..runtime.segmenter import Segmenter
from ..safety import ModelNotAllowed, check_catalog_spec, check_hub_name
from . import weights
from .base import Backend, HubFile, WeightFile, hub_files

BACKEND_MODULES = {name: f"{__name__}.{name}" for name in BACKENDS}


def backend(spec: ModelSpec) -> Backend:
    module = importlib.import_module(BACKEND_MODULES[spec.backend])
    if not isinstance(module, Backend):
        raise TypeError(f"{module.__name__} does not provide files, build and describe_source")
    return module


def files(spec: ModelSpec) -> list[WeightFile]:
    return backend(spec).files(spec)


def load_segmenter(spec: ModelSpec, device: torch.device) -> Segmenter:
    """The plain Segmenter of a catalog entry. Files not yet cached are fetched first, and the time that took
    is kept as the segmenter's `download_ms`, so that a first use can say what was download and what loading."""
    check_catalog_spec(spec)
    entry_files = files(spec)
    _check_origins(entry_files)
    download_ms = None
    if not weights.is_cached(entry_files):
        start = time.perf_counter()
        weights.fetch(entry_files)
        download_ms = (time.perf_counter() - start) * 1000.0
    segmenter = backend(spec).build(spec, device)
    segmenter.download_ms = download_ms
    return segmenter


def is_cached(spec: ModelSpec) -> bool:
    try:
        return weights.is_cached(files(spec))
    except ImportError:
        return False


def fetch(spec: ModelSpec) -> None:
    """Download a catalog entry's files into the standard caches; load nothing."""
    check_catalog_spec(spec)
    entry_files = files(spec)
    _check_origins(entry_files)
    weights.fetch(entry_files)


def describe_source(spec: ModelSpec) -> str:
    return backend(spec).describe_source(spec)


@cache
def catalog_hub_files() -> frozenset[HubFile]:
    """Every Hub file any catalog entry names (mirrors and second repos included): the allowlist.

    An entry whose backend cannot import here (its library is not installed) cannot load, so it names none:
    otherwise one missing library (smp on a GPU machine, say) would stop every Hub model from loading."""
    found: set[HubFile] = set()
    for spec in catalog().values():
        try:
            entry_files = files(spec)
        except ImportError:
            continue
        found.update(hub_files(entry_files))
    return frozenset(found)


def hub_repos(repo_type: str = "model") -> list[str]:
    """The Hub repos the catalog loads from (the Space card's `models:` list)."""
    return sorted({origin.repo for origin in catalog_hub_files() if origin.repo_type == repo_type})


def check_hub_file(repo: str, filename: str, repo_type: str = "model") -> None:
    """A Hub file may be fetched from a repo a catalog entry names, by a plain file name."""
    check_hub_name(repo, filename)
    if (repo, repo_type) not in {(origin.repo, origin.repo_type) for origin in catalog_hub_files()}:
        raise ModelNotAllowed(f"{repo} is not named by any catalog entry; only catalog weights are fetched")


def _check_origins(entry_files: list[WeightFile]) -> None:
    for origin in hub_files(entry_files):
        check_hub_file(origin.repo, origin.filename, origin.repo_type)
