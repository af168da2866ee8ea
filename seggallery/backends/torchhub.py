"""Checkpoint files in torch hub's cache ($TORCH_HOME/hub/checkpoints): fetched once, hash-checked, repaired.

torchvision, the mmsegmentation zoo and our native models all publish a single weights file at a URL.
Each is kept under its published file name in torch hub's cache, where torchvision itself looks. A file
comes from $SEGGALLERY_CHECKPOINT_DIR when the operator put it there (machines without network, a
Space's persistent storage), else from its URL; either way its sha256 must match what was published (the
prefix in the file name, or the catalog's full hash) before it enters the cache.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlparse

import torch

from .. import safety
from ..runtime.download_progress import ReportingTqdm
from ..runtime.results import WeightsUnavailable
from . import integrity

T = TypeVar("T")
LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError)

# torch.hub.download_url_to_file draws its bar with its module's `tqdm` and takes no bar class: ours is
# that bar plus a report to whoever waits for the file (runtime/download_progress.py); without a listener
# it is plain tqdm.
torch.hub.tqdm = ReportingTqdm


def file_name(url: str) -> str:
    return os.path.basename(urlparse(url).path)


def cache_path(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


name_hash_prefix = integrity.name_hash_prefix


def download(url: str, path: Path, sha256_prefix: str | None) -> Path:
    """Put the file at `path` unless it is there: from the checkpoint folder, else from `url`."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if _copy_from_checkpoint_dir(file_name(url), path, sha256_prefix):
        return path
    try:  # torch.hub writes to a temporary file and renames it only when the sha256 matches
        torch.hub.download_url_to_file(url, str(path), hash_prefix=sha256_prefix, progress=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a hash mismatch is a RuntimeError
        raise WeightsUnavailable(f"{url}: {error}") from error
    return path


def _copy_from_checkpoint_dir(published_name: str, path: Path, sha256_prefix: str | None) -> bool:
    """Copy the file named as its URL names it from $SEGGALLERY_CHECKPOINT_DIR to `path`, if it is there."""
    if not os.environ.get(safety.CHECKPOINT_DIR_ENV):
        return False
    try:
        local = safety.local_checkpoint(published_name)
    except safety.ModelNotAllowed:
        return False  # not there: download instead
    if sha256_prefix and not integrity.sha256_of(local).startswith(sha256_prefix):
        raise WeightsUnavailable(f"{local} is not the published {published_name}: its sha256 does not start with {sha256_prefix}")
    partial = path.with_name(path.name + ".partial")
    shutil.copyfile(local, partial)
    partial.replace(path)
    return True


def load_repairing(path: Path, load: Callable[[], T], refetch: Callable[[], object], sha256_prefix: str | None) -> T:
    """load(); when it fails on a file that no longer matches its hash, remove it, refetch once, load again.

    A file that matches its hash and still fails to load is a real error and is raised as it is.
    """
    try:
        return load()
    except LOAD_ERRORS as error:
        if isinstance(error, torch.OutOfMemoryError) or integrity.torch_hub_file_intact(path, sha256_prefix):
            raise
        path.unlink(missing_ok=True)
        damaged = f"the cached {path.name} was damaged (it fails to load and no longer matches its hash) and has been removed"
        try:
            refetch()
        except WeightsUnavailable as fetch_error:
            raise WeightsUnavailable(f"{damaged}; fetching it again failed: {fetch_error}") from error
    return load()
