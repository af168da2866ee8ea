"""What several tabs share: the model picker's choices, the example photos, label-set choices, failure captions."""

from __future__ import annotations

from pathlib import Path

from ..catalog import catalog, label_set, label_set_ids
from ..runtime.results import Failure

MAX_MODELS = 6
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"
AUTO = "auto"


def model_choices() -> list[tuple[str, str]]:
    """(label, id) per catalog model; the label names the label set and warns of weights not for commercial use."""
    return [(f"{spec.name} · {spec.label_set.name.split(' (')[0]}" + (f" · ⚠ {spec.licence_note}" if spec.licence_note else ""), spec.id)
            for spec in catalog().values()]


def select_models(model_ids: list[str]) -> list[str]:
    """A value for the Compare tab's model picker: catalog ids only, in the order given, at most MAX_MODELS.

    Other tabs (Explanations' "compare these") set the picker through this.
    """
    return [model_id for model_id in model_ids if model_id in catalog()][:MAX_MODELS]


def example_images() -> list[str]:
    return sorted(str(path) for path in EXAMPLES_DIR.glob("*.jpg"))


def mask_label_choices() -> list[tuple[str, str]]:
    return [("auto: the label set of the first model", AUTO)] + [(label_set(i).name, i) for i in label_set_ids()]


def failure_caption(failure: Failure) -> str:
    """A model that could not run, as its slot or card says it: what happened and the command that fixes it."""
    fix = f"\n\nFix: `{failure.fix}`" if failure.fix else ""
    return f"**{failure.spec.name} could not run.** {failure.reason}{fix}"
