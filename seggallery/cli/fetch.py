"""`fetch IDS|--all`: download weights without loading them."""

from __future__ import annotations

import sys

from . import model_ids


def add_arguments(parser) -> None:
    parser.add_argument("ids", nargs="*", type=model_ids, help="catalog ids (comma or space separated)")
    parser.add_argument("--all", action="store_true", help="every catalog model")


def run(args) -> int:
    from ..backends import fetch, is_cached
    from ..catalog import catalog, get_spec

    ids = list(catalog()) if args.all else [i for group in args.ids for i in group]
    if not ids:
        print("name model ids or --all (see `python -m seggallery models`)", file=sys.stderr)
        return 2
    failed = 0
    for model_id in ids:
        spec = get_spec(model_id)
        if is_cached(spec):
            print(f"{model_id}: already cached")
            continue
        print(f"{model_id}: downloading ...", flush=True)
        try:
            fetch(spec)
        except Exception as error:  # noqa: BLE001 - report and go on with the next model
            failed += 1
            print(f"{model_id}: FAILED: {error}", file=sys.stderr)
        else:
            print(f"{model_id}: done")
    return 1 if failed else 0
