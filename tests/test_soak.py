"""Soak: several gradio_client users at once on the real app for a bounded time.

Each client uploads its own photo (its own size, colour and file name) again and again. Every answer
must be that client's: the report names its file and size, the overlays have its size. Nothing may fail,
and the server's resident memory must level off after warm-up instead of growing with each request
(it rises by a few hundred MB while request threads and allocator arenas first fill, then stays flat).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import psutil
from gradio_client import Client, handle_file
from PIL import Image

CLIENTS = int(os.environ.get("SEGGALLERY_SOAK_CLIENTS", 4))
WARM_UP_SECONDS = 20  # concurrent requests before memory is measured: thread pools and allocator arenas fill up
SECONDS = float(os.environ.get("SEGGALLERY_SOAK_SECONDS", 30))  # measured part of the soak
MAX_GROWTH_MB = 100  # the measured part's peak resident memory may exceed the warm-up's peak by this much
MODEL = "lraspp_mobilenet_v3_large"


def _photo(folder, index: int):
    """A photo only this client sends: its own size, a gradient in its own colour, its own name."""
    width, height = 160 + 24 * index, 120 + 16 * index
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    colour = np.array([(37 * index) % 256, (91 * index + 60) % 256, (53 * index + 120) % 256], dtype=np.float32)
    pixels = (ramp * colour + (1 - ramp) * (255 - colour)).repeat(height, axis=0).astype(np.uint8)
    path = folder / f"client-{index}.png"
    Image.fromarray(pixels).save(path)
    return path, (width, height)


def _check_answer(outputs, name: str, size: tuple[int, int]) -> None:
    status, report = outputs[0], outputs[-1]
    assert status.startswith("1 of 1 models ran"), status
    assert report["image"]["name"] == name, f"cross-talk: {name} got the report of {report['image']['name']}"
    assert report["image"]["original_size"] == list(size), f"cross-talk: {name} {size} got {report['image']['original_size']}"
    model = report["models"][0]
    assert model["id"] == MODEL and model["mask_size"] == [size[1], size[0]]
    assert sum(c["pixels"] for c in model["classes"]) == size[0] * size[1]
    overlay = Image.open(outputs[2]["value"])  # status, the photo tile, then per slot: overlay, legend, caption
    assert overlay.size == size, f"cross-talk: {name} {size} got an overlay of {overlay.size}"


def test_concurrent_clients_get_their_own_results_and_memory_levels_off(app_server, tmp_path):
    server = psutil.Process(app_server.process.pid)
    clients = [Client(app_server.url, verbose=False) for _ in range(CLIENTS)]
    photos = [_photo(tmp_path, index) for index in range(CLIENTS)]

    def ask(index: int):
        (path, size), client = photos[index], clients[index]
        outputs = client.predict(handle_file(str(path)), [MODEL], 0.5, api_name="/compare")
        _check_answer(outputs, path.name, size)

    for index in range(CLIENTS):  # the model is loaded and every session exists
        ask(index)

    counts, errors, samples = [0] * CLIENTS, [], []
    start = time.monotonic()
    deadline = start + WARM_UP_SECONDS + SECONDS

    def soak(index: int):
        while time.monotonic() < deadline and not errors:
            try:
                ask(index)
            except Exception as error:  # noqa: BLE001 - collected and reported with the client that saw it
                errors.append(f"client {index}: {type(error).__name__}: {error}")
                return
            counts[index] += 1

    threads = [threading.Thread(target=soak, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        samples.append((time.monotonic() - start, server.memory_info().rss / 2**20))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    warm_up_peak = max(mb for t, mb in samples if t < WARM_UP_SECONDS)
    measured_peak = max(mb for t, mb in samples if t >= WARM_UP_SECONDS)
    growth_mb = measured_peak - warm_up_peak
    print(f"\nsoak: {CLIENTS} clients, {WARM_UP_SECONDS} s warm-up + {SECONDS:.0f} s, requests per client {counts}; "
          f"server RSS peak {warm_up_peak:.0f} MB in warm-up, {measured_peak:.0f} MB after (growth {growth_mb:+.0f} MB); "
          f"MB every 5 s: {[round(mb) for _, mb in samples[::10]]}")
    assert errors == []
    assert all(count >= 3 for count in counts), f"every client was served repeatedly: {counts}"
    assert growth_mb < MAX_GROWTH_MB, f"server memory kept growing after warm-up: +{growth_mb:.0f} MB"
    assert app_server.process.poll() is None
