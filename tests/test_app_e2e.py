"""The real app: `python app.py` on 127.0.0.1, driven through gradio_client like any API user."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from gradio_client import Client, handle_file
from PIL import Image

PHOTO = EXAMPLES / "street-city.jpg"


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def _compare(client, models):
    outputs = client.predict(handle_file(str(PHOTO)), models, 0.5, api_name="/compare")
    status, photo, *rest = outputs  # photo: the photo tile's picture
    slots = [rest[i : i + 3] for i in range(0, 3 * 6, 3)]
    areas, timings, report = rest[18:]
    return status, slots, areas, timings, report


def test_compare_three_models_end_to_end(client, app_server):
    models = list(app_server.models_with_weights)
    status, slots, areas, timings, report = _compare(client, models)
    assert status.startswith("3 of 3 models ran")
    width, height = Image.open(PHOTO).size
    for (image, legend, caption), model_id in zip(slots, models):
        overlay = Image.open(image["value"])
        assert overlay.size == (width, height)
        assert "sg-swatch" in legend and " ms** on cpu" in caption
    assert all(slot[0] is None or slot[0].get("value") is None for slot in slots[3:])
    assert [m["id"] for m in report["models"]] == models
    for model in report["models"]:
        assert sum(c["percent"] for c in model["classes"]) == pytest.approx(100.0, abs=1e-3)
        assert sum(c["pixels"] for c in model["classes"]) == width * height
        assert all(model["timings_ms"][step] > 0 for step in ("preprocess", "forward", "postprocess", "total"))
    assert len(areas["headers"]) == 2 + 3, "class, label set and one % column per model (pixels are in the ZIP)"
    assert [row[0] for row in timings["data"]] == [m["name"] for m in report["models"]]


def test_overlay_sent_to_the_browser_is_the_models_overlay(client, app_server):
    """The picture the server sends (a JPEG, see seggallery.ui.pictures) is this model's overlay of this photo."""
    from seggallery.images import load_image
    from seggallery.pictures.overlays import overlay
    from seggallery.runtime.engine import Engine

    model_id = app_server.models_with_weights[-1]
    _, slots, _, _, _ = _compare(client, [model_id])
    sent = Image.open(slots[0][0]["value"])
    photo = load_image(PHOTO).pixels
    prediction = Engine().run(photo, model_id)  # the same weights and plain fp32 path as the server
    expected = overlay(photo, prediction.mask, prediction.labels, 0.5)
    assert sent.format == "JPEG"
    error = np.abs(np.asarray(sent, dtype=np.int16) - expected).mean()
    assert error < 2, f"mean error {error:.2f} of 255 between the sent overlay and the model's overlay"


def test_model_without_weights_gets_its_message_not_a_crash(client, app_server):
    models = ["fcn_resnet101", app_server.models_with_weights[-1]]
    status, slots, areas, timings, report = _compare(client, models)
    assert status.startswith("1 of 2 models ran")
    caption = slots[0][2]
    assert "could not run" in caption and "python -m seggallery fetch fcn_resnet101" in caption
    assert slots[1][0]["value"] is not None
    failed = report["models"][0]
    assert failed["id"] == "fcn_resnet101" and "not in the local cache" in failed["error"]
    assert app_server.process.poll() is None, "the server is still up"


def test_a_file_that_is_not_an_image_gets_a_clear_message(client, tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_bytes(b"definitely not a PNG")
    # PhotoInput hands the upload to SegGallery's decoder (no decoding by Gradio), which answers in the status
    outputs = client.predict(handle_file(str(bogus)), ["lraspp_mobilenet_v3_large"], 0.5, api_name="/compare")
    assert "cannot be used" in outputs[0] and "image" in outputs[0].lower()


def test_area_table_reads_at_a_glance(client, app_server):
    """% only, a column per model, classes by their largest share, at most the top N and an "other" row."""
    from seggallery.evidence.areas import OTHER, TOP_CLASSES

    models = list(app_server.models_with_weights)
    _, _, areas, _, report = _compare(client, models)
    names = [m["name"] for m in report["models"]]
    assert areas["headers"] == ["class", "label set", *(f"{name} %" for name in names)]
    rows = areas["data"]
    classes = [row for row in rows if not str(row[0]).startswith(OTHER)]
    assert 1 <= len(classes) <= TOP_CLASSES and len(rows) <= TOP_CLASSES + 1
    largest = [max(float(v) for v in row[2:] if v not in (None, "")) for row in classes]
    assert largest == sorted(largest, reverse=True), "classes ordered by the largest share any model gives them"
    found = {(m["name"], c["name"]): c["percent"] for m in report["models"] for c in m["classes"]}
    for column, name in enumerate(names, start=2):
        assert sum(float(row[column]) for row in rows) == pytest.approx(100.0, abs=0.05), "each model's column adds up to 100%"
        for row in classes:
            assert float(row[column]) == pytest.approx(found.get((name, row[0]), 0.0), abs=0.006), "the report's numbers"
    distinct = {c["name"] for m in report["models"] for c in m["classes"]}
    assert (len(distinct) > TOP_CLASSES) == any(str(row[0]).startswith(OTHER) for row in rows)


def test_tables_are_hidden_until_a_comparison_fills_them(client):
    """No empty table (Gradio's "1 2 3" placeholder headers) before the first Compare: their group starts hidden."""
    config = client.config
    components = {c["id"]: c for c in config["components"]}
    parents = {}

    def walk(node, parent=None):
        parents[node["id"]] = parent
        for child in node.get("children", []):
            walk(child, node["id"])

    walk(config["layout"])
    for elem_id in ("sg-areas", "sg-timings", "sg-area-bars", "sg-objects", "sg-object-counts"):
        component = next(c for c in components.values() if c.get("props", {}).get("elem_id") == elem_id)
        ancestors, node = [], parents[component["id"]]
        while node is not None:
            ancestors.append(components.get(node, {}).get("props", {}))
            node = parents[node]
        assert any(props.get("visible") is False for props in ancestors), f"{elem_id} is hidden before a comparison"
    threshold = next(c for c in components.values() if c.get("props", {}).get("elem_id") == "sg-threshold")
    assert threshold["props"]["visible"] is False and threshold["props"]["value"] == 0.5, "until an instance model ran"


def test_the_slider_shows_any_two_pictures_of_the_comparison(tmp_path, app_server):
    """/slider after /compare, in one session: the photo against a model's overlay, two overlays, the ground truth;
    bad choices and no comparison get a message, not a traceback."""
    from seggallery.catalog import get_spec, label_set
    from seggallery.images import load_image
    from seggallery.pictures.overlays import overlay
    from seggallery.runtime.engine import Engine

    fresh = Client(app_server.url, verbose=False)  # its own session: nothing compared yet
    status, pair = fresh.predict("Photo", "x", 0.5, None, "auto", api_name="/slider")
    assert status.startswith("Compare first") and pair is None

    first, second = app_server.models_with_weights[:2]
    _compare(fresh, [first, second])
    names = [get_spec(model_id).name for model_id in (first, second)]
    photo = load_image(PHOTO).pixels
    status, pair = fresh.predict("Photo", names[0], 0.5, None, "auto", api_name="/slider")
    assert names[0] in status
    left, right = (np.asarray(Image.open(side), dtype=np.int16) for side in _slider_files(pair))
    prediction = Engine().run(photo, first)  # the same weights and plain fp32 path as the server
    assert np.abs(left - photo).mean() < 2 and np.abs(right - overlay(photo, prediction.mask, prediction.labels, 0.5)).mean() < 2

    status, pair = fresh.predict(names[0], names[1], 0.5, None, "auto", api_name="/slider")
    assert pair is not None and "right: **" + names[1] in status

    truth = np.zeros(photo.shape[:2], np.uint8)
    truth[: photo.shape[0] // 2] = 15  # person above, background below
    Image.fromarray(truth).save(tmp_path / "truth.png")
    status, pair = fresh.predict("Ground truth", names[0], 0.5, handle_file(str(tmp_path / "truth.png")), "voc21",
                                 api_name="/slider")
    left, _ = (np.asarray(Image.open(side), dtype=np.int16) for side in _slider_files(pair))
    assert np.abs(left - overlay(photo, truth.astype(np.int32), label_set("voc21"), 0.5)).mean() < 2

    for bad in ("Ground truth", "not a model"):  # no mask uploaded / not in this comparison
        status, pair = fresh.predict(bad, names[0], 0.5, None, "auto", api_name="/slider")
        assert status.startswith("**This slider cannot be shown:**") and pair is None


def _slider_files(pair) -> list[str]:
    """The two files of an ImageSlider value as gradio_client returns it."""
    sides = pair if isinstance(pair, (list, tuple)) else [pair[key] for key in sorted(pair) if key != "type"]
    return [side["path"] if isinstance(side, dict) else side for side in sides]


def test_inspect_answers_what_each_model_says_at_a_point(app_server):
    """/inspect after /compare: per model the class at the pixel (its label map's) and its top three classes with
    the probabilities its own scores give there; outside the photo or before a comparison, a message."""
    import torch

    from seggallery.evidence.inspect import grid_index
    from seggallery.evidence.uncertainty import class_probabilities
    from seggallery.images import load_image
    from seggallery.runtime.engine import Engine

    fresh = Client(app_server.url, verbose=False)
    message, data = fresh.predict(10, 10, None, "auto", api_name="/inspect")
    assert message.startswith("Compare first") and data is None

    models = list(app_server.models_with_weights[:2])
    _compare(fresh, models)
    photo = load_image(PHOTO).pixels
    x, y = 700, 500
    message, data = fresh.predict(x, y, None, "auto", api_name="/inspect")
    assert (data["x"], data["y"]) == (x, y) and data["truth"] is None
    assert [entry["id"] for entry in data["models"]] == models
    engine = Engine()
    for entry in data["models"]:
        prediction = engine.run(photo, entry["id"])  # the same weights and plain fp32 path as the server
        names = prediction.labels.names
        assert entry["class"] == names[prediction.mask[y, x]].strip() and f"**{entry['class']}**" in message
        segmenter, _ = engine.segmenter(entry["id"])
        with torch.inference_mode():
            probs = class_probabilities(segmenter.class_scores(segmenter.forward(segmenter.preprocess(photo))))
        cell = probs[:, grid_index(y, photo.shape[0], probs.shape[1]), grid_index(x, photo.shape[1], probs.shape[2])]
        expected = cell.topk(3)
        assert [t["class"] for t in entry["top"]] == [names[i].strip() for i in expected.indices.tolist()]
        assert [t["probability"] for t in entry["top"]] == pytest.approx(expected.values.tolist(), abs=1e-3)

    message, data = fresh.predict(photo.shape[1] + 5, 3, None, "auto", api_name="/inspect")
    assert message.startswith("**Cannot answer:** the point") and "outside" in message and data is None

INSTANCE_PHOTO = EXAMPLES / "people-astronaut.jpg"  # where the fake Mask R-CNN finds cars and people above 0.5


@pytest.fixture(scope="module")
def instance_comparison(app_server, app_instance_model):
    """One Compare of the fake Mask R-CNN beside a semantic model, in its own session, and the same prediction
    made here: (client, /compare's outputs, the local Prediction, the photo)."""
    from seggallery.images import load_image
    from seggallery.runtime.engine import Engine

    session = Client(app_server.url, verbose=False)
    outputs = session.predict(handle_file(str(INSTANCE_PHOTO)), [app_instance_model, "lraspp_mobilenet_v3_large"], 0.5,
                              0.5, api_name="/compare")
    photo = load_image(INSTANCE_PHOTO).pixels
    return session, outputs, Engine().run(photo, app_instance_model), photo


def _instances(client, threshold, opacity=0.5):
    """/instances: (status, object table, count per class, the six tiles as (image, legend, caption))."""
    status, objects, counts, *rest = client.predict(threshold, opacity, api_name="/instances")
    return status, objects, counts, [rest[i : i + 3] for i in range(0, 3 * 6, 3)]


def _sent(tile) -> np.ndarray:
    return np.asarray(Image.open(tile[0]["value"]), dtype=np.int16)


def _as_sent(picture: np.ndarray) -> np.ndarray:
    """A picture as the browser gets it (the app's JPEG): boxes and labels have sharp edges that JPEG blurs."""
    import io

    from seggallery.pictures.files import display_jpeg

    return np.asarray(Image.open(io.BytesIO(display_jpeg(picture))), dtype=np.int16)


def test_an_instance_models_tile_shows_its_objects(instance_comparison):
    """/compare: the Mask R-CNN tile is the instance overlay (each object its colour, box, "class score"), its
    legend the count per class; the semantic model beside it keeps its class colours."""
    from seggallery.evidence.instances import count_per_class, instance_rows
    from seggallery.pictures.instances import instance_overlay
    from seggallery.pictures.overlays import overlay

    _, outputs, prediction, photo = instance_comparison
    status, _, *rest = outputs
    assert status.startswith("2 of 2 models ran"), status
    tiles = [rest[i : i + 3] for i in range(0, 3 * 6, 3)]
    expected = _as_sent(instance_overlay(photo, prediction.instances, prediction.labels, 0.5, 0.5))
    assert np.abs(_sent(tiles[0]) - expected).mean() < 1, "the tile is the instance overlay at 0.5"
    semantic = _as_sent(overlay(photo, prediction.mask, prediction.labels, 0.5))
    assert np.abs(_sent(tiles[0]) - semantic).mean() > 5, "not the semantic reading's colours"
    legend = tiles[0][1]
    counts = count_per_class(instance_rows(prediction.instances, prediction.labels, 0.5))
    assert len(counts) >= 2 and "sg-instance-legend" in legend
    for name, count in counts.items():
        assert f"{name} <small>×{count}</small>" in legend
    assert "sg-instance-legend" not in tiles[1][1] and "sg-swatch" in tiles[1][1]
    report = rest[-1]
    assert report["models"][0]["instances"]["count_per_class"] == counts


def test_the_score_threshold_redraws_tiles_and_table_without_rerunning(instance_comparison):
    """/instances(threshold) in the session that compared: the table, the counts and the tiles at that threshold."""
    from seggallery.evidence.instances import count_per_class, instance_rows
    from seggallery.pictures.instances import instance_overlay

    session, outputs, prediction, photo = instance_comparison
    semantic_tile = _sent([outputs[2 + 3]])  # the LR-ASPP tile of /compare
    for threshold in (0.5, 0.55, 0.0):
        status, objects, counts, tiles = _instances(session, threshold)
        rows = instance_rows(prediction.instances, prediction.labels, threshold)
        assert f"{len(rows)} objects at score ≥ {threshold:.2f}" in status, status
        assert objects["headers"] == ["model", "object", "class", "score", "pixels", "box (x0, y0, x1, y1)"]
        assert [row[2] for row in objects["data"]] == [row.name for row in rows]
        assert [row[3] for row in objects["data"]] == pytest.approx([round(row.score, 3) for row in rows], abs=2e-3)
        assert [row[4] for row in objects["data"]] == pytest.approx([row.pixels for row in rows], rel=0.01)
        assert all(len(row[5].split(", ")) == 4 for row in objects["data"])
        assert {row[1]: row[2] for row in counts["data"]} == count_per_class(rows)
        expected = _as_sent(instance_overlay(photo, prediction.instances, prediction.labels, threshold, 0.5))
        assert np.abs(_sent(tiles[0]) - expected).mean() < 1, f"the tile redrawn at {threshold}"
        assert np.abs(_sent(tiles[1]) - semantic_tile).mean() < 1, "a semantic model's tile does not change"
    assert len(instance_rows(prediction.instances, prediction.labels, 0.0)) > len(
        instance_rows(prediction.instances, prediction.labels, 0.55)), "the thresholds tried show different objects"
    status, objects, _, _ = _instances(session, 0.5, 0.9)  # a new opacity reaches the instance tile too
    assert "objects at score ≥ 0.50" in status


def test_the_instance_view_answers_bad_input_with_a_message(instance_comparison, app_server):
    """No comparison in this session, no instance model, a threshold outside 0..1 or none: a message, no traceback;
    and one session's threshold never reaches another's."""
    session, _, _, _ = instance_comparison
    fresh = Client(app_server.url, verbose=False)  # its own session: nothing compared yet
    status, objects, counts, _ = _instances(fresh, 0.5)
    assert status.startswith("Compare first") and objects["data"] == [] and counts["data"] == []
    for bad in (1.5, -0.1, None):
        status, objects, _, _ = _instances(session, bad)
        assert status.startswith("**The score threshold must be") and objects["data"] == [], status
    with pytest.raises(Exception, match="greater than maximum value 1"):  # Gradio's own check of the slider
        fresh.predict(handle_file(str(PHOTO)), ["lraspp_mobilenet_v3_large"], 0.5, 1.5, api_name="/compare")
    _compare(fresh, ["lraspp_mobilenet_v3_large"])
    status, objects, _, _ = _instances(fresh, 0.5)
    assert status.startswith("No instance model in this comparison") and objects["data"] == []
    status, objects, _, _ = _instances(session, 0.5)  # the other session still has its own comparison
    assert "objects at score ≥ 0.50" in status and objects["data"]


def test_class_focus_dims_everything_but_the_class_on_every_tile(app_server):
    """/focus after /compare: each tile shows only the chosen class (the rest of the photo at DIM); boundaries
    only colours outlines; an unknown class or no comparison gets a message."""
    from seggallery.catalog import label_set
    from seggallery.images import load_image
    from seggallery.pictures.focus import DIM
    from seggallery.runtime.engine import Engine

    fresh = Client(app_server.url, verbose=False)
    status, *_ = fresh.predict("background", False, 0.5, 0.5, api_name="/focus")
    assert status.startswith("Compare first")

    models = list(app_server.models_with_weights[:2])
    _compare(fresh, models)
    photo = load_image(PHOTO).pixels.astype(np.float32)
    engine = Engine()
    masks = [engine.run(photo.astype(np.uint8), model_id).mask for model_id in models]
    chosen = int(np.bincount(masks[0].ravel()).argmax())  # the first model's largest class (both are VOC models)
    name = label_set("voc21").names[chosen]
    status, *slots = fresh.predict(name, False, 0.5, 0.5, api_name="/focus")
    assert status.startswith(f"Showing **{name}**") and "same name" in status
    for index, mask in enumerate(masks):
        tile = np.asarray(Image.open(slots[3 * index]["value"]), dtype=np.float32)  # per slot: picture, legend, caption
        outside = mask != chosen
        assert outside.any() and np.abs(tile[outside] - photo[outside] * DIM).mean() < 3
    status, *slots = fresh.predict("all classes", True, 0.5, 0.5, api_name="/focus")
    assert status.startswith("Boundaries only")
    tile = np.asarray(Image.open(slots[0]["value"]), dtype=np.float32)
    inside = np.ones(masks[0].shape, bool)
    inside[:-1, :-1] = (masks[0][:-1, :-1] == masks[0][1:, :-1]) & (masks[0][:-1, :-1] == masks[0][:-1, 1:])
    inside[1:, 1:] &= inside[:-1, :-1]  # away from every outline: the photo itself
    assert np.abs(tile[inside] - photo[inside]).mean() < 3
    status, *_ = fresh.predict("unicorn", False, 0.5, 0.5, api_name="/focus")
    assert status.startswith("**No model found a class 'unicorn'**")


def test_compare_with_the_crf_switch(client, app_server):
    """/compare's fifth input, "Refine with CRF": each model's mask is the CRF's, its time its own column."""
    outputs = client.predict(handle_file(str(PHOTO)), ["lraspp_mobilenet_v3_large"], 0.5, 0.5, True, api_name="/compare")
    status, _photo, *rest = outputs
    _areas, timings, report = rest[18:]
    assert status.startswith("1 of 1 models ran")
    (model,) = report["models"]
    assert model["timings_ms"]["crf"] > 0 and any("dense CRF" in note for note in model["notes"])
    assert "crf" in timings["headers"]
