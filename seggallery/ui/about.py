"""The About tab: what the app is, the catalog with sources and licences, and where it runs."""

from __future__ import annotations

import gradio as gr

from ..docs import model_table_markdown
from ..runtime.devices import device_name
from ..runtime.engine import Engine


def build_about_tab(engine: Engine) -> None:
    with gr.Tab("About", id="about"):
        gr.Markdown(
            "SegGallery runs pretrained segmentation checkpoints from torchvision, segmentation-models-pytorch "
            "(smp-hub) and transformers on the photo you upload, with each checkpoint's own preprocessing, and shows "
            f"their label maps side by side. Models run on **{device_name(engine.device)}** here. Weights are "
            "downloaded on first use into the standard caches (`TORCH_HOME`, `HF_HOME`).\n\n"
            "Published numbers below come from the source named in each catalog entry; timings in the Compare tab "
            "are measured here.\n\n" + model_table_markdown()
        )
