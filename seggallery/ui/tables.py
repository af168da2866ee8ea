"""The Compare tab's tables and their chart: % of the image per class (the top classes and "other", as a
table and as stacked bars) and the timings; hidden until a comparison has something to show.

The pixel counts are in areas.csv and report.json (seggallery/report.py), not here: a % and a pixel column
per model made the table wider than the page.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..evidence.areas import TOP_CLASSES, area_shares
from ..pictures.charts import stacked_area_chart
from ..runtime.results import Prediction, Result

# device and precision share a column, so that the table fits a 900 px wide page without scrolling sideways
TIMING_COLUMNS = ["model", "device · precision", "call", "load", "preprocess", "forward", "postprocess", "crf", "total"]
AREA_LABEL = (f"Area per class (% of the image; the {TOP_CLASSES} largest classes and the rest as \"other\"; models "
              "with the same label set share rows, empty: not in that model's label set; pixels are in the ZIP)")


# Gradio sets tables in a monospace font, whose long headers ("postprocess") make each column wide: the
# interface's own font (with figures of equal width) lets eight columns fit a 900 px wide page
TABLES_CSS = """
#sg-areas table, #sg-timings table { font-family: var(--font); font-variant-numeric: tabular-nums; }
"""


def timing_frame(results: list[Result]) -> pd.DataFrame:
    """One row per model that ran; a "download" column only when some model downloaded its weights, a "crf"
    column only when a model was refined by the CRF (its own step)."""
    predictions = predictions_of(results)
    columns = list(TIMING_COLUMNS)
    if not any("crf" in p.timings_ms for p in predictions):
        columns.remove("crf")
    if any("download" in p.timings_ms for p in predictions):
        columns.insert(columns.index("load"), "download")
    steps = columns[columns.index("call") + 1 :]
    rows = [[p.spec.name, f"{p.device} · {p.precision}", "cold (first use)" if p.cold else "warm",
             *(round(p.timings_ms[k], 1) if k in p.timings_ms else None for k in steps)] for p in predictions]
    return pd.DataFrame(rows, columns=columns)


def predictions_of(results: list[Result]) -> list[Prediction]:
    return [r for r in results if isinstance(r, Prediction)]


def area_frame(results: list[Result]) -> pd.DataFrame:
    shares = area_shares(predictions_of(results))
    return pd.DataFrame(shares.table(), columns=shares.headers())


def area_bars(comparison):
    """The stacked-bar chart of the area table, or None before any model ran."""
    predictions = predictions_of(comparison.results) if comparison is not None else []
    return stacked_area_chart(area_shares(predictions)) if predictions else None


def table_updates(results: list[Result]) -> list:
    """The tables' group (shown only when a model ran), the area table, the timing table."""
    return [gr.Column(visible=bool(predictions_of(results))), area_frame(results), timing_frame(results)]


def build_tables() -> tuple[gr.Column, gr.Dataframe, gr.Plot, gr.Dataframe]:
    with gr.Column(visible=False) as group:
        areas = gr.Dataframe(label=AREA_LABEL, interactive=False, wrap=True, max_height=900, elem_id="sg-areas")  # all 13 rows
        bars = gr.Plot(label="Area per class, stacked (the table's numbers)", elem_id="sg-area-bars")
        timings = gr.Dataframe(label="Timings per model (ms; GPU-synchronised)", interactive=False, wrap=True, elem_id="sg-timings")
    return group, areas, bars, timings
