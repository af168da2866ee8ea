"""Pictures from predictions: colour overlays, index-mask PNGs, legends (HTML and drawn), error cards."""

from __future__ import annotations

import html
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .analysis import ClassArea
from .catalog import LabelSet


def color_table(labels: LabelSet) -> np.ndarray:
    """At least 256 x 3 uint8: row i is class i's colour; ids outside the label set are white."""
    lut = np.full((max(256, len(labels)), 3), 255, dtype=np.uint8)
    lut[: len(labels)] = np.asarray(labels.colors, dtype=np.uint8)
    return lut


def colorize(mask: np.ndarray, labels: LabelSet) -> np.ndarray:
    """H x W class ids -> H x W x 3 colours of the label set (ids outside it are white)."""
    return color_table(labels)[mask]


def overlay(image: np.ndarray, mask: np.ndarray, labels: LabelSet, opacity: float = 0.5) -> np.ndarray:
    """Blend the class colours over the photo; opacity 0 shows the photo, 1 only the colours."""
    opacity = float(np.clip(opacity, 0.0, 1.0))
    colors = colorize(mask, labels).astype(np.float32)
    blended = image.astype(np.float32) * (1.0 - opacity) + colors * opacity
    return (blended + 0.5).astype(np.uint8)


def mask_png(mask: np.ndarray, labels: LabelSet) -> Image.Image:
    """The raw label map as an indexed PNG: pixel values are class ids, the palette is the label set's."""
    if mask.max(initial=0) > 255:
        raise ValueError("an indexed PNG holds class ids up to 255")
    indexed = Image.fromarray(mask.astype(np.uint8), mode="P")
    palette = labels.palette[: 256 * 3]
    indexed.putpalette(palette + [0] * (768 - len(palette)))
    return indexed


# Photo-like PNGs (overlays) shrink by only 7% from zlib level 1 to PIL's default 6 but take 5x longer to
# write: 55 vs 280 ms for a 1024x768 overlay on the 2-core development machine.
PNG_COMPRESS_LEVEL = 1
# Pictures shown in the browser: JPEG at this quality without chroma subsampling keeps class edges crisp
# (mean error about 1 level of 255 on a 50% overlay) and takes about 4 ms for 1024x768.
DISPLAY_JPEG_QUALITY = 92


def save_png(picture: np.ndarray | Image.Image, path) -> None:
    """A lossless file for the CLI's outputs and the ZIP, written fast (see PNG_COMPRESS_LEVEL)."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def display_jpeg(picture: np.ndarray) -> bytes:
    """H x W x 3 uint8 as the JPEG bytes the app sends to the browser (see DISPLAY_JPEG_QUALITY)."""
    with io.BytesIO() as buffer:
        Image.fromarray(picture).save(buffer, format="JPEG", quality=DISPLAY_JPEG_QUALITY, subsampling=0)
        return buffer.getvalue()


def legend_html(areas: list[ClassArea], limit: int = 12) -> str:
    """Swatch + class name + share for the classes present, largest first."""
    items = []
    for area in areas[:limit]:
        r, g, b = area.color
        items.append(
            '<span class="sg-legend-item">'
            f'<span class="sg-swatch" style="background:rgb({r},{g},{b})"></span>'
            f"{html.escape(area.name)} <small>{area.percent:.1f}%</small></span>"
        )
    if len(areas) > limit:
        rest = sum(area.percent for area in areas[limit:])
        items.append(f'<span class="sg-legend-item">+{len(areas) - limit} more <small>{rest:.1f}%</small></span>')
    return f'<div class="sg-legend">{"".join(items)}</div>'


LEGEND_CSS = """
.sg-legend { display: flex; flex-wrap: wrap; gap: 4px 10px; font-size: 0.9em; }
.sg-legend-item { display: inline-flex; align-items: center; gap: 4px; }
.sg-swatch { width: 14px; height: 14px; border-radius: 3px; border: 1px solid #8886; display: inline-block; }
"""


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def with_legend(picture: np.ndarray, areas: list[ClassArea], title: str = "") -> Image.Image:
    """The picture with a legend panel beneath it, for files that travel without the app."""
    height, width = picture.shape[:2]
    font_size = max(12, width // 60)
    row_height = font_size + 8
    columns = max(1, width // (font_size * 14))
    entries = [f"{a.name} {a.percent:.1f}%" for a in areas]
    rows = (len(entries) + columns - 1) // columns + (1 if title else 0)
    canvas = Image.new("RGB", (width, height + rows * row_height + 8), "white")
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(font_size)
    y = height + 4
    if title:
        draw.text((6, y), title, fill="black", font=font)
        y += row_height
    column_width = width // columns
    for index, (area, text) in enumerate(zip(areas, entries)):
        x = 6 + (index % columns) * column_width
        top = y + (index // columns) * row_height
        draw.rectangle([x, top + 2, x + font_size, top + 2 + font_size], fill=area.color, outline="gray")
        draw.text((x + font_size + 6, top), text, fill="black", font=font)
    return canvas
