"""Hugging Face ZeroGPU support, used only when the `spaces` package is importable.

On ZeroGPU a GPU is attached only while a function decorated with `spaces.GPU` runs, in a forked worker
whose arguments and results are pickled; what the worker loads is lost when it ends. So, as ZeroGPU
requires, models are moved to CUDA at import time (`preload`, where `spaces` defers the copy until a
GPU is attached), and the GPU function takes and returns plain data (a photo array, model ids,
Predictions with numpy masks). torch.compile is not used there. Elsewhere everything here is a no-op.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Callable, TypeVar

from ..catalog import ModelSpec, catalog, presets

F = TypeVar("F", bound=Callable)

GPU_DURATION_S = 60  # upper bound asked for per Compare (ZeroGPU's default); a cold model's load counts too
PRELOAD_ENV = "SEGGALLERY_PRELOAD"


def active() -> bool:
    """Running on ZeroGPU hardware: `spaces` sets SPACES_ZERO_GPU there."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true") and spaces_installed()


def spaces_installed() -> bool:
    return importlib.util.find_spec("spaces") is not None


def setup() -> None:
    """Import `spaces` before torch touches CUDA, as ZeroGPU requires; call it first thing in app.py."""
    if active():
        import spaces  # noqa: F401


def preload(engine, is_cached: Callable[[ModelSpec], bool]) -> None:
    """On ZeroGPU, load the preload_ids() models onto CUDA now, at import time; elsewhere do nothing."""
    if not active():
        return
    for failure in engine.preload(preload_ids(is_cached)):
        print(f"preloading {failure.spec.id} failed: {failure.reason}", flush=True)


def gpu(fn: F, duration: int = GPU_DURATION_S) -> F:
    """`spaces.GPU(fn)` on ZeroGPU, `fn` unchanged anywhere else."""
    if not active():
        return fn
    import spaces

    return spaces.GPU(duration=duration)(fn)


def preload_ids(is_cached: Callable[[ModelSpec], bool]) -> list[str]:
    """Models to put on the GPU at start: $SEGGALLERY_PRELOAD ("all", or ids), else the presets' models.

    Only models whose weights are already cached (e.g. by `preload_from_hub` or `python -m seggallery
    fetch` at build time; `is_cached` is the backends' answer) are preloaded; the others still load on
    first use, inside the GPU call.
    """
    wanted = os.environ.get(PRELOAD_ENV, "").strip()
    if wanted == "all":
        ids = list(catalog())
    elif wanted:
        ids = [part for part in wanted.replace(",", " ").split() if part in catalog()]
    else:
        ids = list(dict.fromkeys(model_id for preset in presets().values() for model_id in preset["models"]))
    return [model_id for model_id in ids if is_cached(catalog()[model_id])]
