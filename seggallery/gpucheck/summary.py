"""The check's results against its targets, as plain data (summary.json), from the files the steps wrote.

Every number comes from a step's own output (fakes.json, gpu-tests.xml and .jsonl, bench*.json); a step
that did not run or wrote nothing leaves its part empty, and the summary says so instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from .plan import COMPARE3_TARGET_MS, COMPARE5_TARGET_MS, EXPECTED_HOST_SYNCS, RESNET50_SPEEDUP_TARGET, Plan
from .steps import Outcome


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_resnet50(model_id: str) -> bool:
    return "resnet50" in model_id or "_r50" in model_id


def summarise(out: Path, plan: Plan, outcomes: list[Outcome], notes: list[str], seconds: float) -> dict:
    bench = read_json(out / "bench.json")
    compiled = read_json(out / "bench-compile.json")
    compare5 = read_json(out / "bench-compare5.json")
    summary = {
        "plan": plan.name,
        "device": plan.device,
        "machine": (bench or compiled or compare5 or {}).get("machine"),
        "seconds": round(seconds, 1),
        "budget_s": plan.budget_s,
        "steps": [outcome.__dict__ for outcome in outcomes],
        "notes": notes,
        "models": read_json(out / "fakes.json") or {},
        "tests": test_results(out / "gpu-tests.xml"),
        "measurements": test_measurements(out / "gpu-tests.jsonl"),
        "per_model": per_model(bench),
        "compile": compile_speedups(bench, compiled),
        "compares": [compare_result("three-model", bench, COMPARE3_TARGET_MS),
                     compare_result("five-model", compare5, COMPARE5_TARGET_MS)],
    }
    summary["targets"] = targets(summary)
    return summary


def test_results(path: Path) -> dict | None:
    """Counts and the failing and skipped tests of pytest's JUnit XML; None when the tests did not run."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    result = {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "skips": []}
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            result["failed"] += 1
            result["failures"].append({"test": name, "message": (problem.get("message") or "")[:500]})
        elif skipped is not None:
            result["skipped"] += 1
            result["skips"].append({"test": name, "reason": (skipped.get("message") or "")[:300]})
        else:
            result["passed"] += 1
    return result


def test_measurements(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def size_rows(bench: dict | None, describe) -> list[dict]:
    """One row per model and input size of a benchmark's JSON: `describe(row, entry)` of each measurement, or
    the error that took its place."""
    rows = []
    for row in (bench or {}).get("models", []):
        if "error" in row:
            rows.append({"id": row["id"], "error": row["error"]})
            continue
        for entry in row["sizes"]:
            if "error" in entry:
                rows.append({"id": row["id"], "size": entry["size"], "error": entry["error"]})
            else:
                rows.append({"id": row["id"], "size": f"{entry['input_hw'][1]}x{entry['input_hw'][0]}",
                             **describe(row, entry)})
    return rows


def per_model(bench: dict | None) -> list[dict]:
    def describe(row: dict, entry: dict) -> dict:
        target = RESNET50_SPEEDUP_TARGET if is_resnet50(row["id"]) else None
        return {
            "precision": row["precision"], "plain_ms": entry["plain_ms"]["p50"],
            "optimised_ms": entry["optimised_ms"]["p50"], "speedup": entry["speedup"], "target": target,
            "meets": None if target is None else entry["speedup"] >= target,
            "mask_agreement": entry["mask_agreement"], "gflops": entry["gflops"],
            "tflops": entry["achieved_tflops"], "percent_of_peak": entry["percent_of_peak"],
            "peak_kind": entry["peak_kind"], "peak_mb": entry["peak_memory_mb"]["optimised"],
            "images_per_s": entry.get("batched", {}).get("images_per_s"),
            "host_syncs": row["host_syncs_per_predict"]["count"],
        }

    return size_rows(bench, describe)


def compile_speedups(bench: dict | None, compiled: dict | None) -> list[dict]:
    """torch.compile on against off: the same model, optimised otherwise alike, at the same input size."""
    eager = {(row["id"], entry["size"]): entry for row in (bench or {}).get("models", []) if "error" not in row
             for entry in row["sizes"] if "error" not in entry}

    def describe(row: dict, entry: dict) -> dict:
        before = eager.get((row["id"], entry["size"]))
        return {
            "compiled": row["compiled"], "compiled_ms": entry["optimised_ms"]["p50"],
            "first_call_s": entry["optimised_first_call_ms"] / 1000.0,
            "eager_ms": before["optimised_ms"]["p50"] if before else None,
            "speedup": before["optimised_ms"]["p50"] / entry["optimised_ms"]["p50"] if before else None,
            "plain_ms": entry["plain_ms"]["p50"], "speedup_over_plain": entry["speedup"],
        }

    return size_rows(compiled, describe)


def compare_result(name: str, bench: dict | None, target_ms: float) -> dict:
    compare = (bench or {}).get("compare")
    if not compare:
        return {"name": name, "ran": False}
    if "error" in compare:
        return {"name": name, "ran": False, "models": compare["models"], "error": compare["error"]}
    served = bench.get("served")
    result = {"name": name, "ran": True, "models": compare["models"], "photo_hw": compare["photo_hw"],
              "precisions": compare["precisions"], "in_process_ms": compare["ms"]["total"]["p50"],
              "forward_sum_ms": compare["ms"]["forward_sum"]["p50"], "overhead_ratio": compare["overhead_ratio"],
              "target_ms": target_ms, "meets": compare["ms"]["total"]["p50"] <= target_ms}
    if served and "error" not in served:
        result.update(served_ms=served["ms"]["total"]["p50"], served_meets=served["ms"]["total"]["p50"] <= target_ms)
    elif served:
        result["served_error"] = served["error"]
    return result


def targets(summary: dict) -> list[dict]:
    """The issue's targets, each with what was measured and whether it was met (None: not measured)."""
    found = []
    for row in summary["per_model"]:
        if row.get("target") is not None:
            found.append({"what": f"{row['id']} at {row['size']}: optimised vs plain fp32 eager",
                          "measured": f"{row['speedup']:.2f}x", "target": f">= {row['target']:.0f}x", "met": row["meets"]})
    for compare in summary["compares"]:
        if compare.get("ran"):
            where = [("in-process", compare["in_process_ms"], compare["meets"])]
            if "served_ms" in compare:
                where.append(("served", compare["served_ms"], compare["served_meets"]))
            for label, value, met in where:
                found.append({"what": f"warm {compare['name']} Compare, {label}", "measured": f"{value:.1f} ms",
                              "target": f"<= {compare['target_ms']:.0f} ms", "met": met})
    syncs = [row for row in summary["per_model"] if "host_syncs" in row]
    if syncs:
        off = sorted({f"{row['id']}: {row['host_syncs']}" for row in syncs
                      if row["host_syncs"] != EXPECTED_HOST_SYNCS.get(row["id"], 1)})
        found.append({"what": "host syncs per prediction (bench)", "measured": "as expected" if not off else
                      "; ".join(off), "target": "1 per model (OneFormer 2)", "met": not off})
    for row in summary["compile"]:
        if row.get("speedup") is not None:
            found.append({"what": f"torch.compile speed-up, {row['id']} at {row['size']}", "measured": f"{row['speedup']:.2f}x",
                          "target": "measured", "met": None})
    return found
