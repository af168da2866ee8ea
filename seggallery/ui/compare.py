"""The Compare tab: one photo, several models, their overlays side by side with legends, areas and timings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gradio as gr
import pandas as pd

from ..catalog import presets
from ..evidence.agreement import Agreement, agreement
from ..evidence.areas import area_table, class_areas
from ..images import ImageError, LoadedImage, load_image
from ..pictures.legends import legend_html
from ..pictures.overlays import overlays
from ..report import build_report
from ..runtime.engine import Engine
from ..runtime.results import Failure, Prediction, Result
from ..safety import ModelNotAllowed, allowed_spec
from .common import MAX_MODELS, example_images, failure_caption, model_choices
from .evidence import build_evidence_sections
from .inputs import PhotoInput, upload_name
from .pictures import for_browser
from .resident import build_resident_panel

SESSION_TTL_S = 30 * 60  # a session's last comparison (photo + masks, for the opacity slider) is freed after this
TIMING_COLUMNS = ["model", "device", "precision", "call", "load", "preprocess", "forward", "postprocess", "total"]


@dataclass
class Comparison:
    """What one Compare click produced, kept per session so the opacity slider can redraw without rerunning."""

    image: LoadedImage
    results: list[Result]

    @cached_property
    def agreed(self) -> Agreement | None:
        """The models' agreement, computed once for the report, the evidence sections and the ZIP."""
        return agreement([r for r in self.results if isinstance(r, Prediction)])


def default_models() -> list[str]:
    return list(next(iter(presets().values()))["models"])


def preset_of(model_ids: list[str] | None) -> str | None:
    """The name of the preset with exactly these models in this order, or None: after the user edits the
    models by hand the preset picker must not keep naming a selection that is no longer shown."""
    return next((name for name, preset in presets().items() if list(preset["models"]) == list(model_ids or [])), None)


def preset_models(name: str | None):
    """The models of the chosen preset; nothing changes when the picker was cleared (see preset_of)."""
    return presets()[name]["models"] if name in presets() else gr.skip()


def slot_caption(result: Result) -> str:
    if isinstance(result, Failure):
        return failure_caption(result)
    timing = result.timings_ms
    load = f" · loaded in {timing['load']:.0f} ms (first use)" if result.cold else ""
    notes = "".join(f"\n\n*Note: {note}.*" for note in result.notes)
    return f"**{timing['total']:.0f} ms** on {result.device}, {result.precision}{load} · labels: {result.labels.name}{notes}"


def timing_frame(results: list[Result]) -> pd.DataFrame:
    rows = []
    for result in results:
        if isinstance(result, Prediction):
            t = result.timings_ms
            rows.append([result.spec.name, result.device, result.precision, "cold (includes loading)" if result.cold else "warm",
                         *(round(t[k], 1) if k in t else None for k in ("load", "preprocess", "forward", "postprocess", "total"))])
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def area_frame(results: list[Result]) -> pd.DataFrame:
    headers, rows = area_table([r for r in results if isinstance(r, Prediction)])
    return pd.DataFrame(rows, columns=headers)


def slot_updates(comparison: Comparison | None, opacity: float) -> list:
    """Per slot: column visibility, overlay image, legend HTML, caption."""
    results = comparison.results if comparison else []
    pictures = overlays(comparison.image.pixels, results, opacity) if comparison else []
    updates = []
    for index in range(MAX_MODELS):
        if index >= len(results):
            updates += [gr.Column(visible=False), None, "", ""]
            continue
        result = results[index]
        if isinstance(result, Failure):
            updates += [gr.Column(visible=True), gr.Image(value=None, label=result.spec.name), "", slot_caption(result)]
            continue
        picture = for_browser(pictures[index], f"{result.spec.id}-overlay")
        legend = legend_html(class_areas(result.mask, result.labels))
        updates += [gr.Column(visible=True), gr.Image(value=picture, label=result.spec.name), legend, slot_caption(result)]
    return updates


def build_compare_tab(engine: Engine) -> gr.Dropdown:
    """The tab's components; returns the model picker so that other tabs can fill it (see select_models)."""
    with gr.Tab("Compare", id="compare"):
        with gr.Row():
            with gr.Column(scale=3):
                photo = PhotoInput(type="filepath", label="Photo", sources=["upload", "clipboard"], height=360)
                gr.Examples(examples=[[p] for p in example_images()], inputs=[photo], label="Example photos (sources and licences: assets/examples/SOURCES.md)")
            with gr.Column(scale=2):
                preset = gr.Dropdown(choices=list(presets()), value=next(iter(presets())), label="Preset", info="a ready-made selection")
                models = gr.Dropdown(choices=model_choices(), value=default_models(), multiselect=True, max_choices=MAX_MODELS,
                                     label=f"Models (up to {MAX_MODELS}, shown in this order)")
                opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity")
                run_button = gr.Button("Compare", variant="primary")
                status = gr.Markdown(elem_id="sg-status")
        slot_outputs = []
        with gr.Row(equal_height=False):
            for index in range(MAX_MODELS):
                with gr.Column(visible=False, min_width=260) as column:
                    picture = gr.Image(label=f"model {index + 1}", interactive=False, elem_classes="sg-overlay")
                    legend = gr.HTML(elem_classes="sg-legend-box")
                    caption = gr.Markdown(elem_classes="sg-caption")
                slot_outputs += [column, picture, legend, caption]
        areas = gr.Dataframe(label="Area per class (% of the image and pixels; models with the same label set share rows)", interactive=False, wrap=True)
        timings = gr.Dataframe(label="Timings per model (ms; GPU-synchronised)", interactive=False)
        resident, refresh_resident = build_resident_panel(engine)
        with gr.Accordion("Report (JSON, same as `python -m seggallery compare` writes)", open=False):
            report = gr.JSON(label="report")
        session = gr.State(None, time_to_live=SESSION_TTL_S)

        def compare(photo_path, model_ids, opacity_value, progress=gr.Progress(track_tqdm=True)):
            def fail(message: str):
                return [None, message, *slot_updates(None, opacity_value), pd.DataFrame(), pd.DataFrame(), None]

            if not photo_path:
                return fail("Upload a photo or pick an example first.")
            if not model_ids:
                return fail("Pick at least one model.")
            try:
                image = load_image(photo_path)
            except ImageError as error:
                return fail(f"**This image cannot be used:** {error}.")
            try:
                for model_id in model_ids:
                    allowed_spec(model_id)
            except ModelNotAllowed as error:
                return fail(f"**This model cannot be used:** {error}.")

            def on_progress(index: int, model_id: str) -> None:
                cold = engine.cache.get(model_id, engine.device) is None
                what = "loading (the first use downloads its weights)" if cold else "running"
                progress(index / len(model_ids), desc=f"{model_id}: {what}")

            results = engine.run_many(image.pixels, list(model_ids)[:MAX_MODELS], on_progress=on_progress)
            comparison = Comparison(image, results)
            failed = sum(isinstance(r, Failure) for r in results)
            notes = "".join(f" {note}." for note in image.notes)
            message = f"{len(results) - failed} of {len(results)} models ran on {image.pixels.shape[1]}x{image.pixels.shape[0]} pixels.{notes}"
            return [comparison, message, *slot_updates(comparison, opacity_value), area_frame(results),
                    timing_frame(results), build_report(image, results, upload_name(photo_path), agreed=comparison.agreed)]

        def redraw(comparison, opacity_value):
            if comparison is None:  # nothing compared yet, or the session's state expired: keep what is shown
                return [gr.skip()] * len(slot_outputs)
            return slot_updates(comparison, opacity_value)

        compare_event = run_button.click(compare, inputs=[photo, models, opacity], outputs=[session, status, *slot_outputs, areas, timings, report], api_name="compare")
        compare_event.then(refresh_resident, outputs=[resident], api_name=False)
        opacity.release(redraw, inputs=[session, opacity], outputs=slot_outputs, api_name=False)
        preset.change(preset_models, inputs=[preset], outputs=[models], api_name=False)
        models.input(preset_of, inputs=[models], outputs=[preset], api_name=False)  # user edits only, not preset fills
        build_evidence_sections(session, photo, opacity, compare_event)
    return models
