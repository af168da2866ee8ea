"""The Explanations tab: one card per architecture (text, diagram, published numbers), and the decoder
mechanism of runnable models watched live on the user's photo through forward hooks."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..catalog import catalog
from ..explain.card import Card, cards, get_card
from ..explain.diagrams import diagram_png
from ..explain.probes import look_inside, probed_models
from ..explain.views import all_pictures, ladder_chart, ladder_rows
from ..images import ImageError, load_image
from ..runtime.engine import Engine
from ..runtime.results import Failure
from .common import MAX_MODELS, example_images, failure_caption, model_choices, select_models
from .inputs import PhotoInput

LADDER_COLUMNS = ["step", "modules", "h x w", "of the input", "channels"]
TASK_WORDS = {"semantic": "semantic segmentation", "instance": "instance segmentation", "panoptic": "panoptic segmentation",
              "universal": "universal (semantic, instance, panoptic) segmentation",
              "semi-supervised": "semi-supervised semantic segmentation", "pre-training": "pre-training for segmentation"}


def card_choices() -> list[tuple[str, str]]:
    return [(f"{card.year} · {card.short}" + (" · runnable" if card.runnable_models() else ""), card.id)
            for card in cards().values()]


def default_card() -> str:
    return "fcn" if "fcn" in cards() else next(iter(cards()))


def card_heading(card: Card) -> str:
    return (f"## {card.title}\n**{card.year}** · {card.authors_text} · {card.venue} · "
            f"[{card.paper.label}]({card.paper.url}) · {TASK_WORDS[card.task]}")


def card_markdown(card: Card) -> str:
    """How it decodes, what SegGallery runs, strengths and limits."""
    parts = ["### How it decodes", card.mechanism]
    if card.implementation:
        parts += ["### What SegGallery runs", card.implementation]
    parts += ["### Strengths", "\n".join(f"- {item}" for item in card.strengths),
              "### Limits", "\n".join(f"- {item}" for item in card.limits)]
    return "\n\n".join(parts)


def sources_markdown(card: Card) -> str:
    """Published numbers (each with its dataset and source) and links."""
    parts = []
    if card.numbers:
        rows = ["| published | source |", "|---|---|"]
        for number in card.numbers:
            source = f"[{number.source}]({number.url})" if number.url else number.source
            note = f" ({number.note})" if number.note else ""
            rows.append(f"| **{number.text}** {number.metric}, {number.dataset}{note} | {source} |")
        parts += ["### Published numbers", "\n".join(rows)]
    else:
        parts += ["### Published numbers", "None listed: only numbers with a verifiable source are shown."]
    if card.links:
        parts += ["### Links", "\n".join(f"- [{link.label}]({link.url})" for link in card.links)]
    return "\n\n".join(parts)


def runnable_markdown(card: Card) -> str:
    models = card.runnable_models()
    if not models and card.not_runnable:
        evidence = "\n".join(f"- [{link.label}]({link.url})" for link in card.not_runnable.evidence)
        return (f"**No catalog model uses this architecture.**\n\n**Why nothing runs here:** {card.not_runnable.reason}"
                f"\n\n**Evidence:**\n{evidence}")
    if not models:
        return ("**No catalog model uses this architecture yet.** It is explained for context: the ideas it "
                "introduced live on in the runnable ones.")
    live = {spec.id for spec in probed_models(card.families)}
    items = [f"- {spec.name} (`{spec.id}`, {spec.label_set.name.split(' (')[0]})" + (" · live view" if spec.id in live else "")
             + (f" · ⚠ **{spec.licence_note}** ({spec.license})" if spec.licence_note else "")
             + (f"  \n  <small>{spec.notes}</small>" if spec.notes else "") for spec in models]
    return f"**Runnable here ({len(models)}):**\n" + "\n".join(items)


def overview_markdown() -> str:
    lines = ["| year | architecture | decoder idea | runnable models |", "|---|---|---|---|"]
    for card in cards().values():
        count = len(card.runnable_models())
        lines.append(f"| {card.year} | {card.short} | {card.idea} | {count or '–'} |")
    return "\n".join(lines)


def live_choices(card: Card) -> list[tuple[str, str]]:
    return [(spec.name, spec.id) for spec in probed_models(card.families)]


def compare_label(card: Card) -> str:
    return f"Compare these ({min(len(card.runnable_models()), MAX_MODELS)}) in the Compare tab"


def show_card(card_id: str):
    """Heading, diagram, text, sources, runnable models, compare button, live-view model picker for one card."""
    card = get_card(card_id)
    choices = live_choices(card)
    return (
        card_heading(card),
        str(diagram_png(card)),
        card_markdown(card),
        sources_markdown(card),
        runnable_markdown(card),
        gr.Button(visible=bool(card.runnable_models()), value=compare_label(card)),
        gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, interactive=bool(choices)),
    )


def compare_these(card_id: str):
    """Switch to the Compare tab with this card's runnable models selected."""
    ids = select_models([spec.id for spec in get_card(card_id).runnable_models()])
    return gr.Tabs(selected="compare"), gr.Dropdown(choices=model_choices(), value=ids, multiselect=True)


def look(engine: Engine, photo: str | bytes | None, model_id: str | None):
    """(status markdown, gallery items, captions markdown, ladder chart, ladder table) for one model on one photo."""
    empty = ([], "", None, pd.DataFrame(columns=LADDER_COLUMNS))
    if not model_id:
        return ("No model of this architecture can run here yet, so there is nothing to watch.", *empty)
    if model_id not in catalog():
        return (f"There is no model {model_id!r} in the catalog.", *empty)
    if not photo:
        return ("Upload a photo or pick an example first.", *empty)
    try:
        image = load_image(photo)  # a path, or the bytes of a pasted image (PhotoInput leaves decoding to us)
    except ImageError as error:
        return (f"**This image cannot be used:** {error}.", *empty)
    inside = look_inside(engine, model_id, image.pixels)
    if isinstance(inside, Failure):
        return (failure_caption(inside), *empty)
    gallery = all_pictures(inside, image.pixels)
    status = [f"**What to look for.** {inside.probe.look_for}",
              f"{inside.spec.name} saw the photo as a {inside.input_size[0]}x{inside.input_size[1]} input "
              f"(its own preprocessing); the photo is {image.pixels.shape[1]}x{image.pixels.shape[0]}."]
    if inside.missing:
        status.append(f"Not captured (module not in this model, or did not run): {', '.join(inside.missing)}.")
    captions = "\n".join(f"{index}. {caption}" for index, (_, caption) in enumerate(gallery, start=1))
    ladder = pd.DataFrame(ladder_rows(inside), columns=LADDER_COLUMNS)
    return ("\n\n".join(status), gallery, captions, ladder_chart(inside), ladder)


def build_explain_tab(engine: Engine, tabs: gr.Tabs, compare_models: gr.Dropdown) -> None:
    """`tabs` and `compare_models` (the Compare tab's picker) let "compare these" switch tabs with a selection."""
    first = get_card(default_card())
    with gr.Tab("Explanations", id="explain"):
        gr.Markdown("How each architecture turns coarse features back into a full-resolution label map, and, for the "
                    "models that run here, that mechanism at work on your photo.")
        with gr.Row():
            picker = gr.Dropdown(choices=card_choices(), value=first.id, label="Architecture", scale=3,
                                 info="oldest first; 'runnable' ones have models in the catalog")
        with gr.Accordion("All architectures at a glance", open=False):
            gr.Markdown(overview_markdown())
        heading = gr.Markdown(card_heading(first))
        diagram = gr.Image(str(diagram_png(first)), label="Diagram", show_label=False, interactive=False, format="png")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                text = gr.Markdown(card_markdown(first), elem_id="sg-card")
            with gr.Column(scale=2):
                runnable = gr.Markdown(runnable_markdown(first))
                compare_button = gr.Button(visible=bool(first.runnable_models()), variant="secondary",
                                           value=compare_label(first))
                sources = gr.Markdown(sources_markdown(first))
        gr.Markdown("### Watch the mechanism on your photo")
        with gr.Row():
            with gr.Column(scale=3):
                photo = PhotoInput(type="filepath", label="Photo", sources=["upload", "clipboard"], height=300)
                gr.Examples(examples=[[p] for p in example_images()], inputs=[photo], label="Example photos")
            with gr.Column(scale=2):
                choices = live_choices(first)
                # custom values: API callers may name any catalog model; look() checks the id
                model = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Model",
                                    info="catalog models of this architecture with a live view", interactive=bool(choices),
                                    allow_custom_value=True)
                look_button = gr.Button("Look inside", variant="primary")
                status = gr.Markdown()
        gallery = gr.Gallery(label="Inside the decoder", columns=3, height="auto", object_fit="contain", format="png")
        with gr.Accordion("What each picture shows (sizes and strides measured on this run)", open=True):
            captions = gr.Markdown()
        ladder_image = gr.Image(label="Resolution ladder", interactive=False, format="png")
        ladder_table = gr.Dataframe(headers=LADDER_COLUMNS, label="Feature-map size at each stage (the modules that produce it)",
                                    interactive=False, wrap=True)

        picker.change(show_card, inputs=[picker], outputs=[heading, diagram, text, sources, runnable, compare_button, model],
                      api_name="explain_card")
        compare_button.click(compare_these, inputs=[picker], outputs=[tabs, compare_models], api_name=False)
        look_button.click(lambda photo_value, model_id: look(engine, photo_value, model_id), inputs=[photo, model],
                          outputs=[status, gallery, captions, ladder_image, ladder_table], api_name="look_inside")

