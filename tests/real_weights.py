"""Real checkpoints from the shared data folder, copied into the test session's download cache.

The app downloads these files from their public URLs; tests cannot, so they seed the cache the
downloader uses ($TORCH_HOME/hub/checkpoints, a temporary folder set by conftest) from ../shared
(tests/fakes/native.py). Nothing is copied into the repository.
"""

from __future__ import annotations

from fakes import install

ENET_ID = "enet_camvid"


def install_enet() -> str:
    """Put the real ENet CamVid weights where the native backend looks for them; returns the model id."""
    install(ENET_ID)
    return ENET_ID
