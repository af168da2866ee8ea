"""`python -m seggallery.gpucheck`: the dry run writes every result with real content, no CUDA is a message
and exit 0, an unknown model id is refused, and the mmseg stand-in fakes that the GPU machine uses load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from conftest import EXAMPLES, REPO
from fakes.mmseg import stand_in_checkpoint

from seggallery.backends import load_segmenter
from seggallery.backends.mmseg import checkpoint_path
from seggallery.catalog import get_spec
from seggallery.images import load_image

STEPS = ["fakes", "gpu-tests", "bench", "bench-compare5", "bench-compile"]
FILES = ["summary.md", "summary.json", "environment.json", "fakes.json", "gpu-tests.xml", "gpu-tests.jsonl",
         "bench.json", "bench-compare5.json", "bench-compile.json", *[f"logs/{step}.log" for step in STEPS]]


def gpucheck(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seggallery.gpucheck", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def test_the_dry_run_writes_every_result_into_one_folder(tmp_path):
    out = tmp_path / "check"
    done = gpucheck("--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    missing = [name for name in FILES if not (out / name).is_file()]
    assert not missing, f"{missing} not written; {done.stdout}"
    summary = json.loads((out / "summary.json").read_text())
    assert [(step["name"], step["status"]) for step in summary["steps"]] == [(step, "ok") for step in STEPS]
    assert summary["plan"] == "dry-run" and summary["seconds"] < summary["budget_s"]
    tests = summary["tests"]
    assert tests["failed"] == 0 and tests["passed"] >= 8, tests
    tested = {m["model"] for m in summary["measurements"] if m["test"] == "fp32"}
    ready = {model for model, info in summary["models"].items() if info["status"] in ("written", "cached")}
    assert tested and tested == ready & {"lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v2", "smp_segformer_b0_ade",
                                         "enet_camvid"}
    rows = summary["per_model"]
    assert rows and all(row["plain_ms"] > 0 and row["optimised_ms"] > 0 and row["gflops"] > 0 for row in rows)
    assert [c["ran"] for c in summary["compares"]] == [True, True]
    assert len(summary["compares"][1]["models"]) == 5 and summary["compares"][0]["in_process_ms"] > 0
    (compiled,) = summary["compile"]
    assert compiled["compiled"] and compiled["eager_ms"] > 0 and compiled["speedup"] > 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["settings"]["device"] == "cpu" and bench["compare"]["ms"]["total"]["p50"] > 0
    report = (out / "summary.md").read_text()
    assert "Dry run on the CPU" in report and "## Targets" in report and all(step in report for step in STEPS)
    assert (out / "logs" / "bench.log").read_text().startswith("$ ") and "wrote" in (out / "logs" / "bench.log").read_text()


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    done = gpucheck("--out", str(tmp_path / "check"), env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no CUDA GPU here" in done.stdout and "--dry-run" in done.stdout
    assert not (tmp_path / "check").exists()


def test_an_unknown_model_id_is_refused_with_a_message():
    done = gpucheck("--dry-run", "--models", "fcn_resnet50,no_such_model", timeout=120)
    assert done.returncode == 2
    assert "unknown model id(s): no_such_model" in done.stderr and "Traceback" not in done.stderr


def test_the_mmseg_stand_in_loads_as_a_zoo_checkpoint(tmp_path, monkeypatch):
    """Where mmsegmentation is not installed (the GPU machine), the mmseg fakes are our own module's random
    weights under the zoo's key names: the backend loads them strictly, and they answer with several classes."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = get_spec("fcn_r50_d8_voc")
    path = checkpoint_path(spec)
    path.parent.mkdir(parents=True)
    checkpoint = stand_in_checkpoint(spec)
    assert any(key.startswith("backbone.stem.") for key in checkpoint["state_dict"])  # the zoo's names
    torch.save(checkpoint, path)
    photo = np.ascontiguousarray(load_image(EXAMPLES / "street-city.jpg").pixels[::4, ::4])
    mask = load_segmenter(spec, torch.device("cpu")).predict(photo).mask
    assert mask.shape == photo.shape[:2] and len(np.unique(mask)) > 3


def test_the_full_plan_runs_every_measurement_on_cuda(tmp_path):
    """The H200 run, as far as it can be checked without one: its steps, their commands, the budget, and a
    model without a checkpoint leaving out only what needs it."""
    from seggallery.catalog import presets
    from seggallery.gpucheck import environment, plan, run

    full = plan.choose(dry_run=False)
    assert full.compare3 == tuple(presets()[plan.COMPARE3_PRESET]["models"]) and len(full.compare5) == 5
    assert full.device == "cuda" and full.budget_s == 480 and max(full.limits_s.values()) <= full.budget_s
    steps, notes = run.later_steps(full, tmp_path, full.all_models(), tmp_path)
    tests, bench, compare5, compiled = steps
    assert [step.name for step in steps] == ["gpu-tests", "bench", "bench-compare5", "bench-compile"]
    assert tests.env["SEGGALLERY_GPU_TEST_DEVICE"] == "cuda"
    assert tests.env["SEGGALLERY_GPU_TEST_MODELS"].split(",") == list(full.models)
    command = " ".join(bench.command)
    assert "--device cuda" in command and "--sizes native,1024" in command and "--batch 8" in command
    assert f"--compare-models {','.join(full.compare3)}" in command
    assert ("--served" in command) == environment.importable("gradio")
    assert f"--compare-models {','.join(full.compare5)}" in " ".join(compare5.command)
    assert "--compile" in compiled.command and "--sizes native" in " ".join(compiled.command)
    assert "TORCH_COMPILE_DISABLE" not in compiled.env

    ready = [model for model in full.all_models() if model != "deeplabv3_r50_d8_voc"]
    steps, notes = run.later_steps(full, tmp_path, ready, tmp_path)
    assert steps[2].status == "not run" and any("deeplabv3_r50_d8_voc" in note for note in notes)
    assert "deeplabv3_r50_d8_voc" not in steps[0].env["SEGGALLERY_GPU_TEST_MODELS"]


def test_a_step_past_its_limit_is_stopped_with_its_children(tmp_path):
    from seggallery.gpucheck.steps import Step, run_step

    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
              f"open({str(pid_file)!r}, 'w').write(str(child.pid)); print('started', flush=True); time.sleep(120)")
    outcome = run_step(Step("slow", [sys.executable, "-c", script], 120), tmp_path, dict(os.environ), timeout_s=3)
    assert outcome.status == "timed out" and outcome.seconds < 60
    log = (tmp_path / outcome.log).read_text()
    assert "started" in log and "stopped after 3 s" in log
    status = Path(f"/proc/{pid_file.read_text()}/status")
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: give a loaded machine a moment
    while status.exists() and "State:\tZ" not in status.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    if status.exists():  # gone, or a zombie waiting to be reaped: not running either way
        assert "State:\tZ" in status.read_text()
