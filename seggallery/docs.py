"""Text made from the catalog: the model table of the README and the About tab."""

from __future__ import annotations

from .catalog import catalog


def _metric_text(spec) -> str:
    if not spec.metrics:
        return "–"
    metric = spec.metrics[0]
    value = metric.get("miou")
    return f"{value} mIoU ({metric['dataset']})" if value is not None else metric["dataset"]


def _source_text(spec) -> str:
    source = spec.source
    if "repo" in source:
        revision = source["revision"]
        pinned = revision[:8] if len(revision) == 40 else f"{revision} (unpinned)"
        return f"[{source['repo']}](https://huggingface.co/{source['repo']}) @ {pinned}"
    if "weights" in source:
        return f"torchvision `{source['weights']}`"
    if "url" in source:
        return f"[{source['url'].rsplit('/', 1)[-1]}]({source['url']})"
    return "–"


def model_table_markdown() -> str:
    lines = [
        "| id | model | family | labels | weights | published | licence | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in catalog().values():
        lines.append(
            f"| `{spec.id}` | {spec.name} | {spec.family} | {spec.labels} | {_source_text(spec)} | "
            f"{_metric_text(spec)} | {spec.license} | [paper]({spec.paper}) |"
        )
    return "\n".join(lines)


def hub_repos() -> list[str]:
    """Every Hugging Face Hub model repo the catalog loads from (the Space card's `models:` list)."""
    repos = {spec.source["repo"] for spec in catalog().values() if "repo" in spec.source}
    repos |= {spec.source["mirror"]["repo"] for spec in catalog().values() if "mirror" in spec.source}
    return sorted(repos)


def space_models_yaml() -> str:
    return "models:\n" + "".join(f"  - {repo}\n" for repo in hub_repos())
