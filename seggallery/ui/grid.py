"""The Compare tab's grid of tiles: the photo and one overlay per model, all the same size.

A CSS grid (GRID_CSS) lays the tiles out three to a row on a wide page, two on a narrow one and one on a
phone, whatever the number of models, so no tile grows to fill a row. A model that could not run keeps
its tile, showing the photo faded beside its message, so that failures do not break the grid either.
"""

from __future__ import annotations

import gradio as gr
import numpy as np

from ..evidence.areas import class_areas
from ..pictures.legends import legend_html
from ..pictures.markers import mark_point
from ..pictures.overlays import overlays
from ..runtime.results import Failure, Result, first_use_summary
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD
from .common import MAX_MODELS, failure_caption
from .focus import focused_picture
from .instances import instance_tile
from .pictures import for_browser

GRID_CSS = """
.sg-grid { display: grid !important; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: var(--layout-gap, 16px);
           align-items: stretch; }
.sg-grid > .column { min-width: 0 !important; width: auto !important; }
@media (max-width: 1024px) { .sg-grid { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media (max-width: 640px) { .sg-grid { grid-template-columns: minmax(0, 1fr); } }
.sg-grid .sg-overlay img, .sg-grid .sg-photo img { width: 100%; height: auto; object-fit: contain; }
"""
PHOTO_CAPTION = "The photo as the models saw it (at the size they ran on)."


def faded(photo: np.ndarray) -> np.ndarray:
    """The photo in light grey: the picture of a tile whose model could not run, so its tile keeps its size."""
    grey = photo.astype(np.float32).mean(2, keepdims=True).repeat(3, 2)
    return (0.25 * grey + 0.75 * 235 + 0.5).astype(np.uint8)


def slot_caption(result: Result) -> str:
    if isinstance(result, Failure):
        return failure_caption(result)
    timing = result.timings_ms
    load = f" · {first_use_summary(timing)} (first use)" if result.cold else ""
    notes = "".join(f"\n\n*Note: {note}.*" for note in result.notes)
    return f"**{timing['total']:.0f} ms** on {result.device}, {result.precision}{load} · labels: {result.labels.name}{notes}"


def slot_updates(comparison, opacity: float, threshold: float = DEFAULT_SCORE_THRESHOLD,
                 point: tuple[int, int] | None = None) -> list:
    """Per slot: column visibility, overlay image, legend HTML, caption. An instance model's tile shows its
    objects scoring at least `threshold`, each in its own colour (ui/instances.py); `point`, when given, is
    marked on every tile (point and ask, ui/inspect.py)."""
    results = comparison.results if comparison else []
    pictures = overlays(comparison.image.pixels, results, opacity) if comparison else []
    placeholder = None
    updates = []
    for index in range(MAX_MODELS):
        if index >= len(results):
            updates += [gr.Column(visible=False), None, "", ""]
            continue
        result = results[index]
        if isinstance(result, Failure):
            placeholder = placeholder or for_browser(faded(comparison.image.pixels), "could-not-run")
            updates += [gr.Column(visible=True), gr.Image(value=placeholder, label=f"{result.spec.name}: could not run"),
                        "", slot_caption(result)]
            continue
        if result.instances is not None:
            picture, legend = instance_tile(comparison.image.pixels, result, opacity, threshold)
        else:
            picture, legend = pictures[index], legend_html(class_areas(result.mask, result.labels))
            if comparison.focus_class or comparison.outlines:
                picture = focused_picture(comparison, result, opacity)
        if point is not None:
            picture = mark_point(picture, *point)
        picture = for_browser(picture, f"{result.spec.id}-overlay")
        updates += [gr.Column(visible=True), gr.Image(value=picture, label=result.spec.name), legend, slot_caption(result)]
    return updates


def photo_picture(comparison, point: tuple[int, int] | None = None) -> str | None:
    """The photo tile's picture: the photo at the size the models ran on (with `point` marked, when given)."""
    if comparison is None:
        return None
    photo = comparison.image.pixels
    return for_browser(photo if point is None else mark_point(photo, *point), "photo")


def show_photo_tile(comparison, show: bool) -> gr.Column:
    """The photo tile is shown after a comparison when its checkbox is ticked."""
    return gr.Column(visible=comparison is not None and bool(show))


def build_grid() -> tuple[list, list]:
    """The tiles, hidden until a comparison fills them: (photo tile outputs, per-slot outputs)."""
    slot_outputs = []
    with gr.Row(elem_classes="sg-grid", equal_height=False):
        with gr.Column(visible=False, min_width=0, elem_classes="sg-tile") as photo_column:
            photo_tile = gr.Image(label="Photo", interactive=False, elem_classes="sg-photo")
            gr.Markdown(PHOTO_CAPTION, elem_classes="sg-photo-caption")
        for index in range(MAX_MODELS):
            with gr.Column(visible=False, min_width=0, elem_classes="sg-tile") as column:
                picture = gr.Image(label=f"model {index + 1}", interactive=False, elem_classes="sg-overlay")
                legend = gr.HTML(elem_classes="sg-legend-box")
                caption = gr.Markdown(elem_classes="sg-caption")
            slot_outputs += [column, picture, legend, caption]
    return [photo_column, photo_tile], slot_outputs
