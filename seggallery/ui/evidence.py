"""Evidence sections of the Compare tab: ground truth, agreement, uncertainty, charts and the ZIP export.

build_view() turns one comparison (+ an optional mask) into plain values; build_evidence_sections()
lays out the components and wires them to the Compare click, the mask upload and the label-set choice.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from ..catalog import label_set
from ..evidence.agreement import Agreement, TruthComparison
from ..evidence.groundtruth import GroundTruth, load_mask
from ..evidence.uncertainty import upsample_map
from ..images import ImageError
from ..pictures.charts import accuracy_latency_chart, area_chart, confusion_chart, figure_image, heatmap, latency_chart
from ..pictures.maps import correctness_image, disagreement_image, value_map
from ..report import per_class_table, truth_comparisons, write_outputs, zip_folder
from ..runtime.results import Prediction
from .common import AUTO, mask_label_choices
from .inputs import upload_name
from .pictures import for_browser

KEEP_EXPORTS = 16  # export folders kept on disk (Gradio copies each ZIP into its own cache when shown)
TRUTH_COLUMNS = ["model", "label set", "compared in", "pixel accuracy", "mean IoU"]


@dataclass
class EvidenceView:
    """Everything the evidence sections show for one comparison, as plain values."""

    truth_status: str = ""
    truth_table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRUTH_COLUMNS))
    per_class: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["class"]))
    correct: list = field(default_factory=list)  # (JPEG path for the browser, caption), as the galleries below
    confusion: list = field(default_factory=list)
    agreement_status: str = ""
    agreement_plot: object = None
    miou_plot: object = None
    disagreement: str | None = None  # JPEG path (ui.pictures)
    confidence: list = field(default_factory=list)
    entropy: list = field(default_factory=list)
    area_plot: object = None
    latency_plot: object = None
    accuracy_plot: object = None
    zip_path: str | None = None


def read_truth(comparison, mask_path: str | None, labels_choice: str) -> tuple[GroundTruth | None, str]:
    """The uploaded mask as a GroundTruth, or None and a message saying why not."""
    if not mask_path:
        return None, "Upload the photo's label mask to score each model against it."
    predictions = [r for r in comparison.results if isinstance(r, Prediction)]
    if labels_choice in (None, "", AUTO):
        if not predictions:
            return None, "No model ran, so there is nothing to score."
        labels = predictions[0].labels
    else:
        labels = label_set(labels_choice)
    try:
        truth = load_mask(mask_path, labels, comparison.image.original_size, comparison.image.pixels.shape[:2])
    except ImageError as error:
        return None, f"**This mask cannot be used:** {error}."
    notes = "".join(f" {note}." for note in truth.notes)
    ignored = f" {truth.ignored_pixels / truth.mask.size:.1%} of its pixels are marked ignore/void and not scored." if truth.ignored_pixels else ""
    return truth, f"Mask read as {truth.kind} ids of **{labels.name}**.{ignored}{notes}"


def truth_frame(comparisons: dict[str, TruthComparison], predictions: list[Prediction]) -> pd.DataFrame:
    rows = []
    for prediction in predictions:
        comparison = comparisons[prediction.spec.id]
        if comparison.comparable:
            scores = comparison.scores
            rows.append([prediction.spec.name, prediction.labels.id, comparison.space.description,
                         round(scores.pixel_accuracy, 4), round(scores.mean_iou, 4)])
        else:
            rows.append([prediction.spec.name, prediction.labels.id, "not comparable: no class in common", None, None])
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


def _uncertainty_galleries(predictions: list[Prediction], shape: tuple[int, int]) -> tuple[list, list]:
    confidence, entropy = [], []
    for prediction in predictions:
        if prediction.confidence is None:
            continue
        name = prediction.spec.name
        confidence.append((for_browser(value_map(upsample_map(prediction.confidence, shape), "magma"), f"{prediction.spec.id}-confidence"),
                           f"{name}: mean confidence {prediction.confidence.mean():.2f} (dark = unsure)"))
        entropy.append((for_browser(value_map(upsample_map(prediction.entropy, shape), "inferno"), f"{prediction.spec.id}-entropy"),
                        f"{name}: mean entropy {prediction.entropy.mean():.2f} of the maximum (bright = unsure)"))
    return confidence, entropy


def _agreement_parts(view: EvidenceView, agreed: Agreement | None, predictions: list[Prediction], photo: np.ndarray) -> None:
    if len(predictions) < 2:
        view.agreement_status = "Agreement needs two or more models that ran."
        return
    if agreed is None:
        view.agreement_status = "These models' label sets have no class in common, so their masks cannot be compared."
        return
    view.agreement_status = (f"Compared in {agreed.space.description}. All models agree on "
                             f"{(agreed.distinct == 1).mean():.1%} of the pixels.")
    view.agreement_plot = heatmap(agreed.pixel_agreement, agreed.names, "Pixel agreement (share of pixels with the same label)")
    view.miou_plot = heatmap(agreed.miou, agreed.names, "Mean IoU between models' masks")
    view.disagreement = for_browser(disagreement_image(photo, agreed.distinct, len(predictions)), "disagreement")


def build_view(comparison, mask_path: str | None = None, labels_choice: str = AUTO, opacity: float = 0.5,
               image_name: str = "", export: bool = True) -> EvidenceView:
    view = EvidenceView()
    if comparison is None:
        view.truth_status = "Run a comparison first."
        return view
    photo = comparison.image.pixels
    predictions = [r for r in comparison.results if isinstance(r, Prediction)]
    truth, view.truth_status = read_truth(comparison, mask_path, labels_choice)
    comparisons = truth_comparisons(comparison.results, truth)
    if truth is not None and predictions:
        view.truth_table = truth_frame(comparisons, predictions)
        headers, rows = per_class_table(comparison.results, comparisons)
        view.per_class = pd.DataFrame(rows, columns=headers)
        for prediction in predictions:
            scored = comparisons[prediction.spec.id]
            if scored.comparable:
                caption = f"{prediction.spec.name}: {scored.scores.pixel_accuracy:.1%} of pixels right"
                view.correct.append((for_browser(correctness_image(photo, scored.correct), f"{prediction.spec.id}-correct"), caption))
                figure = confusion_chart(scored.scores, f"{prediction.spec.name} (rows: truth, normalised)")
                view.confusion.append((figure_image(figure), prediction.spec.name))
    _agreement_parts(view, comparison.agreed, predictions, photo)
    view.confidence, view.entropy = _uncertainty_galleries(predictions, photo.shape[:2])
    view.area_plot = area_chart(predictions)
    view.latency_plot = latency_chart(comparison.results)
    view.accuracy_plot = accuracy_latency_chart(comparison.results)
    if export and comparison.results:
        view.zip_path = str(export_zip(comparison, truth, opacity, image_name))
    return view


_exports: deque[Path] = deque()
_exports_lock = threading.Lock()


def export_zip(comparison, truth: GroundTruth | None, opacity: float, image_name: str) -> Path:
    """The files `python -m seggallery compare` writes, zipped, in a fresh temporary folder."""
    stem = Path(image_name).stem or "photo"
    folder = Path(tempfile.mkdtemp(prefix="seggallery-export-"))
    write_outputs(folder / stem, comparison.image, comparison.results, image_name=image_name, opacity=opacity, truth=truth,
                  agreed=comparison.agreed)
    zip_path = zip_folder(folder / stem, folder / f"seggallery-{stem}.zip")
    with _exports_lock:
        _exports.append(folder)
        while len(_exports) > KEEP_EXPORTS:
            shutil.rmtree(_exports.popleft(), ignore_errors=True)
    return zip_path


def build_evidence_sections(session: gr.State, photo: gr.Image, opacity: gr.Slider, compare_event) -> tuple[gr.File, gr.Dropdown]:
    """Lay out the sections below the Compare tab's results and update them after each comparison; returns the
    mask upload and its label-set picker (the slider shows the ground truth too)."""
    with gr.Accordion("Ground truth: upload the photo's label mask to see which model is right where", open=False):
        with gr.Row():
            mask_file = gr.File(label="Label mask of this photo (PNG of class ids, a VOC palette PNG, or the label set's colours)",
                                file_types=[".png", ".bmp", ".tif", ".tiff"], type="filepath")
            mask_labels = gr.Dropdown(choices=mask_label_choices(), value=AUTO, label="Label set of the mask",
                                      info="masks of another label set than a model's are compared in shared coarse classes")
        truth_status = gr.Markdown()
        truth_table = gr.Dataframe(pd.DataFrame(columns=TRUTH_COLUMNS), label="Scores against the mask", interactive=False)
        per_class = gr.Dataframe(pd.DataFrame(columns=["class"]), label="IoU per class", interactive=False)
        correct = gr.Gallery(label="Right (green) and wrong (red) pixels per model", columns=3, height="auto")
        confusion = gr.Gallery(label="Confusion matrices", columns=3, height="auto")
    with gr.Accordion("Agreement and uncertainty", open=False):
        agreement_status = gr.Markdown()
        with gr.Row():
            agreement_plot = gr.Plot(label="Pixel agreement")
            miou_plot = gr.Plot(label="mIoU between models")
        disagreement = gr.Image(label="Where the models disagree: grey all agree, yellow two labels ... red every model differs",
                                interactive=False)
        confidence = gr.Gallery(label="Confidence: the largest class probability per pixel", columns=3, height="auto")
        entropy = gr.Gallery(label="Entropy of the class probabilities, divided by its maximum", columns=3, height="auto")
    with gr.Accordion("Charts", open=False):
        area_plot = gr.Plot(label="Area per class")
        with gr.Row():
            latency_plot = gr.Plot(label="Latency")
            accuracy_plot = gr.Plot(label="Published mIoU vs measured latency")
    download = gr.DownloadButton("Download everything (ZIP: overlays, masks, report.json, CSV)", value=None, interactive=False)

    outputs = [truth_status, truth_table, per_class, correct, confusion, agreement_status, agreement_plot, miou_plot,
               disagreement, confidence, entropy, area_plot, latency_plot, accuracy_plot, download]

    def update(comparison, mask_path, labels_choice, opacity_value, photo_path):
        view = build_view(comparison, mask_path, labels_choice, opacity_value, upload_name(photo_path))
        return [view.truth_status, view.truth_table, view.per_class, view.correct, view.confusion, view.agreement_status,
                view.agreement_plot, view.miou_plot, view.disagreement, view.confidence, view.entropy, view.area_plot,
                view.latency_plot, view.accuracy_plot,
                gr.DownloadButton(value=view.zip_path, interactive=view.zip_path is not None)]

    def export_only(comparison, mask_path, labels_choice, opacity_value, photo_path):
        """The opacity changed: only the overlays in the ZIP change."""
        if comparison is None or not comparison.results:
            return gr.DownloadButton(value=None, interactive=False)
        truth, _ = read_truth(comparison, mask_path, labels_choice)
        path = export_zip(comparison, truth, opacity_value, upload_name(photo_path))
        return gr.DownloadButton(value=str(path), interactive=True)

    inputs = [session, mask_file, mask_labels, opacity, photo]
    compare_event.then(update, inputs=inputs, outputs=outputs, api_name=False)
    mask_file.change(update, inputs=inputs, outputs=outputs, api_name=False)
    mask_labels.change(update, inputs=inputs, outputs=outputs, api_name=False)
    opacity.release(export_only, inputs=inputs, outputs=[download], api_name=False)
    return mask_file, mask_labels
