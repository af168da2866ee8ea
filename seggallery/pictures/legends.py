"""Legends: which colour is which class, and how much of the photo it covers (HTML and drawn)."""

from __future__ import annotations

import html

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..evidence.areas import ClassArea


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
