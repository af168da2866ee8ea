"""Every awkward upload through the real app (`python app.py`, gradio_client): a result or a clear message.

The decoding tests (test_images.py) check the pixels; these check what a user of the Space sees: the
status line says what is wrong or what was done (first frame, CMYK, downscaled with its scale), the
server stays up, and uploads over the size limit are refused by Gradio before they are read.
"""

from __future__ import annotations

import re

import httpx
import pytest
from gradio_client import Client, handle_file
from image_cases import cases, encode
from PIL import Image

from seggallery.images import MAX_SIDE, MAX_UPLOAD_BYTES

FAST_MODEL = "lraspp_mobilenet_v3_large"
SUFFIXES = {b"\x89PNG": ".png", b"\xff\xd8": ".jpg", b"GIF8": ".gif", b"RIFF": ".webp", b"BM": ".bmp", b"II*": ".tif"}


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def _suffix(data: bytes) -> str:
    return next((s for magic, s in SUFFIXES.items() if data.startswith(magic)), ".png")


def _status(client, path) -> str:
    return client.predict(handle_file(str(path)), [FAST_MODEL], 0.5, api_name="/compare")[0]


# Refusals are quick (nothing runs); of the files that decode, the e2e run takes the ones with a note for
# the user, since every call runs a model on a shared CPU. test_images.py checks all of them pixel by pixel.
E2E_CASES = [case for case in cases() if case.error or case.note in ("CMYK", "scaled to 8 bits", "first frame of 3")]


def test_every_awkward_upload_gets_a_result_or_a_clear_message(client, app_server, tmp_path):
    for index, case in enumerate(E2E_CASES):
        path = tmp_path / f"upload-{index}{_suffix(case.data)}"
        path.write_bytes(case.data)
        status = _status(client, path)
        if case.error:
            assert status.startswith("**This image cannot be used:**") and case.error in status, (case.name, status)
        else:
            assert status.startswith("1 of 1 models ran"), (case.name, status)
            assert case.note in status, (case.name, status)
    assert app_server.process.poll() is None, "the server is still up"


def test_a_large_photo_is_downscaled_and_the_scale_is_shown(client, tmp_path):
    path = tmp_path / "large.png"
    Image.new("RGB", (MAX_SIDE * 5 // 4, MAX_SIDE * 5 // 8), (30, 120, 200)).save(path)
    outputs = client.predict(handle_file(str(path)), [FAST_MODEL], 0.5, api_name="/compare")
    status, report = outputs[0], outputs[-1]
    assert f"ran on {MAX_SIDE}x{MAX_SIDE // 2} pixels" in status
    assert re.search(r"downscaled from 2560x1280 to 2048x1024 \(scale 0\.800\)", status), status
    assert report["image"]["original_size"] == [2560, 1280] and report["image"]["inference_size"] == [2048, 1024]


def test_uploads_over_the_limit_are_refused_by_gradio(client, app_server, tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(encode(Image.new("RGB", (16, 16)), "PNG") + bytes(MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # gradio_client reads the limit ...
        _status(client, path)
    with open(path, "rb") as f:  # ... and the server enforces it for any other client
        response = httpx.post(f"{app_server.url}gradio_api/upload", files={"files": ("huge.png", f, "image/png")}, timeout=60)
    assert response.status_code == 413, response.text[:200]


def test_a_model_id_outside_the_catalog_is_refused(client, tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48)).save(path)
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(handle_file(str(path)), ["../../etc/passwd"], 0.5, api_name="/compare")


def test_a_server_path_sent_instead_of_an_upload_is_refused(app_server):
    """PhotoInput hands paths to the decoder undecoded: Gradio must only ever give it files users uploaded."""
    payload = {"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, [FAST_MODEL], 0.5, 0.5, False]}
    event = httpx.post(f"{app_server.url}gradio_api/call/compare", json=payload, timeout=30).json()["event_id"]
    with httpx.stream("GET", f"{app_server.url}gradio_api/call/compare/{event}", timeout=60) as stream:
        lines = list(stream.iter_lines())
    assert "event: error" in lines, lines
    assert not any("root:" in line or "cannot be used" in line for line in lines), "the file was never read"
