"""Damaged weight files in the local caches: find them by their hash, remove them, fetch them once more.

An interrupted copy, a full disk or a bad sector leaves a weight file that is truncated or altered. Both
caches name files by their content, so damage can be told apart from a bug without any network:
- the Hugging Face cache keeps each file as blobs/<hash>: the sha256 of the content for LFS files (the
  weights), the git blob sha1 for small files (configs);
- torch hub file names end in the first hex digits of the sha256 (fcn_resnet50_coco-1167a1af.pth).
A Hub file is checked every time it is handed out (hashing runs at disk speed, once per file and change);
a torch hub file is checked when loading it fails, the only way such damage shows (see backends.torchvision).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import torch

_verified: dict[tuple[str, int, int], bool] = {}  # (blob path, size, mtime_ns) -> content matches its name
_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1_of(path: Path) -> str:
    """The id git (and so the Hub) gives a small file: sha1 of 'blob <size>\\0' + content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_file_intact(path: str | os.PathLike) -> bool:
    """Does a file in the Hugging Face cache (a snapshot link or its blob) still hash to its blob name?

    Files outside the cache layout (a blob name that is no hash) cannot be checked and count as intact.
    """
    blob = Path(path).resolve()
    name = blob.name
    if not blob.is_file():
        return False
    if len(name) not in (40, 64) or any(c not in "0123456789abcdef" for c in name):
        return True
    stat = blob.stat()
    key = (str(blob), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _verified:
            return _verified[key]
    intact = (sha256_of(blob) if len(name) == 64 else git_blob_sha1_of(blob)) == name
    with _lock:
        _verified[key] = intact
    return intact


def remove_hub_file(path: str | os.PathLike) -> None:
    """Delete a snapshot link and the blob it points to, so that the next download writes both afresh."""
    link = Path(path)
    blob = link.resolve()
    for target in (link, blob):
        try:
            target.unlink()
        except FileNotFoundError:
            pass


def name_hash_prefix(name: str) -> str | None:
    """The sha256 prefix a published torch hub file name ends in (`fcn_resnet50_coco-1167a1af.pth` -> 1167a1af)."""
    match = torch.hub.HASH_REGEX.search(name)
    return match.group(1) if match and match.group(1) else None


def torch_hub_file_intact(path: str | os.PathLike, sha256_prefix: str | None = None) -> bool:
    """Does a torch hub checkpoint's sha256 start with `sha256_prefix` (by default, the prefix in its name)?

    Nothing to check against (no prefix given or in the name): True.
    """
    path = Path(path)
    prefix = sha256_prefix or name_hash_prefix(path.name)
    if prefix is None:
        return True
    return path.is_file() and sha256_of(path).startswith(prefix)
