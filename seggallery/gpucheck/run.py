"""The whole check: write the fakes, then the GPU tests and the benchmarks in the budget, then the summary."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import environment, markdown
from .plan import Plan, choose
from .steps import Outcome, Step, not_run, run_step
from .summary import read_json, summarise

RESERVE_S = 10  # kept back from the budget for the summary
MIN_STEP_S = 20  # a step is not started with less than this left

NO_CUDA = ("gpucheck: no CUDA GPU here (torch {torch} sees none), so there is nothing to check on this machine.\n"
           "Run it where there is one (README, \"GPU check\"); `python -m seggallery.gpucheck --dry-run` runs every "
           "step on the CPU at tiny sizes.")


def check(out: Path, dry_run: bool = False, models: list[str] | None = None) -> int:
    """0 when every step ran and passed (models that cannot run here are reported, not failed)."""
    import torch

    if not dry_run and not torch.cuda.is_available():
        print(NO_CUDA.format(torch=torch.__version__))
        return 0
    plan = choose(dry_run, models)
    out = out.resolve()  # the steps run from the repository's root
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("fakes.json", "gpu-tests.xml", "gpu-tests.jsonl", "bench.json", "bench-compare5.json",
                  "bench-compile.json"):
        (out / stale).unlink(missing_ok=True)  # a rerun into the same folder must not report old results
    start = time.monotonic()
    caches = Path(tempfile.mkdtemp(prefix="seggallery-gpucheck-"))
    try:
        env = environment.hermetic_env(caches)
        (out / "environment.json").write_text(json.dumps(environment.facts(), indent=2))
        print(f"gpucheck ({plan.name}, {plan.device}): results into {out}", flush=True)
        outcomes = [_run(_fakes_step(plan, out), plan, out, env, start)]
        prepared = read_json(out / "fakes.json") or {}
        ready = [model for model, info in prepared.items() if info["status"] in ("written", "cached")]
        later, notes = later_steps(plan, out, ready, caches)
        outcomes += [_shown(step) if isinstance(step, Outcome) else _run(step, plan, out, env, start) for step in later]
        summary = summarise(out, plan, outcomes, notes, time.monotonic() - start)
    finally:
        shutil.rmtree(caches, ignore_errors=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown.render(summary))
    failed = [o for o in outcomes if o.status in ("failed", "timed out") or (o.reason or "").startswith("no time")]
    passed = [o for o in outcomes if o.status == "ok"]
    print(f"gpucheck: {len(passed)} steps passed, {len(failed)} failed or did not fit the budget, "
          f"{len(outcomes) - len(passed) - len(failed)} could not run here; {summary['seconds']:.0f} s; "
          f"wrote {out / 'summary.md'}")
    return 1 if failed else 0


def _run(step: Step, plan: Plan, out: Path, env: dict, start: float) -> Outcome:
    left = plan.budget_s - (time.monotonic() - start) - RESERVE_S
    if left < MIN_STEP_S:
        return _shown(not_run(step.name, f"no time left in the {plan.budget_s} s budget"))
    print(f"  {step.name} ...", end=" ", flush=True)
    return _shown(run_step(step, out, env, min(step.limit_s, left)), named=False)


def _shown(outcome: Outcome, named: bool = True) -> Outcome:
    name = f"  {outcome.name} ... " if named else ""
    print(f"{name}{outcome.status} ({outcome.seconds:.1f} s){': ' + outcome.reason if outcome.reason else ''}", flush=True)
    return outcome


def _fakes_step(plan: Plan, out: Path) -> Step:
    command = [sys.executable, "-m", "seggallery.gpucheck.fakes", "--json", str(out / "fakes.json"), *plan.all_models()]
    return Step("fakes", command, plan.limits_s["fakes"])


def later_steps(plan: Plan, out: Path, ready: list[str], caches: Path) -> tuple[list[Step | Outcome], list[str]]:
    """The GPU tests and the three benchmarks, with what they need that is here; notes say what is left out."""
    notes = []
    models = [model for model in plan.models if model in ready]
    served = plan.served and environment.importable("gradio")
    if plan.served and not served:
        notes.append("served Compares not timed: gradio is not installed (the in-process Compares are)")
    compares = {}
    for name, group in (("three-model", plan.compare3), ("five-model", plan.compare5)):
        missing = [model for model in group if model not in ready]
        compares[name] = [] if missing else list(group)
        if missing:
            notes.append(f"{name} Compare not run: no checkpoint for {', '.join(missing)}")
    if plan.compile_disabled:
        notes.append("torch.compile is switched off in the dry run (TORCH_COMPILE_DISABLE=1): only its plumbing runs")
    steps: list[Step | Outcome] = [_tests_step(plan, out, models)]
    if models:
        steps.append(_bench_step("bench", plan, out, caches, models, plan.sizes, plan.batch, compares["three-model"], served))
    else:
        steps.append(not_run("bench", "none of the plan's models can run here"))
    five = compares["five-model"]
    steps.append(_bench_step("bench-compare5", plan, out, caches, five[:1], "native", 0, five, served) if five
                 else not_run("bench-compare5", "its models cannot all run here"))
    compile_models = [model for model in plan.compile_models if model in ready]
    first_size = plan.sizes.split(",")[0]  # where the main benchmark timed the same model without compiling
    steps.append(_bench_step("bench-compile", plan, out, caches, compile_models, first_size, 0, [], False, compile=True)
                 if compile_models else not_run("bench-compile", "its model cannot run here"))
    return steps, notes


def _tests_step(plan: Plan, out: Path, models: list[str]) -> Step | Outcome:
    if not environment.importable("pytest"):
        return not_run("gpu-tests", "pytest is not installed (carry its wheel: requirements-gpucheck.txt)")
    command = [sys.executable, "-m", "pytest", "tests/test_gpu.py", "-m", "gpu", "-q", "-rA", "-p", "no:cacheprovider",
               "-o", "addopts=", "--junitxml", str(out / "gpu-tests.xml")]
    if environment.importable("pytest_timeout"):
        command += ["--timeout", str(min(120, plan.limits_s["gpu-tests"]))]  # one test; the step has its own limit
    env = {"SEGGALLERY_GPU_TEST_DEVICE": plan.device, "SEGGALLERY_GPU_TEST_MODELS": ",".join(models),
           "SEGGALLERY_GPU_TEST_RESULTS": str(out / "gpu-tests.jsonl")}
    return Step("gpu-tests", command, plan.limits_s["gpu-tests"], env)


def _bench_step(name: str, plan: Plan, out: Path, caches: Path, models: list[str], sizes: str, batch: int,
                compare: list[str], served: bool, compile: bool = False) -> Step:
    """`python -m seggallery bench` as a user runs it. Random weights make the precision check fall back to
    fp32 where trained weights would not (README, Performance), so the timings use the reduced precision
    unchecked; its agreement with fp32 is still measured and reported."""
    command = [sys.executable, "-m", "seggallery", "bench", "--models", ",".join(models), "--sizes", sizes,
               "--device", plan.device, "--repeat", str(plan.repeat), "--batch", str(batch), "--no-precision-check",
               "--json", str(out / f"{name}.json")]
    if plan.warmup is not None:
        command += ["--warmup", str(plan.warmup)]
    if compare:
        command += ["--compare-models", ",".join(compare)]
        command += ["--compare-size", plan.compare_size] if plan.compare_size else []
        command += ["--served"] if served else []
    else:
        command.append("--no-compare")
    if compile:
        command.append("--compile")
    env = {"SEGGALLERY_CACHE_DIR": str(caches / name)}  # each benchmark measures its own cold loads
    if compile and plan.compile_disabled:
        env["TORCH_COMPILE_DISABLE"] = "1"
    return Step(name, command, plan.limits_s[name], env)
