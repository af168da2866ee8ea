"""The Gradio app: a thin face over seggallery's functions, one module per tab."""

from __future__ import annotations

import ctypes
import os

import gradio as gr

from ..images import MAX_UPLOAD_BYTES
from ..pictures.legends import LEGEND_CSS
from ..runtime.engine import Engine
from .about import build_about_tab
from .compare import build_compare_tab
from .evaluate import build_evaluate_tab
from .explain import build_explain_tab
from .grid import GRID_CSS
from .instances import INSTANCES_CSS
from .tables import TABLES_CSS

QUEUE_CONCURRENCY = 2  # Compare events that run at once; more would only compete for the same cores / GPU
QUEUE_MAX_SIZE = 32  # waiting events beyond this are refused with "queue full" instead of waiting for minutes
SESSION_CAPACITY = 100  # browser sessions whose last comparison is kept for the opacity slider (least recent out)
# Every Compare leaves its overlays and galleries in Gradio's file cache: every 30 min, files older than
# 2 hours go (longer than a session's comparison is kept, compare.SESSION_TTL_S), so a Space's disk stays bounded.
DELETE_CACHE = (30 * 60, 2 * 60 * 60)


def build_app(engine: Engine | None = None) -> gr.Blocks:
    engine = engine or Engine()
    with gr.Blocks(title="SegGallery", delete_cache=DELETE_CACHE) as app:
        gr.Markdown("# SegGallery\nCompare pretrained semantic segmentation models side by side on your own photo.")
        with gr.Tabs() as tabs:
            compare_models = build_compare_tab(engine)
            build_explain_tab(engine, tabs, compare_models)
            build_evaluate_tab(engine)
            build_about_tab(engine)
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return app


def launch_options() -> dict:
    """Server-side bounds for Blocks.launch: Gradio refuses larger uploads before they reach the decoder."""
    return {"max_file_size": MAX_UPLOAD_BYTES, "state_session_capacity": SESSION_CAPACITY}


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX=2 would; call it before the server starts.

    glibc gives threads that allocate their own heap arena (up to 8 per core). Gradio runs each event in a
    worker thread, so the freed buffers of each model call stay spread over many arenas and the server's
    resident memory climbs by a few hundred MB before it levels off; with two arenas it stays flat and
    lower (tests/test_soak.py measures it). An operator's MALLOC_ARENA_MAX wins; off glibc this does nothing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_ARENA_MAX = -8  # from glibc's malloc.h
    return libc.mallopt(M_ARENA_MAX, arenas) == 1


CSS = LEGEND_CSS + GRID_CSS + TABLES_CSS + INSTANCES_CSS
