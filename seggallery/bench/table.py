"""The benchmark's result as a fixed-width text table (the JSON has everything; this is for reading)."""

from __future__ import annotations

from .measure import machine_line


def format_table(result: dict) -> str:
    """The benchmark as a fixed-width text table."""
    header = (f"{'model':<28} {'size':>8} {'prec':>5} {'load s':>7} {'plain p50':>10} {'opt p50':>9} {'opt p90':>9} "
              f"{'speedup':>7} {'agree %':>8} {'img/s':>7} {'GFLOPs':>7} {'TFLOP/s':>8} {'% peak':>7} {'peak MB':>8}")
    lines = [f"SegGallery benchmark on {result['machine']['device']} (torch {result['machine']['torch']}), "
             f"repeat {result['settings']['repeat']}, photo {result['settings']['photo']}",
             f"machine: {machine_line(result['machine'])}", header, "-" * len(header)]
    for row in result["models"]:
        if "error" in row:
            lines.append(f"{row['id']:<28} FAILED: {row['error'][:100]}")
            continue
        load_s = row["cold_ms"]["total"] / 1000.0
        for entry in row["sizes"]:
            if "error" in entry:
                lines.append(f"{row['id']:<28} {entry['size']:>8} FAILED: {entry['error'][:90]}")
                continue
            batched_rate = entry.get("batched", {}).get("images_per_s")
            peak_mb = entry["peak_memory_mb"]["optimised"]
            size = f"{entry['input_hw'][1]}x{entry['input_hw'][0]}"
            lines.append(
                f"{row['id']:<28} {size:>8} {row['precision']:>5} {load_s:>7.1f} {entry['plain_ms']['p50']:>10.1f} "
                f"{entry['optimised_ms']['p50']:>9.1f} {entry['optimised_ms']['p90']:>9.1f} {entry['speedup']:>6.2f}x "
                f"{100 * entry['mask_agreement']:>8.2f} {_fmt(batched_rate, '7.1f')} {entry['gflops']:>7.1f} "
                f"{_fmt(entry['achieved_tflops'], '8.2f')} {_fmt(entry['percent_of_peak'], '7.1f')} {_fmt(peak_mb, '8.0f')}")
        lines.append(f"{'':<28} precision: {row['precision_note']}; host syncs per predict: "
                     f"{row['host_syncs_per_predict']['count']}")
    for part, describe in (("compare", _compare_line), ("served", _served_line)):
        if result.get(part):
            failed = "error" in result[part]
            lines.append(f"{part}: FAILED: {result[part]['error'][:200]}" if failed else describe(result[part]))
    return "\n".join(lines)


def _compare_line(compare: dict) -> str:
    ms = compare["ms"]
    height, width = compare["photo_hw"]
    return (f"Compare of {', '.join(compare['models'])} on a {width}x{height} photo: {ms['total']['p50']:.1f} ms p50 "
            f"end to end (models {ms['models']['p50']:.1f}, overlays {ms['overlays']['p50']:.1f}, encode "
            f"{ms['encode']['p50']:.1f}, areas {ms['areas']['p50']:.1f}); sum of forward times "
            f"{ms['forward_sum']['p50']:.1f} ms; ratio {compare['overhead_ratio']:.3f} (target <= {compare['target_ratio']})"
            + _plain_part(compare.get("against_plain")))


def _plain_part(against: dict | None) -> str:
    if not against:
        return ""
    return (f"; against the plain fp32 forward times ({against['plain_forward_sum_ms']:.1f} ms): "
            f"{against['ratio']:.2f}x (target <= {against['target_ratio']})")


def _served_line(served: dict) -> str:
    ms = served["ms"]
    return (f"Served Compare (the app on 127.0.0.1, over its HTTP API): {ms['total']['p50']:.1f} ms p50, "
            f"{ms['total']['p90']:.1f} ms p90; sum of forward times {ms['forward_sum']['p50']:.1f} ms; everything "
            f"else {served['overhead_ms_p50']:.1f} ms")


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{'n/a':>{width}}" if value is None else format(value, f">{spec}")
