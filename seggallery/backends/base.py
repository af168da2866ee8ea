"""What a backend is: the protocol every module in seggallery/backends answers, and the weight files it names.

A backend says which files a catalog entry's weights are (`files`: each with where it comes from and the
hash it must have), builds a plain Segmenter from them (`build`), and describes the source for people
(`describe_source`: the README and About tables). Everything else — whether the weights are cached,
downloading them, the allowlist of Hub repos, the Space card's model list, `pin` — is derived from
`files()` once, in seggallery/backends/__init__.py and weights.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

from ..catalog import ModelSpec

if TYPE_CHECKING:
    from ..runtime.segmenter import Segmenter


@dataclass(frozen=True)
class HubFile:
    """A file of a Hugging Face Hub repo at a revision (a commit SHA, or a branch an entry explains)."""

    repo: str
    revision: str
    filename: str
    repo_type: str = "model"
    sha256: str | None = None  # a prefix the content must hash to (a mirror of a file published elsewhere)
    label: str = "Hub"  # how errors name this origin ("mirror")

    def describe(self) -> str:
        return f"{self.repo}@{self.revision[:8]}/{self.filename}"


@dataclass(frozen=True)
class UrlFile:
    """A single published file, kept in torch hub's checkpoint cache under `name`, checked against `sha256`
    (the full hash, or the prefix its published name ends in)."""

    url: str
    sha256: str | None
    name: str
    label: str = "URL"

    def describe(self) -> str:
        return self.url


Origin = HubFile | UrlFile


@dataclass(frozen=True)
class WeightFile:
    """One file a model needs, with the places it may come from, tried in order (a mirror before the
    official URL); any of them gives the same bytes."""

    origins: tuple[Origin, ...]

    def __post_init__(self):
        if not self.origins:
            raise ValueError("a weight file needs at least one origin")

    @property
    def name(self) -> str:
        origin = self.origins[-1]
        return origin.filename if isinstance(origin, HubFile) else origin.name


@runtime_checkable
class Backend(Protocol):
    """What a backend module provides (checked for every backend by tests/test_backend_protocol.py)."""

    def files(self, spec: ModelSpec) -> list[WeightFile]:
        """Every weight, config and processor file the entry needs, with origin and hash."""

    def build(self, spec: ModelSpec, device: torch.device) -> Segmenter:
        """The plain (fp32, upstream layout) Segmenter, its files fetched through weights.fetch."""

    def describe_source(self, spec: ModelSpec) -> str:
        """Where the weights come from, as Markdown for the model tables."""


def hub_files(files: list[WeightFile]) -> list[HubFile]:
    return [origin for file in files for origin in file.origins if isinstance(origin, HubFile)]


def hub_source_text(origin: HubFile) -> str:
    pinned = origin.revision[:8] if len(origin.revision) == 40 else f"{origin.revision} (unpinned)"
    return f"[{origin.repo}](https://huggingface.co/{origin.repo}) @ {pinned}"
