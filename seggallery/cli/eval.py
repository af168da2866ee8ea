"""`eval --images DIR --masks DIR (--models IDS | --catalog [all|own]) [--labels SET] [--out DIR] [--crf] [--ray [ADDRESS]]`:
scores over a folder, resumable, on this machine or on a Ray cluster (the same progress.jsonl either way), with a
table and chart of the measured mIoU against the published one."""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

from . import model_ids


def add_arguments(parser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of images")
    parser.add_argument("--masks", required=True, type=Path,
                        help="folder of ground-truth masks, matched to images by file name (index, palette or colour PNGs)")
    parser.add_argument("--models", type=model_ids, default=None, help="catalog ids, e.g. enet_camvid")
    parser.add_argument("--catalog", nargs="?", const="all", choices=("all", "own"), default=None,
                        help="instead of --models: every catalog model that can be scored against --labels masks; own: "
                             "only those trained on that label set, all (the default): also those that share classes "
                             "with it through the coarse taxonomy (scored in coarse classes, marked so)")
    parser.add_argument("--split", default=None,
                        help="name of the data in the leaderboard table (default: the images folder, e.g. camvid/test)")
    parser.add_argument("--labels", default=None, help="label set of the masks (default: the models' label set, when they share one)")
    parser.add_argument("--out", type=Path, default=Path("eval-out"),
                        help="output folder (default ./eval-out); rerunning with the same folder resumes")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="local|auto|ADDRESS",
                        help="run on a Ray cluster (pip install -r requirements-ray.txt): local (the default) starts "
                             "one on this machine, auto joins the one `ray start` runs here, or a cluster's address")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --ray: worker slots per model (default: one per GPU of the cluster, else per CPU)")
    parser.add_argument("--crf", action="store_true",
                        help="refine every model's probabilities with the dense CRF (DeepLab v2's parameters) before scoring")


def run(args) -> int:
    from ..catalog import CatalogError, label_set
    from ..evidence.evaluation import EvaluationError, default_labels, evaluate, pair_folders
    from ..evidence.leaderboard import leaderboard_rows
    from ..runtime.crf import DEFAULT as CRF_DEFAULT
    from ..runtime.devices import pick_device
    from ..runtime.engine import Engine

    try:
        args.models = _pick_models(args)
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
    source = f"images {args.images.resolve()}, masks {args.masks.resolve()}"
    try:
        crf = CRF_DEFAULT if args.crf else None
        if args.ray is not None:
            summary = _evaluate_on_ray(args, pairing, labels_id, source, crf)
        else:
            engine = Engine(device=pick_device(args.device))
            with _progress_bar(len(pairing.pairs), "image") as on_progress:
                summary = evaluate(pairing, args.models, labels_id, args.out, engine, on_progress, source=source, crf=crf)
    except EvaluationError as error:
        print(f"eval: {error}", file=sys.stderr)
        return 2
    if summary is None:
        return 2
    failures = _print_summary(summary)
    rows = leaderboard_rows(summary, args.split or f"{args.images.resolve().parent.name}/{args.images.resolve().name}")
    _write_leaderboard(args.out, rows)
    print(f"wrote {args.out}/results.json, results.csv, per_class_iou.csv, per_image.csv, "
          "leaderboard.csv, leaderboard.md, leaderboard.png")
    return 1 if failures else 0


def _print_summary(summary: dict) -> int:
    """Each model's scores, or why it has none, and the skipped images; returns how many models failed."""
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
    return failures


def _pick_models(args) -> list[str]:
    """--models as given, or with --catalog every catalog model that can be scored against --labels masks."""
    from ..catalog import get_spec, label_set
    from ..evidence.evaluation import EvaluationError
    from ..evidence.leaderboard import catalog_models

    if args.catalog is None:
        if not args.models:
            raise EvaluationError("say which models to run: --models IDS, or --catalog with --labels")
        return args.models
    if args.models:
        raise EvaluationError("--models and --catalog pick the models two ways: give one of them")
    if not args.labels:
        raise EvaluationError("--catalog needs --labels: the label set of the masks, e.g. camvid11")
    label_set(args.labels)
    models = catalog_models(args.labels)
    if args.catalog == "own":
        models = [m for m in models if get_spec(m).labels == args.labels]
    if not models:
        raise EvaluationError(f"no catalog model can be scored against {args.labels} masks" +
                              (" in its own classes (try --catalog all)" if args.catalog == "own" else ""))
    return models


def _write_leaderboard(out: Path, rows: list[dict]) -> None:
    """leaderboard.csv, .md and the chart .png: the measured mIoU beside the published one."""
    from ..evidence.leaderboard import write_leaderboard
    from ..pictures.charts import figure_png, measured_published_chart

    write_leaderboard(out, rows)
    chart = measured_published_chart(rows)
    if chart is not None:
        (out / "leaderboard.png").write_bytes(figure_png(chart))


def _evaluate_on_ray(args, pairing, labels_id: str, source: str, crf=None) -> dict | None:
    """The same evaluation on a Ray cluster's workers; None (after saying why) when the cluster cannot run it."""
    if importlib.util.find_spec("ray") is None:
        print("eval: --ray needs Ray, an optional dependency: pip install -r requirements-ray.txt", file=sys.stderr)
        return None
    from ..cluster.connect import ClusterError, connect, disconnect, plan_slots
    from ..cluster.stream import evaluate_on_ray
    from ..cluster.workers import WorkerPools

    connected = False
    try:
        connected = connect(args.ray, args.workers)
        slots = plan_slots(len(args.models), args.device, args.workers)
        print(f"Ray: {slots.describe(len(args.models))}", file=sys.stderr)
        pools = WorkerPools(args.models, labels_id, slots, crf)
        try:
            with _progress_bar(len(pairing.pairs) * len(args.models), "pair") as on_progress:
                return evaluate_on_ray(pairing, args.models, labels_id, args.out, pools, on_progress, source=source)
        finally:
            pools.stop()
    except ClusterError as error:
        print(f"eval: {error}", file=sys.stderr)
        return None
    finally:
        disconnect(connected)


@contextmanager
def _progress_bar(total: int, unit: str):
    """A progress bar on stderr; yields the on_progress(done, total, name) callback that moves it."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc="evaluating", file=sys.stderr, disable=None)

    def on_progress(done: int, total: int, name: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(name, refresh=True)

    try:
        yield on_progress
    finally:
        bar.close()
