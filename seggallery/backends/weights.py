"""Weight files, generically: are they cached, where are they, fetch them (origins in order, hashes checked).

Backends hand their `files(spec)` here and get local paths back; nothing else in a backend downloads.
Hub files come from the Hugging Face cache, checked against their content hash every time they are handed
out (hub.py); URL files from torch hub's cache, sha256-checked before they enter it (torchhub.py). A Hub
copy of a file published elsewhere (a mirror) must also hash to the published prefix.
"""

from __future__ import annotations

from pathlib import Path

from ..runtime.results import WeightsUnavailable
from . import hub, integrity, torchhub
from .base import HubFile, Origin, UrlFile, WeightFile


def cached_origin(origin: Origin) -> Path | None:
    if isinstance(origin, HubFile):
        return hub.cached_file(origin.repo, origin.revision, origin.filename, origin.repo_type)
    path = torchhub.cache_path(origin.name)
    return path if path.is_file() else None


def local_path(file: WeightFile) -> Path | None:
    """The first origin's copy already in a local cache, else None."""
    for origin in file.origins:
        path = cached_origin(origin)
        if path is not None:
            return path
    return None


def is_cached(files: list[WeightFile]) -> bool:
    return all(local_path(file) is not None for file in files)


def fetch_origin(origin: Origin, check_copy: bool = True) -> Path:
    """The origin's file in its local cache, downloaded when missing. `check_copy`: a Hub copy of a file
    published elsewhere must hash to the published prefix (checked when it arrives, as torch.hub checks URLs)."""
    if isinstance(origin, UrlFile):
        return torchhub.download(origin.url, torchhub.cache_path(origin.name), origin.sha256)
    path = hub.fetch_file(origin.repo, origin.revision, origin.filename, origin.repo_type)
    if check_copy and origin.sha256:
        digest = integrity.sha256_of(path)
        if not digest.startswith(origin.sha256):
            integrity.remove_hub_file(path)
            raise WeightsUnavailable(f"{origin.repo}/{origin.filename} is not the published file: its sha256 "
                                     f"starts {digest[:8]}, the published file's {origin.sha256}")
    return path


def fetch_file(file: WeightFile) -> Path:
    """The file's local path: a cached copy when there is one, else from each origin in turn until one works.

    A cached copy that turns out damaged has already been fetched once more by its cache (hub.py,
    torchhub.py); when that fails too, the other origins are tried and every reason is reported.
    """
    errors: list[str] = []
    tried: set[Origin] = set()
    cached = next((origin for origin in file.origins if cached_origin(origin) is not None), None)
    if cached is not None:
        try:
            return fetch_origin(cached, check_copy=False)  # a Hub file's content hash is still checked
        except WeightsUnavailable as error:
            tried.add(cached)
            errors.append(_reason(file, cached, error))
    for origin in file.origins:
        if origin in tried:
            continue
        try:
            return fetch_origin(origin)
        except WeightsUnavailable as error:
            errors.append(_reason(file, origin, error))
    raise WeightsUnavailable("; ".join(errors))


def _reason(file: WeightFile, origin: Origin, error: Exception) -> str:
    return f"{origin.label}: {error}" if len(file.origins) > 1 else str(error)


def fetch(files: list[WeightFile]) -> list[Path]:
    """Every file's local path, in order, downloading what is missing."""
    return [fetch_file(file) for file in files]


def snapshot_folder(path: Path, filename: str) -> Path:
    """The Hub snapshot folder that holds `filename` (which may name a sub-folder) at `path`."""
    return path.parents[len(Path(filename).parts) - 1]
