"""A model that took long on this device is remembered, and the Compare tab warns before running it again."""

from __future__ import annotations

import numpy as np
import torch
from conftest import free_port
from gradio_client import Client, handle_file
from PIL import Image

from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Prediction
from seggallery.runtime.slow_runs import SlowRuns
from seggallery.ui import build_app

MODEL = "enet_camvid"  # the quickest fake checkpoint to write and run


def test_a_run_over_the_limit_is_named_and_the_download_is_not_counted():
    runs = SlowRuns(limit_s=20.0)
    runs.record("big", "cpu", {"download": 60_000.0, "load": 4_000.0, "preprocess": 500.0, "forward": 16_000.0,
                               "postprocess": 500.0, "total": 17_000.0}, loading=True)  # the steps once, not twice
    runs.record("small", "cpu", {"download": 90_000.0, "forward": 1_000.0, "total": 1_000.0}, loading=True)
    assert runs.last("big", "cpu").seconds == 21.0
    assert runs.warnings([("big", "Big"), ("small", "Small"), ("never", "Never")], "cpu") == [
        "Big took 21 s on cpu last time, loading included"]
    assert runs.warnings([("big", "Big")], "cuda:0") == [], "a time measured on another device says nothing here"
    runs.record("big", "cpu", {"forward": 3_000.0, "total": 3_000.0}, loading=False)  # cached now: quick, no warning any more
    assert runs.warnings([("big", "Big")], "cpu") == []


def test_the_engine_remembers_each_run(fake_weights):
    fake_weights(MODEL)
    engine = Engine(device=torch.device("cpu"))
    result = engine.run(np.full((60, 80, 3), 120, np.uint8), MODEL)
    assert isinstance(result, Prediction)
    remembered = engine.slow.last(MODEL, "cpu")
    assert remembered.loading and remembered.seconds > 0


def test_compare_warns_before_running_a_model_that_was_slow_here(fake_weights, tmp_path):
    """Through the app's API: with the limit at 0 s every run is 'slow', so the first Compare measures the
    model and the second one names it in the status line (and as a gr.Warning, shown while it runs)."""
    fake_weights(MODEL)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(photo)
    engine = Engine(device=torch.device("cpu"))
    engine.slow.limit_s = 0.0
    app = build_app(engine)
    app.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        client = Client(app.local_url, verbose=False)
        first = client.predict(handle_file(str(photo)), [MODEL], 0.5, 0.5, api_name="/compare")[0]
        second = client.predict(handle_file(str(photo)), [MODEL], 0.5, 0.5, api_name="/compare")[0]
    finally:
        app.close()
    assert first.startswith("1 of 1 models ran") and "Warned" not in first
    assert "Warned before running (over 0 s here): ENet (CamVid) took " in second and "on cpu last time, loading included" in second
