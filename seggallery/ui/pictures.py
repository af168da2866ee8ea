"""Pictures for the browser: encoded once, as JPEG, straight into Gradio's file cache.

Given an array, Gradio encodes it itself: as PNG, about 280 ms for a 1024x768 overlay on the 2-core
development machine (photos barely compress), or as WebP, about 60 ms; per picture, per Compare. The
JPEG of render.display_jpeg takes about 4 ms and is a quarter of the PNG's size to send. The lossless
pictures are in the ZIP download.
"""

from __future__ import annotations

import numpy as np
from gradio.processing_utils import save_bytes_to_cache
from gradio.utils import get_upload_folder

from ..pictures.files import display_jpeg


def for_browser(picture: np.ndarray | None, name: str = "picture") -> str | None:
    """The picture as a JPEG file in Gradio's cache (so Gradio serves it without copying it, and its
    delete_cache schedule removes it); None stays None."""
    if picture is None:
        return None
    return save_bytes_to_cache(display_jpeg(picture), f"{name}.jpg", get_upload_folder())
