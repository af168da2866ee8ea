"""Explanation cards: every catalog family and every surveyed architecture has one, every card is
complete and sourced, and every card's diagram is drawn from its spec."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seggallery.cache import CACHE_ENV
from seggallery.catalog import catalog
from seggallery.explain import diagrams
from seggallery.explain.card import (
    CardError,
    card_for_family,
    cards,
    get_card,
    load_card,
)

# The architectures of the survey the product is built from (issue 4), one card each.
SURVEY = [
    "fcn", "dilatednet", "parsenet", "deeplab", "deeplabv3", "deeplabv3plus", "pspnet", "pssl", "unet", "segnet",
    "reseg", "refinenet", "fc_densenet", "enet", "linknet", "gfrnet", "decouplednet", "gan_semisupervised", "deepmask",
    "mask_rcnn", "yolact", "solo", "masklab", "panet", "danet", "fastfcn", "gated_scnn", "oneformer",
]


def test_every_catalog_family_has_a_card():
    families = {spec.family for spec in catalog().values()}
    missing = sorted(family for family in families if card_for_family(family) is None)
    assert not missing, f"add a card in seggallery/explain/cards/ with families = {missing}"


def test_every_surveyed_architecture_has_a_card():
    assert sorted(set(SURVEY) - set(cards())) == []


def test_card_families_name_real_families():
    known = {spec.family for spec in catalog().values()}
    for card in cards().values():
        assert set(card.families) <= known, f"{card.id}: unknown families {set(card.families) - known}"


@pytest.mark.parametrize("card_id", sorted(cards()))
def test_card_is_complete_and_every_number_and_link_has_a_source(card_id):
    card = get_card(card_id)
    assert card.paper.url.startswith("https://")
    assert len(card.mechanism) > 400, "the mechanism deserves a real paragraph"
    assert card.idea and card.strengths and card.limits
    for number in card.numbers:
        assert number.source.strip() and number.dataset.strip(), number
        assert number.url.startswith("https://"), f"{card_id}: {number.metric} needs the link to its source"
    for link in (card.paper, *card.links):
        assert link.url.startswith("https://") and link.label.strip()
    kinds = {node.kind for node in card.diagrams[0].nodes}  # later diagrams may zoom into one block
    assert {"input", "output"} <= kinds, "the main diagram runs from an input to an output"


def test_runnable_models_are_computed_from_the_catalog():
    fcn = get_card("fcn")
    assert [spec.id for spec in fcn.runnable_models()] == [s.id for s in catalog().values() if s.family == "fcn"]
    assert get_card("segnet").runnable_models() == []


@pytest.mark.parametrize("card_id", sorted(cards()))
def test_a_card_says_why_nothing_runs_exactly_when_no_catalog_model_does(card_id):
    card = get_card(card_id)
    if card.runnable_models():
        assert card.not_runnable is None, f"{card_id} has runnable models: drop its not_runnable"
    else:
        assert card.not_runnable, f"{card_id}: no catalog model runs it; say why in not_runnable (cards/README.md)"
        assert card.not_runnable.reason.strip() and card.not_runnable.evidence
        assert all(link.url.startswith("https://") and link.label.strip() for link in card.not_runnable.evidence)


def test_the_tab_shows_why_nothing_runs_with_the_evidence():
    from seggallery.ui.explain import runnable_markdown

    segnet = get_card("segnet")
    shown = runnable_markdown(segnet)
    assert segnet.not_runnable.reason in shown and "CC BY-NC" in shown
    assert all(f"]({link.url})" in shown for link in segnet.not_runnable.evidence)
    assert "Why nothing runs" not in runnable_markdown(get_card("fcn"))


def _write_card(tmp_path, number: str = "", node_inputs: str = '["image"]'):
    text = f'''
id = "bad"
title = "Bad"
year = 2020
authors = ["A. Person"]
venue = "nowhere"
paper = {{ label = "paper", url = "https://example.org/paper" }}
task = "semantic"
idea = "none"
mechanism = "text"
strengths = ["one"]
limits = ["one"]
{number}
[[diagram]]
title = "d"
[[diagram.node]]
id = "image"
label = "image"
kind = "input"
stride = 1
[[diagram.node]]
id = "labels"
label = "label map"
kind = "output"
stride = 1
inputs = {node_inputs}
'''
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_a_number_without_its_source_is_refused(tmp_path):
    assert load_card(_write_card(tmp_path)).id == "bad"
    unsourced = '[[numbers]]\nmetric = "mIoU"\nvalue = 50.0\ndataset = "somewhere"\n'
    with pytest.raises(CardError, match="source"):
        load_card(_write_card(tmp_path, number=unsourced))


def test_a_not_runnable_reason_without_https_evidence_is_refused(tmp_path):
    reason = '[not_runnable]\nreason = "Caffe only."\n'
    card = load_card(_write_card(tmp_path, number=reason + '[[not_runnable.evidence]]\nlabel = "zoo"\nurl = "https://example.org/zoo"\n'))
    assert card.not_runnable.reason == "Caffe only." and card.not_runnable.evidence[0].url == "https://example.org/zoo"
    with pytest.raises(CardError, match="not_runnable needs evidence"):
        load_card(_write_card(tmp_path, number=reason))
    with pytest.raises(CardError, match="not an https link"):
        load_card(_write_card(tmp_path, number=reason + '[[not_runnable.evidence]]\nlabel = "zoo"\nurl = "http://example.org/zoo"\n'))


def test_a_diagram_arrow_from_an_unknown_box_is_refused(tmp_path):
    with pytest.raises(CardError, match="before they are defined"):
        load_card(_write_card(tmp_path, node_inputs='["nowhere"]'))


def test_every_card_diagram_renders(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    for card in cards().values():
        path = diagrams.diagram_png(card)
        assert path.parent == tmp_path / "diagrams"
        picture = np.asarray(Image.open(path).convert("RGB"))
        assert picture.shape[0] > 200 and picture.shape[1] > 400, card.id
        colours = {tuple(c) for c in picture.reshape(-1, 3)[:: 97]}
        assert len(colours) > 8, f"{card.id}: the diagram looks blank"
        assert diagrams.diagram_png(card) == path  # cached: the second call reuses the file


def test_a_diagram_draws_every_box_and_changes_when_its_spec_does():
    card = get_card("fcn")
    figure = diagrams.draw(card)
    try:
        texts = {text.get_text().replace("\n", " ") for ax in figure.axes for text in ax.texts}
    finally:
        diagrams.plt.close(figure)
    for diagram in card.diagrams:
        for node in diagram.nodes:
            assert node.label in texts and node.size in texts, node
    import dataclasses

    moved = dataclasses.replace(card, diagrams=card.diagrams[:1])
    assert diagrams._fingerprint(moved) != diagrams._fingerprint(card)
