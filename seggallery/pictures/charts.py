"""Charts: matplotlib Figures, which gr.Plot shows and report files save.

Figures are made with matplotlib.figure.Figure, never pyplot, so that concurrent UI sessions do not
share pyplot's global state.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from ..evidence.areas import AreaShares
from ..evidence.leaderboard import published_miou as published_miou_of
from ..evidence.metrics import Scores
from ..evidence.taxonomy import coarse_labels, shared_space
from ..runtime.results import Prediction, Result

STEPS = ("preprocess", "forward", "postprocess")
STEP_COLORS = {"preprocess": "#9ecae1", "forward": "#3182bd", "postprocess": "#fdae6b"}


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def figure_image(figure: Figure) -> Image.Image:
    return Image.open(io.BytesIO(figure_png(figure))).convert("RGB")


def _percentages(predictions: list[Prediction]) -> tuple[list[str], np.ndarray, str]:
    """Class names, M x K % of the image per model and class, in the models' shared space."""
    space = shared_space(p.labels.id for p in predictions)
    if space is None:  # no class in common: show the full coarse taxonomy
        from ..evidence.taxonomy import to_coarse

        labels = coarse_labels()
        masks = [to_coarse(p.mask, p.labels.id) for p in predictions]
        title = "coarse classes"
    else:
        labels = space.labels
        masks = [space.project(p.mask, p.labels.id) for p in predictions]
        title = space.labels.name if space.native else "coarse classes shared by the models' label sets"
    share = np.stack([np.bincount(m.ravel()[m.ravel() < len(labels)], minlength=len(labels))[: len(labels)] / m.size * 100
                      for m in masks])
    return [n.strip() for n in labels.names], share, title


def area_chart(predictions: list[Prediction], top: int = 10) -> Figure | None:
    """Grouped bars: % of the image per class (the largest `top` classes), one bar per model."""
    if not predictions:
        return None
    names, share, title = _percentages(predictions)
    order = [i for i in np.argsort(-share.max(0))[:top] if share[:, i].max() > 0]
    figure = Figure(figsize=(max(6, 0.9 * len(order) + 2), 3.8))
    axes = figure.subplots()
    width = 0.8 / len(predictions)
    x = np.arange(len(order))
    for index, prediction in enumerate(predictions):
        axes.bar(x + (index - (len(predictions) - 1) / 2) * width, share[index, order], width, label=prediction.spec.name)
    axes.set_xticks(x, [names[i] for i in order], rotation=30, ha="right")
    axes.set_ylabel("% of the image")
    axes.set_title(f"Area per class ({title})", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return figure


OTHER_COLOR = "#c8c8c8"


def stacked_area_chart(shares: AreaShares) -> Figure | None:
    """One bar per model, 100% wide, split into the classes of the readable area table (their overlay colours)
    and its "other" row: the same numbers as the table."""
    if not shares.models:
        return None
    # constrained layout keeps the model names and the legend inside the figure, however it is saved (gr.Plot
    # saves it without bbox_inches="tight")
    figure = Figure(figsize=(9, max(2.6, 0.42 * len(shares.models) + 1.2)), layout="constrained")
    axes = figure.subplots()
    y = np.arange(len(shares.models))
    left = np.zeros(len(shares.models))
    several = len(shares.label_sets) > 1
    segments = [(row.name + (f" ({row.label_set})" if several else ""), np.array(row.color) / 255, row.percent) for row in shares.rows]
    if shares.other is not None:
        segments.append((f"other ({shares.hidden} classes)", OTHER_COLOR, shares.other))
    for name, color, percent in segments:
        values = np.array([v or 0.0 for v in percent])
        axes.barh(y, values, left=left, color=color, edgecolor="white", linewidth=0.6, label=name)
        for index, value in enumerate(values):
            if value >= 7:
                axes.text(left[index] + value / 2, index, f"{value:.0f}%", ha="center", va="center", fontsize=7,
                          color="black" if np.mean(to_rgb(color)) > 0.45 else "white")
        left += values
    axes.set_yticks(y, shares.models, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of the image")
    axes.set_title("Area per class (largest first; the table's numbers)", fontsize=10)
    axes.legend(fontsize=7, ncol=1 if len(segments) <= 9 else 2, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def latency_chart(results: list[Result]) -> Figure | None:
    """Stacked horizontal bars: preprocess / forward / postprocess ms per model (loading left out)."""
    predictions = [r for r in results if isinstance(r, Prediction)]
    if not predictions:
        return None
    figure = Figure(figsize=(7, 0.5 * len(predictions) + 1.4))
    axes = figure.subplots()
    labels = [p.spec.name + (" (first use)" if p.cold else "") for p in predictions]
    left = np.zeros(len(predictions))
    for step in STEPS:
        values = np.array([p.timings_ms.get(step, 0.0) for p in predictions])
        axes.barh(labels, values, left=left, color=STEP_COLORS[step], label=step)
        left += values
    for y, total in enumerate(left):
        axes.text(total, y, f" {total:.0f} ms", va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(f"ms on {predictions[0].device} (loading excluded)")
    axes.set_title("Latency per model", fontsize=10)
    axes.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    axes.set_xlim(0, left.max() * 1.25 if left.max() > 0 else 1)
    return figure


def published_miou(prediction: Prediction) -> tuple[float, str] | None:
    return published_miou_of(prediction.spec)


def accuracy_latency_chart(results: list[Result]) -> Figure | None:
    """Published mIoU (from the catalog, with its dataset) against the latency measured here."""
    points = [(p, published_miou(p)) for p in results if isinstance(p, Prediction)]
    points = [(p, m) for p, m in points if m is not None]
    if not points:
        return None
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    datasets = list(dict.fromkeys(m[1] for _, m in points))
    palette = colormaps["tab10"]
    for prediction, (miou, dataset) in points:
        latency = sum(prediction.timings_ms.get(step, 0.0) for step in STEPS)
        axes.scatter(latency, miou, color=palette(datasets.index(dataset) % 10), s=40)
        axes.annotate(prediction.spec.name, (latency, miou), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for index, dataset in enumerate(datasets):
        axes.scatter([], [], color=palette(index % 10), label=dataset)
    axes.set_xlabel(f"measured latency, ms on {points[0][0].device} (loading excluded)")
    axes.set_ylabel("published mIoU (%)")
    axes.set_title("Published accuracy vs measured latency (numbers of different datasets do not compare)", fontsize=9)
    axes.legend(fontsize=7, loc="best")
    axes.grid(alpha=0.3)
    return figure


def heatmap(matrix: np.ndarray, names: list[str], title: str) -> Figure:
    """A square matrix of values in [0, 1] with the value in each cell."""
    size = max(3.5, 0.9 * len(names) + 1.5)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    axes.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            value = matrix[i, j]
            text = "–" if np.isnan(value) else f"{value:.2f}"
            axes.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if value < 0.6 else "black")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return figure


def confusion_chart(scores: Scores, title: str, limit: int = 15) -> Figure:
    """Row-normalised confusion matrix over the `limit` classes with most truth pixels."""
    truth_pixels = scores.confusion.sum(1) + scores.outside
    ids = [int(i) for i in np.argsort(-truth_pixels)[:limit] if truth_pixels[i] > 0]
    predicted = scores.confusion.sum(0)
    ids += [int(i) for i in np.argsort(-predicted) if predicted[i] > 0 and i not in ids][: max(0, limit - len(ids))]
    matrix = scores.confusion[np.ix_(ids, ids)].astype(np.float64)
    rows = np.maximum(truth_pixels[ids], 1)[:, None]
    names = [scores.class_names[i].strip() for i in ids]
    figure = heatmap(matrix / rows, names, title)
    axes = figure.axes[0]
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    return figure


def measured_published_chart(rows: list[dict]) -> Figure | None:
    """The leaderboard's measured mIoU beside the published one, per model (evidence.leaderboard rows); models
    compared in coarse classes are hatched: their measured number does not compare with the published one."""
    rows = [row for row in rows if row["measured mIoU (%)"] is not None or row["published mIoU (%)"] is not None]
    if not rows:
        return None
    figure = Figure(figsize=(7, 0.45 * len(rows) + 1.6))
    axes = figure.subplots()
    positions = np.arange(len(rows))
    measured = [row["measured mIoU (%)"] or 0.0 for row in rows]
    published = [row["published mIoU (%)"] or 0.0 for row in rows]
    coarse = ["coarse" in row["compared in"] for row in rows]
    bars = axes.barh(positions - 0.2, measured, height=0.4, color="#1f77b4", label=f"measured ({rows[0]['dataset split']})")
    for bar, is_coarse in zip(bars, coarse):
        if is_coarse:
            bar.set_hatch("//")
            bar.set_alpha(0.6)
    axes.barh(positions + 0.2, published, height=0.4, color="#ff7f0e", label="published (catalog)")
    axes.set_yticks(positions, [row["model"] + (" (coarse)" if c else "") for row, c in zip(rows, coarse)], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("mIoU (%)")
    axes.set_xlim(0, 100)
    axes.set_title("Measured against published mIoU (hatched: coarse classes, not comparable)", fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure
