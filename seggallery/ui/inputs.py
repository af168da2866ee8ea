"""Input components that leave decoding to seggallery.images, so every bad upload gets our clear message."""

from __future__ import annotations

import base64
from pathlib import Path

import gradio as gr
from gradio.data_classes import ImageData

from ..images import MAX_UPLOAD_BYTES


class PhotoInput(gr.Image):
    """gr.Image that hands the uploaded file over undecoded (a path, or bytes for a data: URL).

    gr.Image would open the file with PIL itself and fail with a generic error on a damaged or
    non-image upload; seggallery.images.load_image explains what is wrong instead.
    """

    def get_block_name(self) -> str:
        return "image"  # the same browser component as gr.Image

    def preprocess(self, payload: ImageData | None) -> str | bytes | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            if len(payload.url) > MAX_UPLOAD_BYTES * 4 // 3 + 1024:  # base64 is 4/3 of the bytes; check before decoding
                raise gr.Error(f"The pasted image is larger than the {MAX_UPLOAD_BYTES >> 20} MB limit.")
            try:
                return base64.b64decode(payload.url.split(",", 1)[1], validate=True)
            except (IndexError, ValueError) as error:  # binascii.Error is a ValueError
                raise gr.Error(f"The pasted image could not be read: it is not valid base64 data ({error}).") from None
        return payload.path


def upload_name(upload: str | bytes | None) -> str:
    """The file name of what PhotoInput handed over, for reports and export names."""
    if not upload:
        return ""
    return Path(upload).name if isinstance(upload, str) else "pasted-image"
