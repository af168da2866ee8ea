"""Captured tensors -> pictures a newcomer can read, each with a plain-text caption stating size and stride.

- class scores: the argmax at the map's own resolution, in the label set's colours, enlarged without
  smoothing, so every cell of the output-stride grid stays visible;
- feature maps: their first three principal components as red, green and blue (similar colour =
  similar feature vector), also enlarged without smoothing;
- pooled vectors (C x 1 x 1): one square per channel, coloured by value;
- mask-classification queries: each strong query's mask tinted in its class colour over the photo;
- attention weights: one query cell's weights over the map, as a heat map over the photo, the cell boxed;
- the resolution ladder: feature-map size at each stage, as a chart and as table rows.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..pictures.overlays import colorize, overlay
from .probes import Captured, Inside, Rung  # noqa: E402

DISPLAY_SIDE = 360  # longest side of each picture, in pixels
TOP_QUERIES = 6

Picture = tuple[np.ndarray, str]


def stride_text(stride: float) -> str:
    nearest = round(stride)
    if nearest >= 1 and abs(stride - nearest) <= 0.06 * stride:
        return f"1/{nearest}"
    return f"1/{stride:.2f}"


def enlarge(picture: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """Resize to `side` on the longer edge with nearest-neighbour sampling: cells stay sharp squares."""
    height, width = picture.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.NEAREST))


def principal_rgb(features: torch.Tensor) -> np.ndarray:
    """C x h x w -> h x w x 3: the first three principal components of the feature vectors, as colours."""
    channels, height, width = features.shape
    points = features.reshape(channels, -1).T.double()
    points = points - points.mean(0, keepdim=True)
    components = min(3, channels, points.shape[0])
    if components == 0 or float(points.abs().max()) == 0.0:
        return np.full((height, width, 3), 128, dtype=np.uint8)
    with torch.random.fork_rng(devices=[]):  # randomized SVD: seeded, without touching the global generator
        torch.manual_seed(0)
        _, _, basis = torch.pca_lowrank(points, q=components, center=False, niter=4)
    projected = points @ basis  # N x components
    low = torch.quantile(projected, 0.02, dim=0)
    high = torch.quantile(projected, 0.98, dim=0)
    scaled = ((projected - low) / (high - low).clamp_min(1e-12)).clamp(0, 1)
    rgb = torch.full((points.shape[0], 3), 0.5, dtype=torch.float64)
    rgb[:, :components] = scaled
    return (rgb.reshape(height, width, 3).numpy() * 255 + 0.5).astype(np.uint8)


def vector_grid(vector: torch.Tensor) -> np.ndarray:
    """C values -> a square of C cells coloured by value (viridis; empty cells white)."""
    values = vector.flatten().double()
    side = math.ceil(math.sqrt(values.numel()))
    low, high = float(values.min()), float(values.max())
    normalized = (values - low) / (high - low) if high > low else torch.full_like(values, 0.5)
    colors = matplotlib.colormaps["viridis"](normalized.numpy())[:, :3]
    grid = np.ones((side * side, 3))
    grid[: values.numel()] = colors
    return (grid.reshape(side, side, 3) * 255 + 0.5).astype(np.uint8)


def _caption(captured: Captured, inside: Inside, what: str) -> str:
    parts = [captured.tap.title]
    if captured.layer:
        parts.append(f"({captured.layer})")
    parts.append(f"· {what}")
    if captured.tap.note:
        parts.append(f"· {captured.tap.note}")
    return " ".join(parts)


def _map_size(inside: Inside, height: int, width: int) -> str:
    return f"{height}x{width}, {stride_text(inside.stride(height, width))} of the {inside.input_size[0]}x{inside.input_size[1]} model input"


def pictures(captured: Captured, inside: Inside, photo: np.ndarray) -> list[Picture]:
    """One or more (picture, caption) for one captured tensor."""
    tensor = captured.tensor
    labels = inside.spec.label_set
    show = captured.tap.show
    if show == "query_masks":
        return query_pictures(captured, inside, photo)
    if show in ("attention", "cross_attention"):
        return [attention_picture(captured, inside, photo)]
    if tensor.dim() != 3:
        return [(np.full((8, 8, 3), 255, np.uint8), f"{captured.tap.title}: a tensor of shape {tuple(tensor.shape)} (no picture)")]
    channels, height, width = tensor.shape
    if show == "vector" or height * width == 1:
        summary = f"{channels} values, one per channel, for the whole image ({height}x{width})"
        return [(enlarge(vector_grid(tensor.mean((1, 2)))), _caption(captured, inside, summary))]
    if show == "scores" and channels == len(labels):
        cells = colorize(tensor.argmax(0).numpy(), labels)
        present = len(np.unique(tensor.argmax(0).numpy()))
        what = f"{channels} class scores at {_map_size(inside, height, width)}; argmax, {present} classes present"
        return [(enlarge(cells), _caption(captured, inside, what))]
    what = f"{channels} channels at {_map_size(inside, height, width)}; colours: first 3 principal components"
    return [(enlarge(principal_rgb(tensor)), _caption(captured, inside, what))]


def _window_of(photo: np.ndarray, captured: Captured) -> np.ndarray:
    """The part of the photo the queries saw: all of it, or the window (top, left, bottom, right fractions)
    of a model that segments in windows (EoMT)."""
    if "window" not in captured.extra:
        return photo
    top, left, bottom, right = captured.extra["window"].tolist()
    height, width = photo.shape[:2]
    return photo[round(top * height):round(bottom * height), round(left * width):round(right * width)]


def query_pictures(captured: Captured, inside: Inside, photo: np.ndarray, top: int = TOP_QUERIES) -> list[Picture]:
    """The queries that contribute most to the semantic map: class probability x mean mask probability."""
    labels = inside.spec.label_set
    masks = captured.tensor.sigmoid()  # Q x h x w
    classes = captured.extra["class_logits"].softmax(-1)[:, :-1]  # Q x K: the last column is "no object"
    confidence, class_ids = classes.max(-1)
    contribution = confidence * masks.mean((1, 2))
    order = contribution.argsort(descending=True)[:top]
    height, width = masks.shape[1:]
    small_photo = np.asarray(Image.fromarray(_window_of(photo, captured)).resize((width, height), Image.Resampling.BILINEAR))
    seen = "first window" if "window" in captured.extra else "image"
    result = []
    for query in order.tolist():
        class_id = int(class_ids[query])
        mask = masks[query].numpy()[..., None]
        color = np.asarray(labels.colors[class_id] if class_id < len(labels) else (255, 255, 255), dtype=np.float32)
        tinted = small_photo.astype(np.float32) * (1 - 0.75 * mask) + color * 0.75 * mask
        name = labels.names[class_id] if class_id < len(labels) else f"class {class_id}"
        what = (f"{captured.tap.title} {query} of {masks.shape[0]} -> {name} (class probability "
                f"{float(confidence[query]):.2f}, mask covers {100 * float(masks[query].mean()):.0f}% of the {seen}, at "
                f"{_map_size(inside, height, width)})")
        result.append((enlarge(tinted.clip(0, 255).astype(np.uint8)), what))
    return result


def attention_picture(captured: Captured, inside: Inside, photo: np.ndarray) -> Picture:
    """One query cell's attention weights (1 x h x w, summing to 1; zero off its cross for criss-cross attention) as a heat map (magma, scaled to their
    maximum) over the grey photo at the map's size, enlarged without smoothing; a cyan box around the query cell
    and its neighbours (one cell is a few pixels on a large map)."""
    weights = captured.tensor[0].double()
    height, width = weights.shape
    row, column = (int(v) for v in captured.extra["query"])
    grey = np.asarray(Image.fromarray(photo).convert("L").resize((width, height), Image.Resampling.BILINEAR), np.float64)
    peak = float(weights.max())
    heat = matplotlib.colormaps["magma"]((weights / peak if peak > 0 else weights).numpy())[..., :3] * 255
    blended = (0.75 * heat + 0.25 * grey[..., None]).clip(0, 255).astype(np.uint8)
    picture = enlarge(blended)
    scale = picture.shape[0] / height
    top, left = max(0, round((row - 1) * scale)), max(0, round((column - 1) * scale))
    bottom = min(picture.shape[0], round((row + 2) * scale)) - 1
    right = min(picture.shape[1], round((column + 2) * scale)) - 1
    picture = picture.copy()
    cyan = np.array([0, 255, 255], np.uint8)
    picture[top, left:right + 1] = picture[bottom, left:right + 1] = cyan
    picture[top:bottom + 1, left] = picture[top:bottom + 1, right] = cyan
    share = 100 * float(weights[weights >= 0.5 * peak].sum())
    if captured.tap.show == "cross_attention":  # only its column and its row take part
        cells, where = height + width - 1, f"its row and column ({height + width - 1} cells)"
    else:
        cells, where = height * width, f"all {height * width} cells"
    what = (f"weights of the cell at row {row + 1}, column {column + 1} (boxed with its neighbours) over {where} of "
            f"the {_map_size(inside, height, width)}; brightest = largest (max {peak:.4f}, uniform would be "
            f"{1 / cells:.4f}); the cells above half the maximum carry {share:.0f}% of the weight")
    return picture, _caption(captured, inside, what)


def final_picture(inside: Inside, photo: np.ndarray) -> Picture:
    height, width = photo.shape[:2]
    picture = overlay(photo, inside.mask, inside.spec.label_set, 0.6)
    return enlarge(picture, max(DISPLAY_SIDE, min(720, max(height, width)))), (
        f"Final label map of {inside.spec.name}: the last scores resized to the photo ({width}x{height}) and argmaxed")


def crf_pictures(inside: Inside, photo: np.ndarray) -> list[Picture]:
    """After the dense CRF: its label map, and where it differs from the map before (white)."""
    height, width = photo.shape[:2]
    side = max(DISPLAY_SIDE, min(720, max(height, width)))
    changed = inside.crf_mask != inside.mask
    after = (enlarge(overlay(photo, inside.crf_mask, inside.spec.label_set, 0.6), side),
             f"After the dense CRF ({inside.crf_ms:.0f} ms): the same scores, refined by 10 mean-field iterations "
             "of the spatial and the colour-bilateral kernels")
    difference = np.where(changed[..., None], 255, (photo * 0.35).astype(np.uint8)).astype(np.uint8)
    return [after, (enlarge(difference, side), f"Where the CRF changed the label: {100 * changed.mean():.1f}% of the pixels (white)")]


def all_pictures(inside: Inside, photo: np.ndarray) -> list[Picture]:
    result = [final_picture(inside, photo)] if inside.mask is not None else []
    if inside.mask is not None and inside.crf_mask is not None:
        result.extend(crf_pictures(inside, photo))
    for captured in inside.captured:
        result.extend(pictures(captured, inside, photo))
    return result


def rung_name(modules: list[str]) -> str:
    return modules[0] if len(modules) == 1 else f"{modules[0]} … {modules[-1]} ({len(modules)} modules)"


def rung_stride(inside: Inside, rung: Rung) -> str:
    if rung.height * rung.width == 1 and inside.input_size != (1, 1):
        return "global (1x1)"
    return stride_text(inside.stride(rung.height, rung.width))


def ladder_rows(inside: Inside) -> list[list]:
    """[step, modules, size, stride, channels] per rung."""
    return [[index + 1, rung_name(rung.modules), f"{rung.height}x{rung.width}", rung_stride(inside, rung), rung.channels]
            for index, rung in enumerate(inside.ladder)]


def ladder_chart(inside: Inside) -> np.ndarray:
    """Output stride of each rung, in execution order: down through the encoder, back up in the decoder.

    A 1x1 map (global pooling) has no meaningful stride; it is drawn one level below the coarsest map.
    """
    strides = [inside.stride(rung.height, rung.width) for rung in inside.ladder]
    is_global = [rung.height * rung.width == 1 and inside.input_size != (1, 1) for rung in inside.ladder]
    levels = [math.log2(max(s, 1e-6)) for s, g in zip(strides, is_global) if not g] or [0.0]
    global_level = math.ceil(max(levels)) + 1
    ys = [global_level if g else math.log2(max(s, 1e-6)) for s, g in zip(strides, is_global)]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(ys) + 2.0), 3.4), dpi=110)
    try:
        steps = list(range(1, len(ys) + 1))
        ax.plot(steps, ys, marker="s", color="#1f5f99", linewidth=1.4, markersize=6)
        ticks = list(range(math.floor(min(levels)), math.ceil(max(levels)) + 1))
        labels = [f"1/{2 ** t}" if t >= 0 else f"{2 ** -t}x" for t in ticks]
        if any(is_global):
            ticks.append(global_level)
            labels.append("1x1 (global)")
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_ylim(max(ticks) + 0.6, min(ticks) - 0.9)
        for step, y, rung in zip(steps, ys, inside.ladder):
            ax.annotate(f"{rung.height}x{rung.width}\n{rung.channels} ch", (step, y), textcoords="offset points",
                        xytext=(0, 7), ha="center", va="bottom", fontsize=6.5)
        ax.set_xticks(steps)
        ax.set_xticklabels([_short(rung.modules[0]) for rung in inside.ladder], rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("feature-map size\n(fraction of the input)", fontsize=8)
        ax.set_title(f"Resolution ladder of {inside.spec.name} ({inside.input_size[0]}x{inside.input_size[1]} input)",
                     fontsize=9, loc="left")
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)


def _short(module_path: str, keep: int = 2) -> str:
    parts = module_path.split(".")
    return ".".join(parts[-keep:]) if len(parts) > keep else module_path
