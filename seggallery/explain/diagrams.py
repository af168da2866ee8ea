"""Draw each card's diagrams from its spec: boxes on a resolution ladder, arrows for the data flow.

Every diagram uses the same layout, so they can be compared at a glance: a box's row is the
resolution of what it produces (1/1 at the top, 1/32 near the bottom, log scale), its column is the
order of computation. An encoder therefore runs down and to the right, a decoder climbs back up, and
skips are the long arrows between the two. Parallel branches (ASPP rates, pyramid pooling bins) are
stacked inside one box.

The PNGs are made on first use and cached under seggallery.cache's folder, in diagrams/, named by a hash of the spec and of this file, so an edit to either redraws them.
`python -m seggallery.explain.diagrams --out DIR` writes them all, e.g. to look at them side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the app and the tests draw into files, never a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from ..cache import cache_dir as seggallery_cache_dir  # noqa: E402
from .card import NODE_KINDS, Card, Diagram, DiagramNode, cards  # noqa: E402

# (fill, border) per node kind; chosen to stay distinguishable for the common colour-vision deficiencies.
COLORS = {
    "input": ("#eeeeee", "#555555"),
    "output": ("#eeeeee", "#555555"),
    "encoder": ("#cfe2f3", "#1f5f99"),
    "context": ("#fde3c4", "#c25e00"),
    "decoder": ("#d5ecd4", "#2e7d32"),
    "fuse": ("#e6d8f0", "#6a3d9a"),
    "upsample": ("#d4eeee", "#00796b"),
    "scores": ("#fbd5d5", "#b71c1c"),
    "refine": ("#f3e5ab", "#8d6e00"),
    "training": ("#ffffff", "#999999"),
}
SKIP_COLOR = "#6a3d9a"
EDGE_COLOR = "#555555"

BOX_WIDTH = 0.86  # in columns
BOX_HEIGHT = 0.58  # in rows
BRANCH_HEIGHT = 0.2
LABEL_WIDTH = 15  # characters per line before a label wraps
FONT = 7.0
INCH_PER_COL = 1.05
INCH_PER_ROW = 0.8
DPI = 120


def _title_lines(node: DiagramNode) -> list[str]:
    return textwrap.wrap(node.label, LABEL_WIDTH + 2)


def _box_height(node: DiagramNode) -> float:
    if node.branches:
        return 0.36 + 0.14 * (len(_title_lines(node)) - 1) + len(node.branches) * (BRANCH_HEIGHT + 0.04)
    lines = len(textwrap.wrap(node.label, LABEL_WIDTH)) + 1
    return max(BOX_HEIGHT, 0.15 * lines + 0.14)


def _extent(diagram: Diagram) -> tuple[float, float, float, float]:
    """(x_min, x_max, top_row, bottom_row) covering every box and every arrow routed over boxes."""
    xs = [node.col for node in diagram.nodes]
    tops = [node.row - _box_height(node) / 2 for node in diagram.nodes]
    nodes = {node.id: node for node in diagram.nodes}
    for node in diagram.nodes:
        for name in node.inputs:
            source = nodes[name]
            if node.col - source.col > 1.01 and _blocked(source, node, list(diagram.nodes)):
                tops.append(_lane(source, node, list(diagram.nodes)) - 0.1)
    bottoms = [node.row + _box_height(node) / 2 for node in diagram.nodes]
    return min(xs) - 0.5, max(xs) + 0.5, min(tops) - 0.15, max(bottoms) + 0.15


def _draw_node(ax, node: DiagramNode) -> None:
    fill, border = COLORS[node.kind]
    height = _box_height(node)
    x, y = node.col - BOX_WIDTH / 2, -node.row - height / 2
    style = "round,pad=0.0,rounding_size=0.06"
    ax.add_patch(FancyBboxPatch((x, y), BOX_WIDTH, height, boxstyle=style, facecolor=fill, edgecolor=border,
                                linewidth=1.0, linestyle="--" if node.kind == "training" else "-", zorder=2))
    if node.branches:
        top = -node.row + height / 2
        title = _title_lines(node)
        ax.text(node.col, top - 0.03, "\n".join(title), ha="center", va="top", fontsize=FONT, fontweight="bold",
                zorder=3, linespacing=1.0)
        first = top - 0.3 - 0.14 * (len(title) - 1)
        for index, branch in enumerate(node.branches):
            center = first - index * (BRANCH_HEIGHT + 0.04) - BRANCH_HEIGHT / 2
            ax.add_patch(FancyBboxPatch((node.col - BOX_WIDTH / 2 + 0.05, center - BRANCH_HEIGHT / 2), BOX_WIDTH - 0.1,
                                        BRANCH_HEIGHT, boxstyle="round,pad=0.0,rounding_size=0.03", facecolor="white",
                                        edgecolor=border, linewidth=0.6, zorder=3))
            size = (FONT - 1) * min(1.0, 17 / max(len(branch), 1))  # long branch names shrink to fit the box
            ax.text(node.col, center, branch, ha="center", va="center", fontsize=max(size, 4.5), zorder=4)
        ax.text(node.col, -node.row - height / 2 + 0.07, node.size, ha="center", va="center", fontsize=FONT - 1,
                color="#444444", zorder=3)
        return
    label = "\n".join(textwrap.wrap(node.label, LABEL_WIDTH))
    ax.text(node.col, -node.row + 0.07, label, ha="center", va="center", fontsize=FONT, zorder=3, linespacing=1.1)
    ax.text(node.col, -node.row - height / 2 + 0.09, node.size, ha="center", va="center", fontsize=FONT - 1,
            color="#444444", zorder=3)


def _blocked(source: DiagramNode, target: DiagramNode, nodes: list[DiagramNode]) -> bool:
    """Would a straight arrow from source to target pass through a box in a column between them?"""
    for node in nodes:
        if source.col < node.col < target.col:
            t = (node.col - source.col) / (target.col - source.col)
            y = source.row + t * (target.row - source.row)
            if abs(y - node.row) < _box_height(node) / 2 + 0.05:
                return True
    return False


def _lane(source: DiagramNode, target: DiagramNode, nodes: list[DiagramNode]) -> float:
    """A row above both ends and above every box in between that a horizontal line at that row would hit."""
    between = [node for node in nodes if source.col < node.col < target.col]
    lane = min(source.row - _box_height(source) / 2, target.row - _box_height(target) / 2,
               *(node.row - _box_height(node) / 2 for node in between if node.row <= max(source.row, target.row))) - 0.18
    moved = True
    while moved:
        moved = False
        for node in between:
            top, bottom = node.row - _box_height(node) / 2, node.row + _box_height(node) / 2
            if top - 0.05 < lane < bottom + 0.05:
                lane, moved = top - 0.18, True
    return lane


def _draw_edge(ax, source: DiagramNode, target: DiagramNode, nodes: list[DiagramNode]) -> None:
    skip = target.col - source.col > 1.01
    style = dict(arrowstyle="-|>", mutation_scale=8, color=SKIP_COLOR if skip else EDGE_COLOR,
                 linewidth=1.3 if skip else 0.9, linestyle="--" if target.kind == "training" else "-", zorder=1)
    if skip and _blocked(source, target, nodes):
        # route over the boxes in between: up from the source's top, along a free row, down into the target's top
        lane = -_lane(source, target, nodes)
        x0, x1 = source.col + 0.2, target.col - 0.2
        points = [(x0, -source.row + _box_height(source) / 2), (x0, lane), (x1, lane),
                  (x1, -target.row + _box_height(target) / 2)]
        codes = [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO]
        ax.add_patch(FancyArrowPatch(path=MplPath(points, codes), shrinkA=0, shrinkB=1, **style))
        return
    if abs(target.col - source.col) < 0.01:  # stacked in one column: connect bottom to top
        sign = 1 if target.row > source.row else -1
        start = (source.col, -source.row - sign * _box_height(source) / 2)
        end = (target.col, -target.row + sign * _box_height(target) / 2)
        connection = "arc3,rad=0"
    elif target.col > source.col:
        start = (source.col + BOX_WIDTH / 2, -source.row)
        end = (target.col - BOX_WIDTH / 2, -target.row)
        connection = "arc3,rad=0"
    else:  # a loop back (recurrent or iterative refinement): bend around
        start = (source.col, -source.row - _box_height(source) / 2)
        end = (target.col, -target.row - _box_height(target) / 2)
        connection = "arc3,rad=0.45"
    ax.add_patch(FancyArrowPatch(start, end, connectionstyle=connection, shrinkA=1, shrinkB=1, **style))


def _draw_panel(ax, diagram: Diagram, extent: tuple[float, float, float, float]) -> None:
    x_min, x_max, top, bottom = extent
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(-bottom, -top)
    ladder_rows = [round(node.row) for node in diagram.nodes if node.on_ladder]
    ticks = list(range(min(ladder_rows, default=0), max(ladder_rows, default=0) + 1))
    for row in ticks:
        ax.axhline(-row, color="#dddddd", linewidth=0.6, zorder=0)
    ax.set_yticks([-row for row in ticks])
    ax.set_yticklabels([f"1/{2 ** row}" for row in ticks], fontsize=FONT)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#bbbbbb")
    ax.set_title(diagram.title, fontsize=FONT + 1.5, loc="left", fontweight="bold")
    nodes = {node.id: node for node in diagram.nodes}
    for node in diagram.nodes:
        for name in node.inputs:
            _draw_edge(ax, nodes[name], node, list(diagram.nodes))
    for node in diagram.nodes:
        _draw_node(ax, node)
    if diagram.caption:
        ax.text(x_min, -bottom - 0.05, "\n".join(textwrap.wrap(diagram.caption, int((x_max - x_min) * 17))),
                ha="left", va="top", fontsize=FONT, color="#333333", style="italic")


def _legend_handles(card: Card) -> list[Patch]:
    names: dict[str, str] = {}  # legend name -> a kind that has it, in order of first use
    for diagram in card.diagrams:
        for node in diagram.nodes:
            names.setdefault(NODE_KINDS[node.kind], node.kind)
    handles = [Patch(facecolor=COLORS[kind][0], edgecolor=COLORS[kind][1], label=name) for name, kind in names.items()]
    handles.append(Patch(facecolor="white", edgecolor=SKIP_COLOR, label="long arrow: skip connection"))
    return handles


def draw(card: Card) -> Figure:
    """All of a card's diagrams, stacked, sharing one legend of the box kinds they use."""
    extents = [_extent(diagram) for diagram in card.diagrams]
    width = max(x_max - x_min for x_min, x_max, _, _ in extents)
    caption_rows = [0.45 if diagram.caption else 0.1 for diagram in card.diagrams]
    heights = [(bottom - top) * INCH_PER_ROW + 0.45 + extra for (_, _, top, bottom), extra in zip(extents, caption_rows)]
    left, right = 0.55, 0.15
    fig_width = width * INCH_PER_COL + left + right
    handles = _legend_handles(card)
    columns = max(1, min(len(handles), 5, int((fig_width - left) / 2.3)))  # about 2.3 inches per legend entry
    legend_height = 0.2 * -(-len(handles) // columns) + 0.1
    fig_height = sum(heights) + legend_height
    fig = plt.figure(figsize=(fig_width, fig_height), dpi=DPI)
    y = fig_height
    for diagram, (x_min, x_max, top, bottom), height in zip(card.diagrams, extents, heights):
        panel_width = (x_max - x_min) * INCH_PER_COL
        axes_height = (bottom - top) * INCH_PER_ROW
        y -= 0.35  # the panel's title
        ax = fig.add_axes((left / fig_width, (y - axes_height) / fig_height, panel_width / fig_width, axes_height / fig_height))
        _draw_panel(ax, diagram, (x_min, x_max, top, bottom))
        y -= height - 0.35
    fig.legend(handles=handles, loc="lower left", ncol=columns, fontsize=FONT, frameon=False,
               bbox_to_anchor=(left / fig_width, 0.0), handlelength=1.2, columnspacing=1.0)
    return fig


def cache_dir() -> Path:
    root = seggallery_cache_dir() / "diagrams"
    try:
        root.mkdir(parents=True, exist_ok=True)
        return root
    except OSError:  # a read-only home (some hosted containers): fall back to the temporary folder
        fallback = Path(tempfile.gettempdir()) / "seggallery" / "diagrams"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _fingerprint(card: Card) -> str:
    digest = hashlib.sha256(repr(card.diagrams).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update(matplotlib.__version__.encode())
    return digest.hexdigest()[:12]


def save(card: Card, path: Path) -> Path:
    fig = draw(card)
    try:
        fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


def diagram_png(card: Card) -> Path:
    """The card's diagram as a PNG, drawn now if this version of it is not cached yet."""
    path = cache_dir() / f"{card.id}-{_fingerprint(card)}.png"
    if not path.exists():
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as handle:
            partial = Path(handle.name)
        try:
            save(card, partial)
            os.replace(partial, path)  # atomic: two sessions drawing the same card never see half a file
        finally:
            partial.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seggallery.explain.diagrams", description="Draw the cards' diagrams.")
    parser.add_argument("--out", type=Path, required=True, help="folder for <card id>.png")
    parser.add_argument("ids", nargs="*", help="card ids (default: all)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for card_id in args.ids or list(cards()):
        print(save(cards()[card_id], args.out / f"{card_id}.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
