"""`python -m seggallery <command>`: one module per command, each with add_arguments(parser) and run(args)."""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "models": ("models", "list the catalog and which weights are cached locally"),
    "fetch": ("fetch", "download weights into the standard caches (e.g. while building a Space)"),
    "compare": ("compare", "segment images with several models; write overlays, masks and report.json"),
    "eval": ("eval", "score models against ground-truth masks over a folder (resumable); write JSON and CSV"),
    "pin": ("pin", "look up the commit SHA of Hub entries that still track a branch"),
    "bench": ("bench", "time the optimised engine against the plain fp32 baseline; write JSON"),
    "gpu-check": ("gpucheck", "on a CUDA GPU: the GPU tests and benchmarks in one folder (--dry-run: on the CPU)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seggallery", description="Compare semantic segmentation models.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def model_ids(text: str) -> list[str]:
    """'a,b c' -> ['a', 'b', 'c'], each checked against the catalog (argparse type)."""
    from ..catalog import catalog

    ids = [part for chunk in text.split(",") for part in chunk.split() if part]
    unknown = [model_id for model_id in ids if model_id not in catalog()]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown model id(s): {', '.join(unknown)} (see `python -m seggallery models`)")
    return ids
