"""`bench --models IDS --sizes 512,1024 --device cpu|cuda --repeat N`: the engine against the plain baseline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import model_ids


def sizes(text: str) -> list:
    from ..bench.config import parse_size

    try:
        return [parse_size(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def compare_size(text: str):
    from ..bench.config import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(parser) -> None:
    parser.add_argument("--models", required=True, type=model_ids, help="catalog ids, e.g. fcn_resnet50,deeplabv3_resnet50")
    parser.add_argument("--sizes", type=sizes, default=None,
                        help="model input sizes: N (square), WIDTHxHEIGHT, or native (the model's own preprocessing "
                             "of the photo); comma-separated (default: native)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--repeat", type=positive, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1 on a CPU, 5 on a GPU)")
    parser.add_argument("--batch", type=int, default=None, help="batch size for throughput (default 2 on a CPU, 8 on a GPU; 0 skips it)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="optimised precision (default auto: the fastest the device runs well)")
    parser.add_argument("--no-precision-check", action="store_true",
                        help="keep the reduced precision even where its mask disagrees with fp32 (to time it; "
                             "the agreement is still reported)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the upstream memory layout")
    parser.add_argument("--no-fast-convolutions", action="store_true",
                        help="CPU: keep the library's convolutions and linear layers as they are (no kept autocast weights, no dilated taps)")
    parser.add_argument("--no-time-choices", action="store_true",
                        help="with the precision check, do not also time plain fp32 against the tuned runs")
    parser.add_argument("--compile", action="store_true", help="torch.compile the optimised model (first call compiles)")
    parser.add_argument("--compare-models", type=model_ids, default=None,
                        help="models of the end-to-end Compare timing (default: the first three of --models)")
    parser.add_argument("--no-compare", action="store_true", help="skip the end-to-end Compare timing")
    parser.add_argument("--served", action="store_true",
                        help="also time the Compare through the real app on 127.0.0.1 over its HTTP API, as the browser gets it")
    parser.add_argument("--compare-size", type=compare_size, default=None,
                        help="photo size of the Compare, WIDTHxHEIGHT (default: the photo as it is, 1024x768)")
    parser.add_argument("--image", type=Path, default=None, help="photo to use (default: assets/examples/street-city.jpg)")
    parser.add_argument("--json", type=Path, default=Path("bench.json"), help="where to write the results (default bench.json)")


def run(args) -> int:
    from ..bench.config import BenchConfig
    from ..bench.run import run_benchmark
    from ..bench.table import format_table
    from ..runtime.devices import pick_device
    from ..runtime.speed import SpeedOptions

    try:
        device = pick_device(args.device)
    except RuntimeError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    options = SpeedOptions(precision=args.precision, channels_last=not args.no_channels_last, compile=args.compile,
                           check_agreement=not args.no_precision_check, fast_convolutions=not args.no_fast_convolutions,
                           time_choices=not args.no_time_choices)
    config = BenchConfig(
        models=args.models, sizes=args.sizes or [None], device=device, repeat=args.repeat, warmup=args.warmup,
        batch=args.batch, options=options, compare_models=[] if args.no_compare else args.compare_models,
        compare_size=args.compare_size, photo=args.image, served=args.served,
    )

    def progress(row: dict) -> None:
        state = "FAILED: " + row["error"] if "error" in row else f"done ({row['precision']})"
        print(f"{row['id']}: {state}", file=sys.stderr, flush=True)

    result = run_benchmark(config, on_row=progress)
    print(format_table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    failed = any("error" in row for row in result["models"]) or any(
        result[part] and "error" in result[part] for part in ("compare", "served"))
    return 1 if failed else 0
