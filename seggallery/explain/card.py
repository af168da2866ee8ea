"""Explanation cards: one TOML file per architecture in cards/, read and checked here.

A card says what an architecture is (year, authors, paper), how its decoder turns coarse features
into a full-resolution label map (in plain words, and as a diagram spec that diagrams.py draws),
what was published about it (every number with its dataset and source), its strengths and limits,
and which catalog families it explains. Which runnable models use it is computed from the catalog; a card
with none says why nothing runs (`not_runnable`: a reason and links to the evidence).
Field reference: cards/README.md.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..catalog import ModelSpec, catalog

CARDS_DIR = Path(__file__).parent / "cards"

# Node kinds a diagram may use; diagrams.py gives each its colour, and the legend names them.
NODE_KINDS = {
    "input": "input / output",
    "output": "input / output",
    "encoder": "encoder",
    "context": "context (pooling, ASPP, attention)",
    "decoder": "decoder",
    "fuse": "fusion (sum, concat, gate)",
    "upsample": "upsampling",
    "scores": "class scores",
    "refine": "refinement (CRF, RNN, ...)",
    "training": "training only",
}


class CardError(ValueError):
    """A card file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class PublishedNumber:
    """A number someone published, with exactly where: a paper's table or a model zoo's file."""

    metric: str
    value: float
    dataset: str
    source: str
    unit: str = ""
    url: str = ""  # link to the source, where it has one
    note: str = ""

    @property
    def text(self) -> str:
        value = f"{self.value:g}"
        return f"{value}{self.unit}" if self.unit in ("%", "") else f"{value} {self.unit}"


@dataclass(frozen=True)
class NotRunnable:
    """Why no catalog model runs this architecture (dead weight links, Caffe only, no framework here, ...),
    with the links that show it."""

    reason: str
    evidence: tuple[Link, ...]


@dataclass(frozen=True)
class DiagramNode:
    """One box of a diagram: placed in column `col`, on the row of its resolution (log2 of the stride)."""

    id: str
    label: str
    kind: str
    col: float
    row: float
    size: str  # the resolution tag drawn under the label ("1/8", "1x1 ... 6x6", "per RoI 14x14")
    inputs: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()  # parallel branches drawn stacked inside the box (ASPP rates, pool bins)
    on_ladder: bool = True  # placed by its stride: its row gets a "1/stride" tick (False for RoIs, 1x1 vectors, ...)


@dataclass(frozen=True)
class Diagram:
    title: str
    nodes: tuple[DiagramNode, ...]
    caption: str = ""


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    short: str
    year: int
    authors: tuple[str, ...]
    venue: str
    paper: Link
    task: str  # semantic / instance / panoptic / universal / semi-supervised / pre-training
    idea: str  # the decoder idea in a few words, for the overview table
    mechanism: str
    strengths: tuple[str, ...]
    limits: tuple[str, ...]
    diagrams: tuple[Diagram, ...]  # the paper's design first; then the variant SegGallery runs, where it differs
    families: tuple[str, ...] = ()
    implementation: str = ""  # what the implementations SegGallery runs actually do, where they differ
    numbers: tuple[PublishedNumber, ...] = ()
    links: tuple[Link, ...] = ()
    not_runnable: NotRunnable | None = None  # only on cards no catalog model uses
    path: Path | None = None

    @property
    def authors_text(self) -> str:
        if len(self.authors) <= 3:
            return ", ".join(self.authors)
        return f"{self.authors[0]}, {self.authors[1]}, ... {self.authors[-1]} ({len(self.authors)} authors)"

    def runnable_models(self) -> list[ModelSpec]:
        """Catalog models whose family this card explains, in catalog order."""
        return [spec for spec in catalog().values() if spec.family in self.families]


_REQUIRED = ("id", "title", "year", "authors", "venue", "paper", "task", "idea", "mechanism", "strengths", "limits", "diagram")
_TASKS = ("semantic", "instance", "panoptic", "universal", "semi-supervised", "pre-training")


def _fail(path: Path, message: str) -> CardError:
    return CardError(f"{path.name}: {message}")


def _link(path: Path, data: dict, where: str) -> Link:
    if not isinstance(data, dict) or not {"label", "url"} <= data.keys():
        raise _fail(path, f"{where} needs a label and a url")
    if not str(data["url"]).startswith("https://"):
        raise _fail(path, f"{where}: url {data['url']!r} is not an https link")
    return Link(str(data["label"]), str(data["url"]))


def _number(path: Path, data: dict) -> PublishedNumber:
    missing = [key for key in ("metric", "value", "dataset", "source") if not data.get(key)]
    if missing:
        raise _fail(path, f"published number {data!r} lacks {', '.join(missing)}: every number needs its dataset and source")
    if not isinstance(data["value"], (int, float)) or not math.isfinite(data["value"]):
        raise _fail(path, f"published number {data['metric']!r} has a non-numeric value {data['value']!r}")
    url = str(data.get("url", ""))
    if url and not url.startswith("https://"):
        raise _fail(path, f"published number {data['metric']!r}: url {url!r} is not an https link")
    return PublishedNumber(
        metric=str(data["metric"]), value=float(data["value"]), dataset=str(data["dataset"]), source=str(data["source"]),
        unit=str(data.get("unit", "")), url=url, note=str(data.get("note", "")),
    )


def _not_runnable(path: Path, data) -> NotRunnable | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str) or not data["reason"].strip():
        raise _fail(path, "not_runnable needs a reason: why no catalog model runs this architecture")
    evidence = data.get("evidence")
    if not isinstance(evidence, list) or not evidence:
        raise _fail(path, "not_runnable needs evidence: one or more { label, url } https links")
    return NotRunnable(" ".join(data["reason"].split()),
                       tuple(_link(path, entry, "not_runnable evidence") for entry in evidence))


def _diagram(path: Path, data: dict) -> Diagram:
    entries = data.get("node", [])
    if not entries or not data.get("title"):
        raise _fail(path, "every [[diagram]] needs a title and [[diagram.node]] entries")
    nodes: list[DiagramNode] = []
    ids: set[str] = set()
    col = -1.0
    for entry in entries:
        node_id = entry.get("id")
        if not node_id or node_id in ids:
            raise _fail(path, f"diagram node id {node_id!r} is missing or repeated")
        kind = entry.get("kind", "")
        if kind not in NODE_KINDS:
            raise _fail(path, f"diagram node {node_id!r}: kind {kind!r} is not one of {', '.join(NODE_KINDS)}")
        if "stride" in entry:
            stride = entry["stride"]
            if not isinstance(stride, int) or stride < 1:
                raise _fail(path, f"diagram node {node_id!r}: stride must be a positive integer")
            row = float(entry.get("row", math.log2(stride)))
            size = str(entry.get("size", "1/1" if stride == 1 else f"1/{stride}"))
            on_ladder = row == math.log2(stride)
        elif "row" in entry and "size" in entry:
            row, size, on_ladder = float(entry["row"]), str(entry["size"]), False
        else:
            raise _fail(path, f"diagram node {node_id!r} needs a stride (or a row and a size text)")
        inputs = tuple(entry.get("inputs", ()))
        unknown = [name for name in inputs if name not in ids]
        if unknown:
            raise _fail(path, f"diagram node {node_id!r} takes {unknown} before they are defined")
        col = float(entry.get("col", col + 1))
        nodes.append(DiagramNode(node_id, str(entry["label"]), kind, col, row, size, inputs,
                                 tuple(entry.get("branches", ())), on_ladder))
        ids.add(node_id)
    return Diagram(str(data["title"]), tuple(nodes), str(data.get("caption", "")))


def _diagrams(path: Path, data) -> tuple[Diagram, ...]:
    if not isinstance(data, list) or not data:
        raise _fail(path, "diagram must be one or more [[diagram]] tables")
    return tuple(_diagram(path, entry) for entry in data)


def load_card(path: Path) -> Card:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise _fail(path, f"lacks {', '.join(missing)}")
    if data["id"] != path.stem:
        raise _fail(path, f"id {data['id']!r} differs from the file name")
    if data["task"] not in _TASKS:
        raise _fail(path, f"task {data['task']!r} is not one of {', '.join(_TASKS)}")
    for key in ("strengths", "limits"):
        if not data[key] or not all(isinstance(item, str) and item.strip() for item in data[key]):
            raise _fail(path, f"{key} must be a non-empty list of sentences")
    return Card(
        id=data["id"],
        title=data["title"],
        short=data.get("short", data["title"]),
        year=int(data["year"]),
        authors=tuple(data["authors"]),
        venue=data["venue"],
        paper=_link(path, data["paper"], "paper"),
        task=data["task"],
        idea=data["idea"].strip(),
        mechanism=data["mechanism"].strip(),
        strengths=tuple(data["strengths"]),
        limits=tuple(data["limits"]),
        diagrams=_diagrams(path, data["diagram"]),
        families=tuple(data.get("families", ())),
        implementation=data.get("implementation", "").strip(),
        numbers=tuple(_number(path, entry) for entry in data.get("numbers", ())),
        links=tuple(_link(path, entry, "link") for entry in data.get("links", ())),
        not_runnable=_not_runnable(path, data.get("not_runnable")),
        path=path,
    )


@cache
def cards() -> dict[str, Card]:
    """Every card by id, oldest paper first (then by title)."""
    loaded = [load_card(path) for path in sorted(CARDS_DIR.glob("*.toml"))]
    loaded.sort(key=lambda card: (card.year, card.short.lower()))
    owners: dict[str, str] = {}
    for card in loaded:
        for family in card.families:
            if family in owners:
                raise CardError(f"family {family!r} is claimed by both {owners[family]}.toml and {card.id}.toml")
            owners[family] = card.id
    return {card.id: card for card in loaded}


def card_for_family(family: str) -> Card | None:
    return next((card for card in cards().values() if family in card.families), None)


def get_card(card_id: str) -> Card:
    try:
        return cards()[card_id]
    except KeyError:
        raise KeyError(f"no explanation card {card_id!r} (cards are {', '.join(cards())})") from None
