"""Hugging Face Hub files at a pinned revision, in the standard cache ($HF_HOME), named exactly.

A catalog entry's source says `repo`, `revision` (a full commit SHA) and `files`; the backends fetch
those files and nothing else (through weights.py), so what runs is exactly what the catalog names. Every
file handed out is checked against its content hash first (integrity.py); a damaged one is fetched again once.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from ..runtime.download_progress import ReportingTqdm
from ..runtime.results import WeightsUnavailable
from ..safety import check_hub_name
from . import integrity


def cached_file(repo: str, revision: str, filename: str, repo_type: str = "model") -> Path | None:
    found = try_to_load_from_cache(repo, filename, revision=revision, repo_type=repo_type)
    return Path(found) if isinstance(found, str) else None


def fetch_file(repo: str, revision: str, name: str, repo_type: str = "model") -> Path:
    """A cached file whose content still matches its hash; a damaged one is removed and fetched once more."""
    check_hub_name(repo, name)
    path = _hf_download(repo, revision, name, repo_type)
    if integrity.hub_file_intact(path):
        return path
    integrity.remove_hub_file(path)
    damaged = f"the cached {repo}/{name} was damaged (its content no longer matches its hash) and has been removed"
    try:
        path = _hf_download(repo, revision, name, repo_type)  # no longer cached: downloaded afresh
    except WeightsUnavailable as error:
        raise WeightsUnavailable(f"{damaged}; fetching it again failed: {error}") from error
    if not integrity.hub_file_intact(path):
        integrity.remove_hub_file(path)
        raise WeightsUnavailable(f"{damaged}, and the copy fetched again was damaged too")
    return path


def _hf_download(repo: str, revision: str, name: str, repo_type: str) -> Path:
    try:
        return Path(hf_hub_download(repo, name, revision=revision, repo_type=repo_type, tqdm_class=ReportingTqdm))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise WeightsUnavailable(f"{repo}@{revision[:8]}/{name}: {type(error).__name__}: {error}") from error
