"""SegGallery's own cache folder (not the weights, which live in TORCH_HOME and HF_HOME).

It holds what is slow to make and safe to lose: the drawn explanation diagrams and the measured
precision checks. $SEGGALLERY_CACHE_DIR, else $XDG_CACHE_HOME/seggallery, else ~/.cache/seggallery.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SEGGALLERY_CACHE_DIR"


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seggallery"
