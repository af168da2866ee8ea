"""Point and ask: what each model says at one pixel of the photo, as plain data (the /inspect API and the UI).

The class there comes from the model's label map; its top classes with probabilities from its own scores
(Prediction.top_class_ids / top_class_probs, kept on the grid of the confidence map, at most 512 a side, so a
point reads the nearest grid cell, and says when the label map, which interpolates between cells, disagrees with
that cell's most probable class); the ground truth's class when a mask is given.
"""

from __future__ import annotations

from ..runtime.results import Failure, Prediction, Result
from .groundtruth import GroundTruth


class PointOutside(ValueError):
    """The point is not on the photo."""


def grid_index(value: float, length: int, cells: int) -> int:
    """The cell of a grid of `cells` over `length` pixels that holds pixel `value` (its centre, to be exact)."""
    return min(cells - 1, int((value + 0.5) * cells / length))


def answers_at(results: list[Result], shape: tuple[int, int], x: float, y: float,
               truth: GroundTruth | None = None) -> dict:
    """{"x", "y", "truth": class or None, "models": [{model, id, label_set, class, top: [{class, probability}]}]}."""
    height, width = shape
    if not (0 <= x < width and 0 <= y < height):
        raise PointOutside(f"the point ({x:g}, {y:g}) is outside the {width}x{height} photo")
    column, row = int(x), int(y)
    answers = []
    for result in results:
        if isinstance(result, Failure):
            answers.append({"model": result.spec.name, "id": result.spec.id, "error": result.reason})
            continue
        answers.append(_answer(result, row, column))
    truth_class = None
    if truth is not None:
        value = int(truth.mask[row, column])
        truth_class = "ignored" if value == truth.ignore_id else truth.labels.names[value].strip()
    return {"x": column, "y": row, "truth": truth_class, "models": answers}


def _answer(prediction: Prediction, row: int, column: int) -> dict:
    names = prediction.labels.names
    class_id = int(prediction.mask[row, column])
    entry = {"model": prediction.spec.name, "id": prediction.spec.id, "label_set": prediction.labels.id,
             "class": _name(names, class_id), "top": None}
    if prediction.top_class_ids is not None:
        _, cells_h, cells_w = prediction.top_class_ids.shape
        height, width = prediction.mask.shape
        r, c = grid_index(row, height, cells_h), grid_index(column, width, cells_w)
        entry["top"] = [{"class": _name(names, int(i)), "probability": round(float(p), 4)}
                        for i, p in zip(prediction.top_class_ids[:, r, c], prediction.top_class_probs[:, r, c])]
        # The label map interpolates the scores between cells; near a class boundary its class can differ from
        # the nearest cell's most probable one. Said so, rather than left looking like a contradiction.
        entry["between_cells"] = entry["top"][0]["class"] != entry["class"]
    return entry


def _name(names: tuple[str, ...], class_id: int) -> str:
    return names[class_id].strip() if 0 <= class_id < len(names) else f"class {class_id}"
