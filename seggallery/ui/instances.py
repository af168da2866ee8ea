"""The Compare tab's instance view: what an instance model (Mask R-CNN) found, object by object.

Its tile shows every object scoring at least the threshold in its own colour with its box and a "class
score" label (pictures/instances.py), and its legend the count per class in those colours; a score-threshold
slider (default 0.5) redraws those tiles and the object table from the session's last comparison without
rerunning any model; the table (class, score, pixel area, box) and the count per class are hidden until a
comparison has an instance model. The same through the API: /instances(threshold, opacity).
"""

from __future__ import annotations

import html
import math
from typing import Callable

import gradio as gr
import numpy as np
import pandas as pd

from ..evidence.instances import InstanceRow, count_per_class, instance_rows
from ..pictures.instances import instance_colors, instance_overlay
from ..runtime.results import Prediction
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD

OBJECT_COLUMNS = ["model", "object", "class", "score", "pixels", "box (x0, y0, x1, y1)"]
COUNT_COLUMNS = ["model", "class", "objects"]
SWATCHES_PER_CLASS = 6  # a class's objects beyond these are counted, not drawn
COMPARE_FIRST = "Compare first: the object table shows the instance models of the last comparison."
NO_INSTANCE_MODEL = ("No instance model in this comparison: the score threshold and the object table apply to "
                     "instance models (Mask R-CNN). Add one and press Compare.")
INSTANCES_CSS = """
#sg-objects table, #sg-object-counts table { font-family: var(--font); font-variant-numeric: tabular-nums; }
"""


def instance_predictions(comparison) -> list[Prediction]:
    """The comparison's models that found objects, in the tiles' order."""
    results = comparison.results if comparison is not None else []
    return [r for r in results if isinstance(r, Prediction) and r.instances is not None]


def read_threshold(value) -> tuple[float | None, str]:
    """(the score threshold, "") or (None, why it cannot be used): a number from 0 to 1."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        return None, f"**The score threshold must be a number from 0 to 1**, not {value!r}."
    if math.isnan(threshold) or not 0.0 <= threshold <= 1.0:
        return None, f"**The score threshold must be a number from 0 to 1**, not {value!r}."
    return threshold, ""


def kept_phrase(prediction: Prediction, rows: list[InstanceRow], threshold: float) -> str:
    """"12 objects at score ≥ 0.50 (88 below)": the legend's and the status's words for what the threshold keeps."""
    return (f"{len(rows)} object{'s' * (len(rows) != 1)} at score ≥ {threshold:.2f} "
            f"({len(prediction.instances) - len(rows)} below)")


def instance_legend(prediction: Prediction, rows: list[InstanceRow], threshold: float) -> str:
    """Per class, swatches in its objects' colours (as the overlay draws them, by rank) and the count; then how
    many objects scored below the threshold."""
    colors = instance_colors(len(rows))
    items = []
    for name, count in count_per_class(rows).items():
        ranks = [row.instance_id - 1 for row in rows if row.name == name][:SWATCHES_PER_CLASS]
        swatches = "".join('<span class="sg-swatch" style="background:rgb({},{},{})"></span>'.format(*colors[rank])
                           for rank in ranks)
        items.append(f'<span class="sg-legend-item">{swatches}{html.escape(name)} <small>×{count}</small></span>')
    summary = kept_phrase(prediction, rows, threshold) + ("" if rows else ": lower the score threshold to see some")
    items.append(f'<span class="sg-legend-item"><small>{summary}</small></span>')
    return f'<div class="sg-legend sg-instance-legend">{"".join(items)}</div>'


def instance_tile(photo: np.ndarray, prediction: Prediction, opacity: float,
                  threshold: float = DEFAULT_SCORE_THRESHOLD) -> tuple[np.ndarray, str]:
    """An instance model's tile: (its instance overlay, its legend HTML) at this score threshold."""
    rows = instance_rows(prediction.instances, prediction.labels, threshold)
    picture = instance_overlay(photo, prediction.instances, prediction.labels, threshold, opacity)
    return picture, instance_legend(prediction, rows, threshold)


def box_text(box: tuple[float, float, float, float] | None) -> str:
    return "" if box is None else ", ".join(f"{v:.0f}" for v in box)


def instance_tables(predictions: list[Prediction], threshold: float) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(one row per object, the count per class, a summary line per model) at this threshold."""
    objects, counts, lines = [], [], []
    for prediction in predictions:
        name = prediction.spec.name
        rows = instance_rows(prediction.instances, prediction.labels, threshold)
        objects += [[name, row.instance_id, row.name, round(row.score, 3), row.pixels, box_text(row.box)] for row in rows]
        per_class = count_per_class(rows)
        counts += [[name, cls, count] for cls, count in per_class.items()]
        found = ", ".join(f"{cls} {count}" for cls, count in per_class.items()) or "none"
        lines.append(f"**{name}**: {kept_phrase(prediction, rows, threshold)}: {found}.")
    return pd.DataFrame(objects, columns=OBJECT_COLUMNS), pd.DataFrame(counts, columns=COUNT_COLUMNS), "\n\n".join(lines)


def empty_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(columns=OBJECT_COLUMNS), pd.DataFrame(columns=COUNT_COLUMNS)


def instance_view(comparison, threshold, after_compare: bool = False) -> list:
    """[the section's visibility, its status, the object table, the count per class].

    The section shows when the comparison has an instance model; on a threshold change with no comparison in
    the session (none yet, or expired) what is shown stays, and the status says why.
    """
    predictions = instance_predictions(comparison)
    keep = comparison is None and not after_compare
    visibility = gr.skip() if keep else gr.Column(visible=bool(predictions))
    threshold, problem = read_threshold(threshold)
    if comparison is None:
        return [visibility, COMPARE_FIRST, *empty_tables()]
    if not predictions:
        return [visibility, NO_INSTANCE_MODEL, *empty_tables()]
    if threshold is None:
        return [visibility, problem, *empty_tables()]
    objects, counts, summary = instance_tables(predictions, threshold)
    return [visibility, summary, objects, counts]


def build_threshold_slider() -> gr.Slider:
    """The score threshold, beside the opacity: hidden until a comparison has an instance model."""
    return gr.Slider(0.0, 1.0, value=DEFAULT_SCORE_THRESHOLD, step=0.05, visible=False, elem_id="sg-threshold",
                     label="Score threshold (instance models)",
                     info="objects scoring less are not drawn, counted or listed; redraws without rerunning")


def build_instance_section(session: gr.State, threshold: gr.Slider, opacity: gr.Slider) -> Callable:
    """Lay out the object table and the count per class (hidden until an instance model ran); returns
    wire(compare_event, redraw, slot_outputs), to call once the Compare click and the tiles exist.

    redraw(comparison, opacity, threshold) gives the tiles' updates (the Compare tab's; passed in, so that
    this module does not import the grid, which imports instance_tile from here)."""
    with gr.Column(visible=False, elem_id="sg-instances") as group:
        status = gr.Markdown(elem_id="sg-instances-status")
        counts = gr.Dataframe(pd.DataFrame(columns=COUNT_COLUMNS), interactive=False, wrap=True, max_height=320,
                              label="Count per class", elem_id="sg-object-counts")
        objects = gr.Dataframe(pd.DataFrame(columns=OBJECT_COLUMNS), interactive=False, wrap=True, max_height=480,
                               label="Objects per instance model (score ≥ the threshold, best first; pixels: the "
                                     "object's mask; box in pixels of the photo)", elem_id="sg-objects")
    view_outputs = [group, status, objects, counts]

    def wire(compare_event, redraw: Callable, slot_outputs: list) -> None:
        def after_compare(comparison, threshold_value):
            """The section, and the slider beside the opacity, show only when an instance model ran."""
            view = instance_view(comparison, threshold_value, after_compare=True)
            return [gr.Slider(visible=bool(instance_predictions(comparison))), *view]

        def rethreshold(comparison, threshold_value, opacity_value):
            """The section and the tiles at a new threshold; the tiles stay as they are when it cannot be applied."""
            threshold_read, _ = read_threshold(threshold_value)
            usable = threshold_read is not None and bool(instance_predictions(comparison))
            tiles = redraw(comparison, opacity_value, threshold_read) if usable else [gr.skip()] * len(slot_outputs)
            return [*instance_view(comparison, threshold_value), *tiles]

        compare_event.then(after_compare, inputs=[session, threshold], outputs=[threshold, *view_outputs], api_name=False)
        threshold.release(rethreshold, inputs=[session, threshold, opacity], outputs=view_outputs + slot_outputs,
                          api_name=False)
        # the API: /instances(threshold, opacity) -> (status, objects, count per class, the tiles redrawn); its own
        # unbounded number, so that a threshold outside 0..1 gets the status's message rather than Gradio's error
        api_threshold = gr.Number(value=DEFAULT_SCORE_THRESHOLD, visible=False, label="score threshold")
        api_button = gr.Button(visible=False)
        api_button.click(rethreshold, inputs=[session, api_threshold, opacity], outputs=view_outputs + slot_outputs,
                         api_name="instances")

    return wire
