"""How far a weights download has got, told to whoever is waiting for it (the Compare tab's status line).

Both libraries that download for us draw a tqdm bar per file: huggingface_hub takes the bar's class
(`tqdm_class=`), torch.hub uses its module's `tqdm`. `ReportingTqdm` is that bar, unchanged on the
terminal, that also hands each step to the listener of the current context (`reporting(listener)`), so
the thread that asked for a model hears about its own download and no other's.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

from tqdm.auto import tqdm

MIN_INTERVAL_S = 0.25  # a listener hears at most this often per file, and always at the end


@dataclass(frozen=True)
class DownloadState:
    """One file's download so far."""

    name: str  # the file's name where the library gives it, else ""
    done: int  # bytes
    total: int | None  # bytes; None when the server did not say
    elapsed_s: float

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    @property
    def remaining_s(self) -> float | None:
        """At the average rate so far; None until there is a rate and a total."""
        if not self.total or self.done <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, self.total - self.done) * self.elapsed_s / self.done

    def describe(self) -> str:
        """'model.safetensors: 12.3 of 97.8 MB, about 8 s left'."""
        size = f"{_mb(self.done)} of {_mb(self.total)} MB" if self.total else f"{_mb(self.done)} MB"
        left = self.remaining_s
        estimate = f", about {left:.0f} s left" if left is not None and self.done < (self.total or 0) else ""
        return f"{self.name + ': ' if self.name else ''}{size}{estimate}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"


Listener = Callable[[DownloadState], None]
_listener: ContextVar[Listener | None] = ContextVar("seggallery_download_listener", default=None)


@contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Downloads started in this context (this thread) call `listener` as they progress."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class ReportingTqdm(tqdm):
    """A tqdm bar that also tells the current context's listener, at most every MIN_INTERVAL_S."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._listener = _listener.get()
        self._started = self._told = time.monotonic()

    def update(self, n=1):
        shown = super().update(n)
        now = time.monotonic()
        finished = self.total is not None and self.n >= self.total
        if self._listener is not None and (finished or now - self._told >= MIN_INTERVAL_S):
            self._told = now
            name = str(self.desc or "").rstrip(": ").rsplit("/", 1)[-1]  # huggingface_hub: "(…)/model.safetensors"
            self._listener(DownloadState(name, int(self.n), _total(self.total), now - self._started))
        return shown


def _total(total) -> int | None:
    return int(total) if total else None
