"""`compare IMAGE... --models IDS --out DIR [--mask FILE] [--crf]`: overlays, masks, CSVs and report.json per image."""

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
    parser.add_argument("--mask", type=Path, default=None,
                        help="ground-truth label mask of the (single) image: scores per model, right/wrong maps")
    parser.add_argument("--mask-labels", default=None, help="label set of --mask (default: the first model's)")
    parser.add_argument("--crf", action="store_true",
                        help="refine every model's probabilities with the dense CRF (DeepLab v1/v2's post-processing; "
                             "its time is the timing step \"crf\")")


def run(args) -> int:
    from ..catalog import CatalogError, get_spec, label_set
    from ..evidence.groundtruth import load_mask
    from ..images import ImageError, load_image
    from ..report import write_outputs
    from ..runtime.crf import DEFAULT as CRF_DEFAULT
    from ..runtime.devices import pick_device
    from ..runtime.engine import Engine
    from ..runtime.results import Failure, first_use_summary

    if args.mask is not None and len(args.images) != 1:
        print("--mask goes with a single image (use `python -m seggallery eval` for folders)", file=sys.stderr)
        return 2
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

        results = engine.run_many(image.pixels, args.models, on_progress=progress, crf=CRF_DEFAULT if args.crf else None)
        truth = None
        if args.mask is not None:
            try:
                truth = load_mask(args.mask, label_set(args.mask_labels or get_spec(args.models[0]).labels),
                                  image.original_size, image.pixels.shape[:2])
            except (ImageError, CatalogError) as error:
                print(f"{args.mask}: {error}", file=sys.stderr)
                return 2
        report = write_outputs(out_dir, image, results, image_name=image_path.name, opacity=args.opacity, truth=truth)
        for result in results:
            if isinstance(result, Failure):
                failures += 1
                print(f"{result.spec.id}: FAILED: {result.reason}\n  fix: {result.fix}", file=sys.stderr)
            else:
                timing = result.timings_ms
                scored = next(m for m in report["models"] if m["id"] == result.spec.id).get("ground_truth", {})
                score = f", mIoU {scored['mean_iou']:.3f} vs the mask" if scored.get("mean_iou") is not None else ""
                print(f"{result.spec.id}: {timing['total']:.0f} ms on {result.device} ({result.precision})"
                      + (f", {first_use_summary(timing)}" if result.cold else "")
                      + (f", CRF {timing['crf']:.0f} ms" if "crf" in timing else "") + score)
        print(f"wrote {out_dir}")
    return 1 if failures else 0
