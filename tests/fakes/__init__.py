"""Randomly initialised checkpoints written where each backend's real loader looks for them.

`install(model_id)` dispatches on the catalog entry's backend to `fakes/<backend>.py: write(spec)`,
once per model per test session. The files have the upstream names and formats (torch hub checkpoint
names, Hub cache snapshots), so the real loading code runs; only the numbers inside are random.
"""

from __future__ import annotations

import importlib

from seggallery.catalog import get_spec

_installed: set[str] = set()


def install(model_id: str) -> None:
    if model_id in _installed:
        return
    spec = get_spec(model_id)
    importlib.import_module(f"fakes.{spec.backend}").write(spec)
    _installed.add(model_id)
