"""Point and ask: click any tile of the Compare grid and see, per model, the class there, its top three
classes with their probabilities and the ground truth's class; the point is marked on every tile. The same
as the API endpoint /inspect (x, y in the photo's pixels, as the models ran on it), which returns plain data."""

from __future__ import annotations

from typing import Callable

import gradio as gr

from ..evidence.inspect import PointOutside, answers_at
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD
from .evidence import read_truth
from .grid import photo_picture, slot_updates
from .instances import read_threshold

HINT = "Click a point on the photo or on any overlay to see what each model says there."


def answers_markdown(answers: dict) -> str:
    lines = [f"**At ({answers['x']}, {answers['y']})**" + (f" · ground truth: **{answers['truth']}**" if answers["truth"] else "")]
    for entry in answers["models"]:
        if "error" in entry:
            lines.append(f"- {entry['model']}: could not run")
            continue
        top = ", ".join(f"{t['class']} {100 * t['probability']:.0f}%" for t in entry["top"]) if entry["top"] else "no class scores"
        if entry.get("between_cells"):
            top += ": the nearest score cell's; the label map, interpolated between cells, differs at this boundary"
        lines.append(f"- {entry['model']}: **{entry['class']}** ({top})")
    return "\n".join(lines)


def _threshold(value) -> float:
    threshold, _ = read_threshold(value)
    return DEFAULT_SCORE_THRESHOLD if threshold is None else threshold


def ask(comparison, x, y, mask_path: str | None = None, labels_choice: str = "auto") -> tuple[str, dict | None]:
    """(Markdown for the UI, the answers as data) at (x, y); a clear message and None when it cannot answer."""
    if comparison is None:
        return "Compare first: then click a point on any tile.", None
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return "**Cannot answer:** x and y must be numbers (pixels of the photo).", None
    truth = read_truth(comparison, mask_path, labels_choice)[0] if mask_path else None
    try:
        answers = answers_at(comparison.results, comparison.image.pixels.shape[:2], x, y, truth)
    except PointOutside as error:
        return f"**Cannot answer:** {error}.", None
    return answers_markdown(answers), answers


def build_inspector() -> tuple[gr.Markdown, gr.JSON, Callable]:
    """Lay out the answer here; returns (answer, data, wire(session, tiles, slot_outputs, photo_tile, opacity,
    threshold, mask_file, mask_labels)), to call once those components exist."""
    with gr.Accordion("Point and ask: what does each model say here?", open=True):
        answer = gr.Markdown(HINT, elem_id="sg-inspect")
        data = gr.JSON(label="the same as data (as /inspect returns it)", visible=False)
        x = gr.Number(visible=False, label="x")
        y = gr.Number(visible=False, label="y")

    def wire(session, tiles: list, slot_outputs: list, photo_tile, opacity, threshold, mask_file, mask_labels) -> None:
        def on_click(comparison, opacity_value, threshold_value, mask_path, labels_choice, event: gr.SelectData):
            message, answers = ask(comparison, *event.index[:2], mask_path, labels_choice)
            if answers is None:
                return [message, gr.JSON(visible=False), gr.skip(), *([gr.skip()] * len(slot_outputs))]
            point = (answers["x"], answers["y"])
            return [message, gr.JSON(value=answers, visible=True), photo_picture(comparison, point),
                    *slot_updates(comparison, opacity_value, _threshold(threshold_value), point)]

        outputs = [answer, data, photo_tile, *slot_outputs]
        for tile in tiles:
            tile.select(on_click, inputs=[session, opacity, threshold, mask_file, mask_labels], outputs=outputs, api_name=False)
        api_button = gr.Button(visible=False)
        api_button.click(ask, inputs=[session, x, y, mask_file, mask_labels], outputs=[answer, data], api_name="inspect")

    return answer, data, wire
