"""The Compare tab: one photo, several models, their overlays side by side with legends, areas and timings.

The grid of tiles is ui/grid.py, the tables below it ui/tables.py; this module lays out the tab and wires it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gradio as gr

from ..catalog import presets
from ..evidence.agreement import Agreement, agreement
from ..images import ImageError, LoadedImage, load_image
from ..report import build_report
from ..runtime import download_progress
from ..runtime.crf import DEFAULT as CRF_DEFAULT
from ..runtime.engine import Engine
from ..runtime.results import Failure, Prediction, Result
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD
from ..safety import ModelNotAllowed, allowed_spec
from .common import MAX_MODELS, example_images, model_choices
from .evidence import build_evidence_sections
from .focus import build_focus
from .grid import build_grid, photo_picture, show_photo_tile, slot_updates
from .inputs import PhotoInput, upload_name
from .inspect import build_inspector
from .instances import build_instance_section, build_threshold_slider, read_threshold
from .resident import build_resident_panel
from .slider import build_slider
from .tables import area_bars, build_tables, table_updates

SESSION_TTL_S = 30 * 60  # a session's last comparison (photo + masks, for the opacity slider) is freed after this


@dataclass
class Comparison:
    """What one Compare click produced, kept per session so the opacity and score-threshold sliders can redraw
    without rerunning."""

    image: LoadedImage
    results: list[Result]
    focus_class: str | None = None  # class focus (ui/focus.py): the class every tile shows, the rest dimmed
    outlines: bool = False  # only the regions' outlines instead of their fill

    @cached_property
    def agreed(self) -> Agreement | None:
        """The models' agreement, computed once for the report, the evidence sections and the ZIP."""
        return agreement([r for r in self.results if isinstance(r, Prediction)])


@dataclass
class ProgressLine:
    """The line above the outputs while a comparison runs: which model, and while its weights download, how
    many bytes of how many have arrived and about how long the rest will take."""

    progress: gr.Progress
    models: int
    index: int = 0
    model: str = ""  # the display name of the model being run

    def starting(self, index: int, model_id: str, cold: bool) -> None:
        self.index, self.model = index, allowed_spec(model_id).name
        self.progress(index / self.models, desc=f"{self.model}: {'loading' if cold else 'running'}")

    def downloading(self, state: download_progress.DownloadState) -> None:
        done = (self.index + (state.fraction or 0.0)) / self.models
        self.progress(done, desc=f"{self.model}: downloading {state.describe()}")


def default_models() -> list[str]:
    return list(next(iter(presets().values()))["models"])


def preset_of(model_ids: list[str] | None) -> str | None:
    """The name of the preset with exactly these models in this order, or None: after the user edits the
    models by hand the preset picker must not keep naming a selection that is no longer shown."""
    return next((name for name, preset in presets().items() if list(preset["models"]) == list(model_ids or [])), None)


def preset_models(name: str | None):
    """The models of the chosen preset; nothing changes when the picker was cleared (see preset_of)."""
    return presets()[name]["models"] if name in presets() else gr.skip()


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
                threshold = build_threshold_slider()  # shown once a comparison has an instance model
                show_photo = gr.Checkbox(value=True, label="Show the photo as a tile beside the overlays")
                crf = gr.Checkbox(value=False, label="Refine with CRF",
                                  info="DeepLab v1/v2's dense CRF on each model's probabilities (seconds per model on a CPU; "
                                       "its own timing step)")
                run_button = gr.Button("Compare", variant="primary")
                # tall enough to hold the progress line (model, download bytes and time left) while Compare runs
                status = gr.Markdown(elem_id="sg-status", min_height=72)
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        (photo_column, photo_tile), slot_outputs = build_grid()
        _, _, wire_inspector = build_inspector()
        wire_focus = build_focus(session)
        wire_instances = build_instance_section(session, threshold, opacity)  # the object table, below the tiles
        tables, areas, bars, timings = build_tables()
        wire_slider = build_slider(session, opacity)  # laid out here, wired once the mask upload exists
        resident, refresh_resident = build_resident_panel(engine)
        with gr.Accordion("Report (JSON, same as `python -m seggallery compare` writes)", open=False):
            report = gr.JSON(label="report")

        def compare(photo_path, model_ids, opacity_value, threshold_value, refine=False, progress=gr.Progress()):
            def fail(message: str):
                return [None, message, photo_picture(None), *slot_updates(None, opacity_value), *table_updates([]), None]

            if not photo_path:
                return fail("Upload a photo or pick an example first.")
            if not model_ids:
                return fail("Pick at least one model.")
            threshold_value, problem = read_threshold(threshold_value)
            if threshold_value is None:
                return fail(problem)
            try:
                image = load_image(photo_path)
            except ImageError as error:
                return fail(f"**This image cannot be used:** {error}.")
            try:
                for model_id in model_ids:
                    allowed_spec(model_id)
            except ModelNotAllowed as error:
                return fail(f"**This model cannot be used:** {error}.")

            slow = engine.slow.warnings([(m, allowed_spec(m).name) for m in model_ids], str(engine.device))
            for sentence in slow:
                gr.Warning(f"{sentence}: expect a wait.")
            status_line = ProgressLine(progress, len(model_ids))
            with download_progress.reporting(status_line.downloading):
                results = engine.run_many(image.pixels, list(model_ids)[:MAX_MODELS],
                                          on_progress=lambda index, model_id: status_line.starting(
                                              index, model_id, engine.cache.get(model_id, engine.device) is None),
                                          crf=CRF_DEFAULT if refine else None)
            comparison = Comparison(image, results)
            failed = sum(isinstance(r, Failure) for r in results)
            notes = "".join(f" {note}." for note in image.notes)
            message = f"{len(results) - failed} of {len(results)} models ran on {image.pixels.shape[1]}x{image.pixels.shape[0]} pixels.{notes}"
            if slow:
                message += f" Warned before running (over {engine.slow.limit_s:.0f} s here): {'; '.join(slow)}."
            return [comparison, message, photo_picture(comparison), *slot_updates(comparison, opacity_value, threshold_value),
                    *table_updates(results), build_report(image, results, upload_name(photo_path), agreed=comparison.agreed)]

        def redraw(comparison, opacity_value, threshold_value=DEFAULT_SCORE_THRESHOLD):
            if comparison is None:  # nothing compared yet, or the session's state expired: keep what is shown
                return [gr.skip()] * len(slot_outputs)
            return slot_updates(comparison, opacity_value, threshold_value)

        outputs = [session, status, photo_tile, *slot_outputs, tables, areas, timings, report]
        compare_event = run_button.click(compare, inputs=[photo, models, opacity, threshold, crf], outputs=outputs,
                                         api_name="compare", show_progress_on=[status])
        compare_event.then(refresh_resident, outputs=[resident], api_name=False)
        compare_event.then(show_photo_tile, inputs=[session, show_photo], outputs=[photo_column], api_name=False)
        compare_event.then(area_bars, inputs=[session], outputs=[bars], api_name=False)
        show_photo.change(show_photo_tile, inputs=[session, show_photo], outputs=[photo_column], api_name=False)
        opacity.release(redraw, inputs=[session, opacity, threshold], outputs=slot_outputs, api_name=False)
        preset.change(preset_models, inputs=[preset], outputs=[models], api_name=False)
        models.input(preset_of, inputs=[models], outputs=[preset], api_name=False)  # user edits only, not preset fills
        mask_file, mask_labels = build_evidence_sections(session, photo, opacity, compare_event)
        wire_slider(compare_event, mask_file, mask_labels)
        wire_instances(compare_event, redraw, slot_outputs)
        wire_focus(compare_event, redraw, [opacity, threshold], slot_outputs)
        overlay_tiles = slot_outputs[1::4]  # per slot: column, picture, legend, caption
        wire_inspector(session, [photo_tile, *overlay_tiles], slot_outputs, photo_tile, opacity, threshold, mask_file,
                       mask_labels)
    return models
