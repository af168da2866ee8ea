"""Text made from the catalog: the model table of the README and the About tab."""

from __future__ import annotations

from .backends import describe_source, hub_repos
from .catalog import catalog


def _metric_text(spec) -> str:
    if not spec.metrics:
        return "–"
    metric = spec.metrics[0]
    if metric.get("miou") is not None:
        return f"{metric['miou']} mIoU ({metric['dataset']})"
    if metric.get("mask_ap") is not None:  # instance models: COCO box and mask AP
        return f"{metric['box_ap']} box AP, {metric['mask_ap']} mask AP ({metric['dataset']})"
    return metric["dataset"]


def licence_text(spec) -> str:
    """The weights' licence, with a bold warning when it does not allow commercial use."""
    return f"{spec.license} · **{spec.licence_note}**" if spec.licence_note else spec.license


def model_table_markdown() -> str:
    lines = [
        "| id | model | family | labels | weights | published | licence | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in catalog().values():
        lines.append(
            f"| `{spec.id}` | {spec.name} | {spec.family} | {spec.labels} | {describe_source(spec)} | "
            f"{_metric_text(spec)} | {licence_text(spec)} | [paper]({spec.paper}) |"
        )
    return "\n".join(lines)


def space_models_yaml() -> str:
    return "models:\n" + "".join(f"  - {repo}\n" for repo in hub_repos())
