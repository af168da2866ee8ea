"""`gpu-check [--out DIR] [--dry-run] [--models IDS]`: the GPU path tested and measured (seggallery.gpucheck)."""

from __future__ import annotations

from pathlib import Path

from . import model_ids

DESCRIPTION = ("On a machine with a CUDA GPU: write random-weight checkpoints, run the GPU tests and the benchmark "
               "on the GPU, and write every result and log into one folder (within 8 minutes on an H200). "
               "Without CUDA it says so and exits 0.")


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/gpu-check"), help="results folder (default out/gpu-check)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every step on the CPU with small models at tiny sizes (seconds; the numbers mean nothing)")
    parser.add_argument("--models", type=model_ids, default=None,
                        help="models to test and benchmark one by one (default: the plan's); the Compares keep their presets")


def run(args) -> int:
    from ..gpucheck.run import check

    return check(args.out, dry_run=args.dry_run, models=args.models)
