"""The Evaluate tab: models over uploaded images + ground-truth masks, with progress, JSON + CSV, resume.

It is a face over seggallery.evidence.evaluation, the code behind `python -m seggallery eval`. Each upload set
(the files' contents and the masks' label set) gets its own folder, so running the same files again,
after an interruption or with more models, computes only the (image, model) pairs not yet finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from ..catalog import catalog, label_set
from ..evidence.evaluation import EvaluationError, EvaluationStopped, default_labels, evaluate, pair_files
from ..evidence.leaderboard import COLUMNS as LEADERBOARD_COLUMNS
from ..evidence.leaderboard import leaderboard_rows
from ..runtime.engine import Engine
from .common import AUTO, mask_label_choices, model_choices

MAX_IMAGES = int(os.environ.get("SEGGALLERY_EVAL_MAX_IMAGES", 500))
EVAL_ROOT = Path(tempfile.gettempdir()) / "seggallery-eval"
KEEP_RUNS_S = 24 * 3600  # a run's folder (its results, and what resuming it reuses) goes a day after its last write
STOP_REQUESTS: set[str] = set()  # session hashes whose user pressed Stop (checked between images)
RESULT_FILES = ("results.json", "results.csv", "per_class_iou.csv", "per_image.csv")
SUMMARY_COLUMNS = ["model", "label set", "compared in", "images", "pixel accuracy", "mean IoU", "mean ms / image", "note"]


def run_folder(files: list[Path], labels_id: str) -> Path:
    """The folder for these uploads: named by a hash of their names and contents and the label set."""
    digest = hashlib.sha256(labels_id.encode())
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return EVAL_ROOT / digest.hexdigest()[:24]


def prune_runs(root: Path, keep_s: float = KEEP_RUNS_S) -> list[Path]:
    """Delete the run folders under `root` whose newest file is older than `keep_s` seconds; return them."""
    removed = []
    cutoff = time.time() - keep_s
    for folder in root.iterdir() if root.is_dir() else []:
        try:
            if not folder.is_dir():
                continue
            newest = max((path.stat().st_mtime for path in folder.rglob("*")), default=folder.stat().st_mtime)
        except OSError:  # removed meanwhile by another session's pruning
            continue
        if newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def summary_frames(summary: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, classes = [], {}
    for model_id, entry in summary["models"].items():
        note = entry.get("error") or entry.get("reason") or ""
        rows.append([entry["name"], entry["label_set"], entry.get("space", "not comparable"), entry.get("images", 0),
                     entry.get("pixel_accuracy"), entry.get("mean_iou"), entry.get("mean_timings_ms", {}).get("total"), note])
        for name, value in entry.get("per_class_iou", {}).items():
            classes.setdefault((entry.get("space", ""), name.strip()), {})[entry["name"]] = value
    names = [entry["name"] for entry in summary["models"].values()]
    per_class = pd.DataFrame([[space, name, *(values.get(n) for n in names)] for (space, name), values in classes.items()],
                             columns=["compared in", "class", *names])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS), per_class


def evaluate_uploads(engine: Engine, image_paths: list[str] | None, mask_paths: list[str] | None, model_ids: list[str] | None,
                     labels_choice: str, on_progress=None) -> tuple[str, pd.DataFrame, pd.DataFrame, list[str], pd.DataFrame]:
    """Status markdown, summary table, per-class table, the result files and the measured-against-published table
    (`eval`'s leaderboard.csv), for the uploaded files."""
    empty = (pd.DataFrame(), pd.DataFrame(), [], pd.DataFrame())
    if not image_paths or not mask_paths:
        return ("Upload the images and their masks (matched by file name).", *empty)
    if not model_ids:
        return ("Pick at least one model.", *empty)
    images, masks = [Path(p) for p in image_paths], [Path(p) for p in mask_paths]
    pairing = pair_files(images, masks)
    if not pairing.pairs:
        return ("No image has a mask of the same file name (e.g. `street.jpg` and `street.png`).", *empty)
    if len(pairing.pairs) > MAX_IMAGES:
        return (f"{len(pairing.pairs)} image/mask pairs: this app evaluates at most {MAX_IMAGES} at once; "
                "`python -m seggallery eval` has no limit.", *empty)
    prune_runs(EVAL_ROOT)
    try:
        labels_id = default_labels(model_ids) if labels_choice in (None, "", AUTO) else labels_choice
        out_dir = run_folder([p for pair in pairing.pairs for p in pair], labels_id)
        resumed = len((out_dir / "progress.jsonl").read_text().splitlines()) if (out_dir / "progress.jsonl").exists() else 0
        summary = evaluate(pairing, list(model_ids), labels_id, out_dir, engine, on_progress)
    except EvaluationError as error:
        return (f"**Cannot evaluate:** {error}.", *empty)
    except EvaluationStopped as stopped:
        return (f"Stopped after {stopped} image(s). Finished results are kept: press Evaluate with the same files "
                "to go on from there.", *empty)
    lines = [f"Evaluated {len(pairing.pairs)} image(s) against {label_set(labels_id).name} masks."]
    if resumed:
        lines.append(f"{resumed} (image, model) result(s) of an earlier run of these files were reused, not recomputed.")
    if pairing.images_without_mask:
        lines.append(f"{len(pairing.images_without_mask)} image(s) without a mask were left out: {', '.join(pairing.images_without_mask[:5])}.")
    if pairing.masks_without_image:
        lines.append(f"{len(pairing.masks_without_image)} mask(s) without an image were left out.")
    for name, reason in summary["skipped_images"].items():
        lines.append(f"Skipped {name}: {reason}")
    table, per_class = summary_frames(summary)
    leaderboard = pd.DataFrame(leaderboard_rows(summary, f"{len(pairing.pairs)} uploaded image(s)"), columns=LEADERBOARD_COLUMNS)
    return (" ".join(lines), table, per_class, [str(out_dir / name) for name in RESULT_FILES], leaderboard)


def default_eval_models() -> list[str]:
    """ENet: its CamVid number is reproduced in CI, so a CamVid upload has a known answer."""
    return [model_id for model_id in ("enet_camvid",) if model_id in catalog()]


def build_evaluate_tab(engine: Engine) -> None:
    with gr.Tab("Evaluate", id="evaluate"):
        gr.Markdown("Score models on your own labelled images: upload the images and their label masks (same file names, "
                    "masks as PNGs of class ids, VOC palette PNGs or colour PNGs). Scores are summed over all images "
                    "(confusion matrices first, as benchmarks do). Running the same files again reuses finished results.")
        with gr.Row():
            images = gr.File(label="Images", file_count="multiple", file_types=["image"], type="filepath")
            masks = gr.File(label="Masks", file_count="multiple", file_types=[".png", ".bmp", ".tif", ".tiff"], type="filepath")
        with gr.Row():
            models = gr.Dropdown(choices=model_choices(), value=default_eval_models(), multiselect=True, label="Models")
            labels = gr.Dropdown(choices=mask_label_choices(), value=AUTO, label="Label set of the masks",
                                 info="auto works when all models share a label set")
        with gr.Row():
            run_button = gr.Button("Evaluate", variant="primary")
            stop_button = gr.Button("Stop", variant="stop")
        status = gr.Markdown()
        summary = gr.Dataframe(label="Scores per model", interactive=False)
        per_class = gr.Dataframe(label="IoU per class", interactive=False)
        files = gr.File(label="results.json, results.csv, per_class_iou.csv, per_image.csv", file_count="multiple", interactive=False)
        leaderboard = gr.Dataframe(label="Measured against published mIoU (the catalog's numbers; coarse classes do not "
                                         "compare with them)", interactive=False)

        def run(image_paths, mask_paths, model_ids, labels_choice, request: gr.Request, progress=gr.Progress()):
            session = request.session_hash if request is not None else ""
            STOP_REQUESTS.discard(session)

            def on_progress(done: int, total: int, name: str) -> None:
                progress(done / total, desc=f"{done}/{total} images ({name})")
                if session in STOP_REQUESTS and done < total:
                    STOP_REQUESTS.discard(session)
                    raise EvaluationStopped(done)

            return list(evaluate_uploads(engine, image_paths, mask_paths, model_ids, labels_choice, on_progress))

        def stop(request: gr.Request):
            # a flag, not `cancels=`: cancelling would leave the worker thread computing with nobody to tell
            if request is not None:
                STOP_REQUESTS.add(request.session_hash)

        run_button.click(run, inputs=[images, masks, models, labels], outputs=[status, summary, per_class, files, leaderboard],
                         api_name="evaluate")
        stop_button.click(stop, inputs=None, outputs=None, queue=False, api_name=False)
