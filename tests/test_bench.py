"""`python -m seggallery bench`: sizes, device peaks, and a real run on a small model writing complete JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from seggallery.bench.compare import against_plain
from seggallery.bench.config import parse_size
from seggallery.bench.measure import CPU_INSTRUCTIONS, peak_tflops
from seggallery.bench.table import _compare_line
from seggallery.cli import main


@pytest.mark.parametrize("text, size", [("512", (512, 512)), ("1024x768", (768, 1024)), ("native", None), (" 64 ", (64, 64))])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "10", "512x", "99999"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    "gpu, precision, peak",
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989.5),
        ("NVIDIA H100 PCIe", "bf16", 756.5),
        ("NVIDIA H200", "fp16", 989.5),
        ("NVIDIA H200 NVL", "bf16", 835.5),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
        ("NVIDIA A100-SXM4-80GB", "fp32", 156.0),  # cuDNN runs fp32 convolutions on TF32 by default
        ("NVIDIA L4", "bf16", 121.0),
        ("NVIDIA L40S", "bf16", None),  # not listed: no guess (and not mistaken for an L4)
        ("Tesla T4", "bf16", None),
        ("NVIDIA H100 NVL", "bf16", None),
    ],
)
def test_gpu_peaks_match_whole_words_only(monkeypatch, gpu, precision, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: gpu)
    value, what = peak_tflops(torch.device("cuda"), precision)
    assert value == peak
    assert what.startswith("n/a") == (peak is None)


def test_no_cpu_peak_is_claimed():
    value, what = peak_tflops(torch.device("cpu"), "bf16")
    assert value is None and what.startswith("n/a")


def test_peak_memory_sees_an_allocation():
    """In a fresh process: late in a long test session the allocator reuses pages that are already
    resident, so a new allocation need not raise the resident set at all."""
    script = (
        "import torch; from seggallery.bench.measure import PeakMemory\n"
        "with PeakMemory(torch.device('cpu')) as memory:\n"
        "    block = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MB, touched\n"
        "    block.add_(1)\n"
        "    del block\n"
        "print(memory.peak_bytes is not None, memory.extra_bytes)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    known, extra = done.stdout.split()
    if known != "True":
        pytest.skip("no /proc/self/statm here")
    assert int(extra) >= 32 << 20


def test_bench_command_writes_every_field(fake_weights, tmp_path, capsys):
    fake_weights("lraspp_mobilenet_v3_large")
    out = tmp_path / "bench.json"
    code = main(["bench", "--models", "lraspp_mobilenet_v3_large", "--sizes", "64,96x64", "--device", "cpu",
                 "--repeat", "2", "--batch", "2", "--precision", "bf16", "--served", "--no-time-choices", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "lraspp_mobilenet_v3_large" in printed and f"wrote {out}" in printed and "Compare of" in printed
    assert "Served Compare (the app on 127.0.0.1, over its HTTP API)" in printed
    result = json.loads(out.read_text())

    assert result["machine"]["device"] == "cpu" and result["settings"]["repeat"] == 2
    assert result["machine"]["cpu"] and set(result["machine"]["cpu_instructions"]) <= set(CPU_INSTRUCTIONS)
    assert f"machine: {result['machine']['cpu']}" in printed
    (row,) = result["models"]
    assert set(row["cold_ms"]) == {"import", "load", "optimize", "precision_check", "total"}
    assert row["cold_ms"]["load"] > 0 and row["weights_mb"] > 0
    assert row["precision"] in ("bf16", "fp32") and row["precision_note"]
    assert row["precision_check"]["precision"] == "bf16" and 0 <= row["precision_check"]["agreement"] <= 1
    assert row["channels_last"] is True
    assert row["host_syncs_per_predict"]["count"] == 1
    dilated = row["dilated_convolutions"]  # MobileNetV3's last stage is dilated (torchvision's segmentation setting)
    assert dilated["rewritable"] > 0 and sum(dilated["choices"].values()) >= dilated["rewritable"]
    sizes = {entry["size"]: entry for entry in row["sizes"]}
    assert sizes.keys() == {"64", "96x64"}
    assert sizes["96x64"]["input_hw"] == [64, 96]
    for entry in sizes.values():
        for timing in ("plain_ms", "optimised_ms"):
            assert entry[timing]["n"] == 2 and 0 < entry[timing]["p50"] <= entry[timing]["p90"]
        assert entry["speedup"] > 0 and 0 <= entry["mask_agreement"] <= 1 and entry["optimised_first_call_ms"] > 0
        assert entry["gflops"] > 0 and entry["achieved_tflops"] > 0
        assert entry["peak_tflops"] is None and entry["percent_of_peak"] is None  # no CPU peak is claimed
        assert entry["batched"]["batch"] == 2 and entry["batched"]["images_per_s"] > 0
        assert entry["peak_memory_mb"]["optimised"] > 0
        assert 0 <= entry["logits"]["fragile_pixel_share"] <= 1 and entry["logits"]["logit_std"] > 0
    assert sizes["96x64"]["gflops"] == pytest.approx(sizes["64"]["gflops"] * 1.5, rel=0.05)

    compare = result["compare"]
    assert compare["models"] == ["lraspp_mobilenet_v3_large"] and compare["photo_hw"] == [768, 1024]
    for step in ("total", "models", "overlays", "encode", "areas", "forward_sum"):
        assert compare["ms"][step]["n"] == 2
    assert compare["ms"]["total"]["p50"] >= compare["ms"]["forward_sum"]["p50"] > 0
    assert compare["overhead_ratio"] >= 1.0 and compare["meets_target"] == (compare["overhead_ratio"] <= 1.2)
    assert compare["against_plain"] is None, "the rows were timed at other sizes than the Compare's native ones"

    served = result["served"]  # the same Compare through the real app and gradio_client
    assert "error" not in served, served
    assert served["models"] == compare["models"] and served["ms"]["total"]["n"] == 2
    assert served["ms"]["total"]["p50"] > served["ms"]["forward_sum"]["p50"] > 0 and served["overhead_ms_p50"] > 0


def test_the_compare_against_plain_uses_each_models_native_plain_time():
    compare = {"models": ["a", "b"], "ms": {"total": {"p50": 300.0}}}
    rows = [{"id": "a", "sizes": [{"size": "512", "plain_ms": {"p50": 9999.0}}, {"size": "native", "plain_ms": {"p50": 400.0}}]},
            {"id": "b", "sizes": [{"size": "native", "plain_ms": {"p50": 600.0}}]}, {"id": "c", "error": "no weights"}]
    against = against_plain(compare, rows)
    assert against["plain_forward_sum_ms"] == 1000.0 and against["ratio"] == pytest.approx(0.3) and against["meets_target"]
    assert against_plain({**compare, "models": ["a", "c"]}, rows) is None  # c has no plain time
    assert "against the plain fp32 forward times (1000.0 ms): 0.30x" in _compare_line(
        {**compare, "photo_hw": [768, 1024], "overhead_ratio": 1.1, "target_ratio": 1.2, "against_plain": against,
         "ms": {name: {"p50": 300.0} for name in ("total", "models", "overlays", "encode", "areas", "forward_sum")}})


def test_bench_reports_a_model_without_weights_and_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    out = tmp_path / "bench.json"
    code = main(["bench", "--models", "fcn_resnet101", "--sizes", "64", "--device", "cpu", "--repeat", "1",
                 "--no-compare", "--json", str(out)])
    assert code == 1
    assert "FAILED" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["models"]
    assert "not in the local cache" in row["error"] and row["fix"].startswith("python -m seggallery fetch")


def test_logit_diagnostics_count_the_pixels_a_rounding_error_could_flip():
    """Two pixels of three classes: one with a clear winner (margin 4), one near a tie (margin 0.01); the
    reduced-precision scores are off by 0.1 everywhere, so only the near-tie pixel is fragile."""
    from seggallery.bench.model import logit_diagnostics

    reference = torch.tensor([[[[4.0, 1.0]], [[0.0, 0.99]], [[0.0, 0.0]]]])  # 1 x 3 x 1 x 2
    reduced = reference + 0.1
    found = logit_diagnostics(reference, reduced)
    assert found["logit_abs_error_p99"] == pytest.approx(0.1, abs=1e-6)
    assert found["fp32_margin_median"] == pytest.approx(0.01, abs=1e-6)  # torch's median: the lower middle value
    assert found["fragile_pixel_share"] == 0.5
    assert logit_diagnostics(None, reduced) is None and logit_diagnostics(reference, reduced[:, :2]) is None
