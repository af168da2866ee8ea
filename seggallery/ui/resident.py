"""The models held in memory: which, where, in what precision, and how much of each device's budget they use."""

from __future__ import annotations

import gradio as gr

from ..runtime.engine import Engine


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MB"


def resident_markdown(engine: Engine) -> str:
    """One line per device: the loaded models, least recently used first (the next to be evicted)."""
    segmenters = engine.cache.segmenters()
    if not segmenters:
        return "**Models in memory:** none yet (each loads on first use)."
    lines = []
    for device_type in dict.fromkeys(s.device.type for s in segmenters):
        here = [s for s in segmenters if s.device.type == device_type]
        budget = engine.cache.max_bytes.get(device_type, engine.cache.max_bytes.get("cpu", 0))
        models = ", ".join(f"`{s.spec.id}` ({_mb(s.nbytes())}, {s.tuning.precision})" for s in here)
        used = sum(s.nbytes() for s in here)
        lines.append(f"**Models in memory on {device_type}** ({_mb(used)} of {_mb(budget)}; "
                     f"least recently used first, evicted first): {models}")
    return "\n\n".join(lines)


def build_resident_panel(engine: Engine) -> tuple[gr.Markdown, callable]:
    """A Markdown panel and the function that refreshes it (chain it after the event that loads models)."""
    panel = gr.Markdown(lambda: resident_markdown(engine), elem_id="sg-resident")  # fresh on each page load
    return panel, lambda: resident_markdown(engine)
