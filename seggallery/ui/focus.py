"""Class focus: choose a class (any class a model found; other label sets match through the coarse taxonomy)
and every tile shows only that class, the rest of the photo dimmed; "boundaries only" draws each region's
outline instead of its fill. Kept with the session's comparison, so the other redraws keep it. Also /focus."""

from __future__ import annotations

import gradio as gr
import numpy as np

from ..evidence.focus import classes_found, focus_for
from ..pictures.focus import focus_picture
from ..runtime.results import Prediction

ALL = "all classes"


def focused_picture(comparison, prediction: Prediction, opacity: float) -> np.ndarray:
    """A semantic model's tile under the comparison's focus and outline settings."""
    ids = None
    if comparison.focus_class:
        sources = [r.labels for r in comparison.results if isinstance(r, Prediction)]
        ids = focus_for(prediction, comparison.focus_class, sources).ids
    return focus_picture(comparison.image.pixels, prediction.mask, prediction.labels, opacity, ids, comparison.outlines)


def set_focus(comparison, name: str | None, outlines: bool) -> str:
    """Store the focus in the comparison; the status line (how each model matched), or why it cannot."""
    if comparison is None:
        return "Compare first: then choose a class to focus on."
    predictions = [r for r in comparison.results if isinstance(r, Prediction)]
    name = None if name in (None, "", ALL) else str(name)
    if name is not None and name not in classes_found(predictions):
        known = ", ".join(classes_found(predictions)[:12])
        return f"**No model found a class {name!r}** here; the classes found: {known}."
    comparison.focus_class, comparison.outlines = name, bool(outlines)
    if name is None:
        return "Boundaries only: each region's outline in its class colour." if outlines else "All classes shown."
    sources = [p.labels for p in predictions]
    lines = []
    for prediction in predictions:
        focus = focus_for(prediction, name, sources)
        found = ", ".join(prediction.labels.names[i].strip() for i in sorted(focus.ids)) or "nothing"
        lines.append(f"{prediction.spec.name}: {found} ({focus.how})")
    return f"Showing **{name}**, the rest dimmed. " + "; ".join(lines) + "."


def build_focus(session: gr.State):
    """Lay out the focus controls; returns wire(compare_event, redraw_inputs, redraw, slot_outputs)."""
    with gr.Row():
        picker = gr.Dropdown(choices=[ALL], value=ALL, label="Focus on a class", allow_custom_value=True,
                             info="every tile shows only this class; other label sets match through coarse classes")
        outlines = gr.Checkbox(value=False, label="Boundaries only", info="outlines instead of filled regions")
    status = gr.Markdown()

    def choices(comparison):
        names = classes_found([r for r in comparison.results if isinstance(r, Prediction)]) if comparison else []
        return gr.Dropdown(choices=[ALL, *names], value=ALL), gr.Checkbox(value=False), ""

    def wire(compare_event, redraw, redraw_inputs: list, slot_outputs: list) -> None:
        """`redraw(comparison, *redraw_inputs)` gives the slot updates (the Compare tab's own redraw)."""
        compare_event.then(choices, inputs=[session], outputs=[picker, outlines, status], api_name=False)

        def apply(comparison, name, outline, *values):
            message = set_focus(comparison, name, outline)
            return [message, *redraw(comparison, *values)]

        inputs = [session, picker, outlines, *redraw_inputs]
        for trigger in (picker.input, outlines.input):
            trigger(apply, inputs=inputs, outputs=[status, *slot_outputs], api_name=False)
        api_button = gr.Button(visible=False)
        api_button.click(apply, inputs=inputs, outputs=[status, *slot_outputs], api_name="focus")

    return wire
