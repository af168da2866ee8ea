"""ENet with its real CamVid weights reproduces the published number through the product's own path:
`python -m seggallery eval` over the 233 test images at full resolution, void ignored."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from conftest import require_shared
from PIL import Image
from real_weights import install_enet

from seggallery.archs.enet import ENet
from seggallery.backends.native import checkpoint_path, load_state_dict
from seggallery.catalog import get_spec
from seggallery.cli import main

PUBLISHED_MIOU = 0.5331  # ../shared/weights/enet-camvid/SOURCE.md
PUBLISHED_PIXEL_ACCURACY = 0.8534
PUBLISHED_PER_CLASS = {"Sky": 0.900, "Building": 0.686, "Pole": 0.233, "Road": 0.922, "Pavement": 0.749, "Tree": 0.621,
                       "SignSymbol": 0.195, "Fence": 0.218, "Car": 0.695, "Pedestrian": 0.324, "Bicyclist": 0.320}


def test_checkpoint_loads_strictly_into_our_enet():
    install_enet()
    spec = get_spec("enet_camvid")
    state = load_state_dict(spec)
    assert len(state) == 554 and next(iter(state)) == "initial_block.main_branch.weight"
    model = ENet(len(spec.label_set))
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 359_780  # ENet's well-known 0.36 M


def test_enet_reproduces_published_camvid_miou(tmp_path, one_thread):
    camvid = require_shared("data/camvid")
    install_enet()
    names = [line.split()[0] for line in (camvid / "test.txt").read_text().splitlines() if line.strip()]
    assert len(names) == 233
    start = time.perf_counter()
    code = main(["eval", "--images", str(camvid / "test"), "--masks", str(camvid / "testannot"),
                 "--models", "enet_camvid", "--out", str(tmp_path)])
    elapsed = time.perf_counter() - start
    assert code == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["images"] == 233 and result["labels"] == "camvid11"
    enet = result["models"]["enet_camvid"]
    assert enet["native"] and enet["images"] == 233
    assert enet["mean_iou"] == pytest.approx(PUBLISHED_MIOU, abs=0.001)
    assert enet["pixel_accuracy"] == pytest.approx(PUBLISHED_PIXEL_ACCURACY, abs=0.001)
    for name, value in PUBLISHED_PER_CLASS.items():
        assert enet["per_class_iou"][name] == pytest.approx(value, abs=0.0015), name
    assert "Unlabelled" not in enet["per_class_iou"]  # void is ignored, never scored
    # pixels labelled void are left out: what is scored is exactly the non-void pixels of the masks
    labelled = sum(int((np.asarray(Image.open(camvid / "testannot" / n)) != 11).sum()) for n in names)
    assert labelled < 233 * 480 * 360
    assert enet["evaluated_pixels"] == labelled
    print(f"233 CamVid images in {elapsed:.1f} s")


def test_preprocessing_is_rgb_over_255_at_the_native_size(photo):
    from seggallery.runtime.engine import Engine

    install_enet()
    segmenter, _ = Engine().segmenter("enet_camvid")
    street = np.array(Image.open(require_shared("data/camvid/test/0001TP_008550.png")).convert("RGB"))
    inputs = segmenter.preprocess(street)
    expected = torch.from_numpy(street).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(inputs, expected)  # SOURCE.md: divide by 255, no mean/std, 480x360 as is
    assert tuple(segmenter.preprocess(photo).shape[-2:]) == (360, 480)  # other photos: resized as in training
    prediction = segmenter.predict(photo)
    assert prediction.mask.shape == photo.shape[:2]  # the mask comes back at the photo's size


def test_a_damaged_checkpoint_is_replaced_by_a_fresh_download(tmp_path, monkeypatch):
    from seggallery.runtime.engine import Engine
    from seggallery.runtime.results import Failure, Prediction

    real = require_shared("weights/enet-camvid/ENet_default").read_bytes()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = checkpoint_path(get_spec("enet_camvid"))
    target.parent.mkdir(parents=True)
    target.write_bytes(real[:-10])  # an interrupted download
    downloads = []

    def offline(url, dst, hash_prefix=None, progress=True):
        downloads.append((url, hash_prefix))
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    result = Engine().run(np.zeros((360, 480, 3), np.uint8), "enet_camvid")
    assert isinstance(result, Failure)
    assert "network unreachable" in result.reason and result.fix.startswith("python -m seggallery fetch enet_camvid")
    assert downloads == [(get_spec("enet_camvid").source["url"], get_spec("enet_camvid").source["sha256"])]
    assert not target.exists()  # the damaged copy is gone, never loaded

    def download(url, dst, hash_prefix=None, progress=True):
        with open(dst, "wb") as f:
            f.write(real)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    assert isinstance(Engine().run(np.zeros((360, 480, 3), np.uint8), "enet_camvid"), Prediction)
