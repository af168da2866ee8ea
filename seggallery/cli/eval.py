"""`eval --images DIR --masks DIR --models IDS [--labels SET] [--out DIR] [--crf]`: scores over a folder, resumable."""

from __future__ import annotations

import sys
from pathlib import Path

from . import model_ids


def add_arguments(parser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of images")
    parser.add_argument("--masks", required=True, type=Path,
                        help="folder of ground-truth masks, matched to images by file name (index, palette or colour PNGs)")
    parser.add_argument("--models", required=True, type=model_ids, help="catalog ids, e.g. enet_camvid")
    parser.add_argument("--labels", default=None, help="label set of the masks (default: the models' label set, when they share one)")
    parser.add_argument("--out", type=Path, default=Path("eval-out"),
                        help="output folder (default ./eval-out); rerunning with the same folder resumes")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument("--crf", action="store_true",
                        help="refine every model's probabilities with the dense CRF (DeepLab v2's parameters) before scoring")


def run(args) -> int:
    from ..catalog import CatalogError, label_set
    from ..evidence.evaluation import (
        EvaluationError,
        default_labels,
        evaluate,
        pair_folders,
    )
    from ..runtime.crf import DEFAULT as CRF_DEFAULT
    from ..runtime.devices import pick_device
    from ..runtime.engine import Engine

    try:
        labels_id = args.labels or default_labels(args.models)
        label_set(labels_id)
        pairing = pair_folders(args.images, args.masks)
    except (EvaluationError, CatalogError) as error:
        print(f"eval: {error}", file=sys.stderr)
        return 2
    if args.limit is not None:
        pairing.pairs = pairing.pairs[: args.limit]
    if not pairing.pairs:
        print(f"eval: no image in {args.images} has a mask of the same name in {args.masks}", file=sys.stderr)
        return 2
    if pairing.images_without_mask:
        print(f"{len(pairing.images_without_mask)} image(s) have no mask and are left out, e.g. {pairing.images_without_mask[0]}")
    engine = Engine(device=pick_device(args.device))
    bar = _progress_bar(len(pairing.pairs))

    def on_progress(done: int, total: int, name: str) -> None:
        bar.n = done
        bar.set_postfix_str(name, refresh=True)

    try:
        source = f"images {args.images.resolve()}, masks {args.masks.resolve()}"
        summary = evaluate(pairing, args.models, labels_id, args.out, engine, on_progress, source=source,
                           crf=CRF_DEFAULT if args.crf else None)
    except EvaluationError as error:
        print(f"eval: {error}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    failures = 0
    for model_id, entry in summary["models"].items():
        if "error" in entry:
            failures += 1
            print(f"{model_id}: FAILED: {entry['error']}", file=sys.stderr)
        if not entry.get("comparable", False):
            print(f"{model_id}: not comparable ({entry.get('reason', 'no results')})")
            continue
        if "mean_iou" in entry:
            print(f"{model_id}: mIoU {entry['mean_iou']:.4f}  pixel accuracy {entry['pixel_accuracy']:.4f}  "
                  f"over {entry['images']} images ({entry['space']})")
    for name, reason in summary["skipped_images"].items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(f"wrote {args.out}/results.json, results.csv, per_class_iou.csv, per_image.csv")
    return 1 if failures else 0


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="image", desc="evaluating", file=sys.stderr, disable=None)
