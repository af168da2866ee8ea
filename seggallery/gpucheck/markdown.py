"""summary.md: the summary for reading (summary.json has the same numbers, and the step files have all)."""

from __future__ import annotations


def render(summary: dict) -> str:
    machine = summary.get("machine") or {}
    lines = [f"# SegGallery GPU check ({summary['plan']})", ""]
    if summary["plan"] == "dry-run":
        lines += [("**Dry run on the CPU at tiny sizes: the numbers below say nothing about speed; the run shows "
                   "that every step works.**"), ""]
    lines += [(f"Device: {machine.get('device', summary['device'])}; torch {machine.get('torch', '?')}; "
               f"{summary['seconds']:.0f} s of a {summary['budget_s']} s budget."), ""]
    lines += _table(["step", "status", "seconds", "note"],
                    [[s["name"], s["status"], f"{s['seconds']:.1f}", s.get("reason") or ""] for s in summary["steps"]])
    if summary["notes"]:
        lines += ["", *[f"- {note}" for note in summary["notes"]]]
    lines += ["", "## Targets", ""]
    lines += _table(["what", "measured", "target", "met"],
                    [[t["what"], t["measured"], t["target"], _yes(t["met"])] for t in summary["targets"]])
    lines += ["", "## Models", ""]
    skipped = [[model, info["status"], info.get("reason", "")] for model, info in summary["models"].items()
               if info["status"] not in ("written", "cached")]
    lines += _table(["model", "status", "why"], skipped) if skipped else ["Every model's checkpoint was at hand."]
    lines += ["", _tests_line(summary["tests"])]
    for failure in (summary["tests"] or {}).get("failures", []):
        lines.append(f"- FAILED {failure['test']}: {failure['message'][:300]}")
    if summary["measurements"]:
        lines += ["", "### Measured in the GPU tests (agreement: share of pixels equal to the CPU's fp32 mask)", ""]
        lines += _table(["test", "model", "what", "value", "asserted"],
                        [[r["test"], r["model"], r["what"], _value(r), "yes" if r.get("asserted") else "recorded"]
                         for r in summary["measurements"]])
    lines += ["", "## Benchmark (forward p50, optimised against plain fp32 eager)", ""]
    lines += _table(["model", "size", "prec", "plain ms", "opt ms", "speed-up", "TFLOP/s", "% peak", "img/s", "peak MB",
                     "syncs"], [_model_row(row) for row in summary["per_model"]])
    if summary["compile"]:
        lines += ["", "## torch.compile", ""]
        lines += _table(["model", "size", "eager opt ms", "compiled ms", "speed-up", "first call s"],
                        [[r["id"], r.get("size", ""), _num(r.get("eager_ms")), _num(r.get("compiled_ms")),
                          _num(r.get("speedup"), "{:.2f}x"), _num(r.get("first_call_s"))] if "error" not in r
                         else [r["id"], r.get("size", ""), "FAILED: " + r["error"][:100], "", "", ""]
                         for r in summary["compile"]])
    lines += ["", "## Compares (warm, end to end)", ""]
    for compare in summary["compares"]:
        lines.append(_compare_line(compare))
    return "\n".join(lines) + "\n"


def _model_row(row: dict) -> list[str]:
    if "error" in row:
        return [row["id"], row.get("size", ""), "FAILED: " + row["error"][:100], *[""] * 8]
    return [row["id"], row["size"], row["precision"], _num(row["plain_ms"]), _num(row["optimised_ms"]),
            _num(row["speedup"], "{:.2f}x"), _num(row["tflops"]), _num(row["percent_of_peak"]), _num(row["images_per_s"]),
            _num(row["peak_mb"], "{:.0f}"), str(row["host_syncs"])]


def _compare_line(compare: dict) -> str:
    if not compare.get("ran"):
        why = compare.get("error", "not run")
        return f"- {compare['name']}: {why}"
    line = (f"- {compare['name']} ({', '.join(compare['models'])}): {compare['in_process_ms']:.1f} ms in-process "
            f"(forward passes {compare['forward_sum_ms']:.1f} ms, ratio {compare['overhead_ratio']:.2f}); target "
            f"<= {compare['target_ms']:.0f} ms")
    if "served_ms" in compare:
        line += f"; served over HTTP {compare['served_ms']:.1f} ms"
    elif "served_error" in compare:
        line += f"; served: FAILED {compare['served_error'][:200]}"
    return line


def _tests_line(tests: dict | None) -> str:
    if tests is None:
        return "GPU tests: did not run (no gpu-tests.xml)."
    return f"GPU tests: {tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped."


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def _value(measurement: dict) -> str:
    value = measurement["value"]
    return f"{100 * value:.3f}%" if measurement.get("unit") == "share" else str(value)


def _num(value, spec: str = "{:.1f}") -> str:
    return "n/a" if value is None else spec.format(value)


def _yes(value) -> str:
    return {True: "yes", False: "NO", None: "–"}[value]
