"""The Compare tab's slider: any two of the photo, the models' overlays and the ground truth, one over the
other, with a handle to drag between them (gr.ImageSlider). Also an API endpoint, /slider."""

from __future__ import annotations

from typing import Callable

import gradio as gr
import numpy as np

from ..pictures.overlays import overlay
from ..runtime.results import Prediction
from .evidence import read_truth
from .pictures import for_browser

PHOTO = "Photo"
TRUTH = "Ground truth"


def sources(comparison, mask_path: str | None = None) -> list[str]:
    """What can go on either side: the photo, each model that ran (by name), and the mask when one is uploaded."""
    if comparison is None:
        return []
    names = [r.spec.name for r in comparison.results if isinstance(r, Prediction)]
    return [PHOTO, *names, *([TRUTH] if mask_path else [])]


def picture(comparison, source: str, opacity: float, mask_path: str | None, labels_choice: str) -> np.ndarray:
    """The picture a source names, at the size the models ran on; ValueError with the reason when there is none."""
    photo = comparison.image.pixels
    if source == PHOTO:
        return photo
    if source == TRUTH:
        truth, message = read_truth(comparison, mask_path, labels_choice)
        if truth is None:
            raise ValueError(message)
        return overlay(photo, truth.mask, truth.labels, opacity)
    for result in comparison.results:
        if isinstance(result, Prediction) and result.spec.name == source:
            return overlay(photo, result.mask, result.labels, opacity)
    raise ValueError(f"{source!r} is not in this comparison; choose one of: {', '.join(sources(comparison, mask_path))}")


def slide(comparison, left: str | None, right: str | None, opacity: float, mask_path: str | None = None,
          labels_choice: str = "auto") -> tuple[str, tuple[str, str] | None]:
    """(a status line, the two pictures as files) for the slider; a clear message instead of pictures when it cannot."""
    if comparison is None:
        return "Compare first: the slider shows two pictures of the last comparison.", None
    if not left or not right:
        return "Choose a picture for each side.", None
    try:
        pair = [picture(comparison, side, opacity, mask_path, labels_choice) for side in (left, right)]
    except ValueError as error:
        return f"**This slider cannot be shown:** {error}", None
    return f"Left: **{left}** · right: **{right}**. Drag the handle to compare.", (
        for_browser(pair[0], "slider-left"), for_browser(pair[1], "slider-right"))


def build_slider(session: gr.State, opacity: gr.Slider) -> Callable:
    """Lay out the slider here; returns wire(compare_event, mask_file, mask_labels), to call once those exist."""
    with gr.Accordion("Slider: two pictures one over the other", open=False):
        with gr.Row():
            left = gr.Dropdown(choices=[], label="Left", allow_custom_value=True)
            right = gr.Dropdown(choices=[], label="Right", allow_custom_value=True)
        status = gr.Markdown("Compare first: the slider shows two pictures of the last comparison.")
        slider = gr.ImageSlider(label="Drag the handle", type="filepath", interactive=False, elem_id="sg-slider")

    def choices(comparison, mask_path, current_left, current_right):
        """After a comparison or a mask upload: the sources, keeping the chosen ones where they still exist."""
        names = sources(comparison, mask_path)
        keep_left = current_left if current_left in names else (names[0] if names else None)
        default_right = names[1] if len(names) > 1 else keep_left
        keep_right = current_right if current_right in names and current_right != PHOTO else default_right
        return gr.Dropdown(choices=names, value=keep_left), gr.Dropdown(choices=names, value=keep_right)

    def wire(compare_event, mask_file: gr.File, mask_labels: gr.Dropdown) -> None:
        inputs = [session, left, right, opacity, mask_file, mask_labels]
        refresh = compare_event.then(choices, inputs=[session, mask_file, left, right], outputs=[left, right], api_name=False)
        refresh.then(slide, inputs=inputs, outputs=[status, slider], api_name=False)
        mask_file.change(choices, inputs=[session, mask_file, left, right], outputs=[left, right], api_name=False)
        for trigger in (left.input, right.input, opacity.release):
            trigger(slide, inputs=inputs, outputs=[status, slider], api_name=False)
        # the API: /slider(left, right, opacity, mask, mask label set) -> (status, (left picture, right picture))
        api_button = gr.Button(visible=False)
        api_button.click(slide, inputs=inputs, outputs=[status, slider], api_name="slider")

    return wire
