"""The app's own bounds, without a server: pasted data URLs, launch options, allocator arenas, expired sessions."""

from __future__ import annotations

import base64
import platform

import gradio as gr
import pytest
from gradio.data_classes import ImageData
from image_cases import encode
from PIL import Image

from seggallery.images import MAX_UPLOAD_BYTES
from seggallery.ui import launch_options, limit_malloc_arenas
from seggallery.ui.inputs import PhotoInput


def _data_url(payload: str) -> ImageData:
    return ImageData(url=f"data:image/png;base64,{payload}")


def test_pasted_images_arrive_as_bytes_and_bad_ones_get_a_message():
    photo = PhotoInput(type="filepath")
    png = encode(Image.new("RGB", (16, 16)), "PNG")
    assert photo.preprocess(_data_url(base64.b64encode(png).decode())) == png
    assert photo.preprocess(ImageData(path="/tmp/upload.png")) == "/tmp/upload.png"
    with pytest.raises(gr.Error, match="not valid base64"):
        photo.preprocess(_data_url("%%% not base64 %%%"))
    with pytest.raises(gr.Error, match="not valid base64"):
        photo.preprocess(ImageData(url="data:image/png;base64"))  # no comma, no data
    with pytest.raises(gr.Error, match="larger than the 25 MB limit"):
        photo.preprocess(_data_url("A" * (MAX_UPLOAD_BYTES * 4 // 3 + 2048)))


def test_launch_options_bound_uploads_and_sessions():
    options = launch_options()
    assert options["max_file_size"] == MAX_UPLOAD_BYTES
    assert 0 < options["state_session_capacity"] <= 1000


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are a glibc feature")
def test_malloc_arenas_are_capped_unless_the_operator_chose(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() is True  # glibc (Linux): mallopt(M_ARENA_MAX, 2) succeeded


def test_an_expired_session_keeps_what_is_shown_when_the_slider_moves():
    from seggallery.runtime.engine import Engine
    from seggallery.ui import build_app

    app = build_app(Engine())
    from seggallery.ui.compare import SESSION_TTL_S

    every, age = app.delete_cache  # Gradio's file cache is emptied on a schedule, but not under a live session
    assert 0 < every and age > SESSION_TTL_S
    redraw = next(fn for fn in app.fns.values() if fn.fn.__name__ == "redraw")
    updates = redraw.fn(None, 0.3)
    assert len(updates) == len(redraw.outputs) and all(u == gr.skip() for u in updates)
    rethreshold = next(fn for fn in app.fns.values() if fn.fn.__name__ == "rethreshold")  # the score threshold
    section, status, *rest = rethreshold.fn(None, 0.3, 0.5)
    assert section == gr.skip() and status.startswith("Compare first") and all(u == gr.skip() for u in rest[2:])


def test_the_preset_picker_follows_hand_edits_of_the_models():
    from seggallery.catalog import presets
    from seggallery.runtime.engine import Engine
    from seggallery.ui import build_app
    from seggallery.ui.compare import preset_models, preset_of

    name, preset = next(iter(presets().items()))
    assert preset_of(list(preset["models"])) == name
    assert preset_of(list(preset["models"])[:-1]) is None  # a model removed by hand: no preset is named
    assert preset_of(list(reversed(preset["models"]))) is None and preset_of(None) is None
    assert preset_models(name) == preset["models"] and preset_models(None) == gr.skip()
    app = build_app(Engine())
    wired = {fn.fn.__name__: fn for fn in app.fns.values() if fn.fn is not None}
    assert [t[1] for t in wired["preset_of"].targets] == ["input"] and [t[1] for t in wired["preset_models"].targets] == ["change"]
