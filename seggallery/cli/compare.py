"""`compare IMAGE... --models IDS --out DIR`: overlays, raw masks and report.json per image."""

from __future__ import annotations

import sys
from pathlib import Path

from . import model_ids


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="image files")
    parser.add_argument("--models", required=True, type=model_ids, help="catalog ids, e.g. fcn_resnet50,deeplabv3_resnet50")
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per image when several)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--opacity", type=float, default=0.5, help="overlay opacity, 0..1 (default 0.5)")


def run(args) -> int:
    from ..engine import Engine, Failure, pick_device
    from ..images import ImageError, load_image
    from ..report import write_outputs

    engine = Engine(device=pick_device(args.device))
    failures = 0
    for image_path in args.images:
        out_dir = args.out if len(args.images) == 1 else args.out / image_path.stem
        try:
            image = load_image(image_path)
        except ImageError as error:
            print(f"{image_path}: {error}", file=sys.stderr)
            failures += 1
            continue
        for note in image.notes:
            print(f"{image_path.name}: {note}")

        def progress(index: int, model_id: str) -> None:
            cold = engine.cache.get(model_id, engine.device) is None
            print(f"[{index + 1}/{len(args.models)}] {model_id}" + (" (loading; first use downloads weights)" if cold else ""), flush=True)

        results = engine.run_many(image.pixels, args.models, on_progress=progress)
        write_outputs(out_dir, image, results, image_name=image_path.name, opacity=args.opacity)
        for result in results:
            if isinstance(result, Failure):
                failures += 1
                print(f"{result.spec.id}: FAILED: {result.reason}\n  fix: {result.fix}", file=sys.stderr)
            else:
                timing = result.timings_ms
                print(f"{result.spec.id}: {timing['total']:.0f} ms on {result.device} ({result.precision})"
                      + (f", loaded in {timing['load']:.0f} ms" if result.cold else ""))
        print(f"wrote {out_dir}")
    return 1 if failures else 0
