"""The Explanations tab in the app: built into the Blocks, and the real app on 127.0.0.1 driven with gradio_client."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
import torch
from gradio_client import Client, handle_file

from seggallery.catalog import catalog
from seggallery.explain.card import cards
from seggallery.runtime.engine import Engine
from seggallery.ui import build_app
from seggallery.ui.explain import compare_these, look

CPU = torch.device("cpu")


def _components(app: gr.Blocks) -> list[dict]:
    return app.get_config_file()["components"]


def test_the_tab_and_its_card_picker_are_in_the_app():
    app = build_app(Engine(device=CPU))
    components = _components(app)
    tabs = [c["props"].get("label") for c in components if c["type"] == "tabitem"]
    assert "Explanations" in tabs
    picker = next(c for c in components if c["type"] == "dropdown" and c["props"].get("label") == "Architecture")
    assert len(picker["props"]["choices"]) == len(cards())


@pytest.fixture(scope="module")
def client(app_server):
    """The real app (`python app.py`, see conftest.app_server), with fake weights for the LR-ASPP among others."""
    assert "lraspp_mobilenet_v3_large" in app_server.models_with_weights
    return Client(app_server.url, verbose=False)


def test_a_card_is_served_with_its_diagram(client):
    heading, diagram, text, sources, runnable = client.predict("segnet", api_name="/explain_card")[:5]
    assert heading.startswith("## SegNet") and "[SegNet" in heading
    assert Path(diagram).stat().st_size > 10_000
    assert "max-unpooling" in text
    assert "No catalog model uses this architecture" in runnable
    assert cards()["segnet"].not_runnable.reason in runnable  # why nothing runs, with its evidence links
    heading, _, _, sources, runnable = client.predict("fcn", api_name="/explain_card")[:5]
    assert "62.2%" in sources and "Long et al. 2015, Table 3" in sources
    assert all(f"`{spec.id}`" in runnable for spec in catalog().values() if spec.family == "fcn")


def test_the_mechanism_is_shown_on_a_photo(client, photo_png):
    status, gallery, captions, ladder_chart, ladder = client.predict(
        handle_file(str(photo_png)), "lraspp_mobilenet_v3_large", api_name="/look_inside")
    assert status.startswith("**What to look for.**")
    assert len(gallery) == 1 + 5  # the final map, then one picture per tap of the LR-ASPP probe
    assert len(captions.splitlines()) == len(gallery)
    assert "1/16 of the 693x520 model input" in captions and "global" not in captions.splitlines()[0]
    assert Path(ladder_chart).exists()
    strides = [row[3] for row in ladder["data"]]
    assert strides[0] == "1/1" and "1/16" in strides and "global (1x1)" in strides


def test_compare_these_switches_to_compare_with_the_cards_models():
    tabs, models = compare_these("fcn")
    assert tabs.selected == "compare"
    assert models.value == [spec.id for spec in catalog().values() if spec.family == "fcn"]


def test_the_live_view_says_what_is_missing(photo_png, tmp_path):
    engine = Engine(device=CPU)
    assert look(engine, None, "lraspp_mobilenet_v3_large")[0].startswith("Upload a photo")
    assert "no model 'nope'" in look(engine, str(photo_png), "nope")[0]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert look(engine, str(broken), "lraspp_mobilenet_v3_large")[0].startswith("**This image cannot be used:**")
    assert "nothing to watch" in look(engine, str(photo_png), None)[0]
