"""native: not fakes. Native entries are checked against their sha256, so only the real file loads;
their checkpoints are small, so the real ones are copied from ../shared into $TORCH_HOME instead."""

from __future__ import annotations

import shutil

from conftest import require_shared

from seggallery.backends.native import checkpoint_path

SHARED_FILES = {"enet_camvid": "weights/enet-camvid/ENet_default"}  # model id -> path in ../shared


def write(spec) -> None:
    source = require_shared(SHARED_FILES[spec.id])
    target = checkpoint_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
