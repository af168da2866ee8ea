"""`python -m seggallery.gpucheck.fakes --json PATH MODEL...`: the check's checkpoints, in the real formats.

Run by the check as a process of its own, in its hermetic environment (environment.hermetic_env), so that
the tests' fakes (tests/fakes, importable there) write into the check's caches. Per model the JSON says
'written', 'cached' (already there, e.g. real weights) or 'skipped' with the reason: its backend cannot
import here (a library that is not installed), or its real weights are not at hand (ENet's come from the
shared data folder: native entries load only the published, hash-checked file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def prepare(model_id: str) -> dict:
    from seggallery import backends
    from seggallery.catalog import get_spec

    spec = get_spec(model_id)
    try:
        backends.backend(spec)
    except ImportError as error:
        return {"status": "skipped", "reason": f"its backend ({spec.backend}) cannot import here: {error}"}
    if backends.is_cached(spec):
        return {"status": "cached"}
    if spec.backend == "native":
        from fakes.native import SHARED_FILES

        shared = os.environ.get("SEGGALLERY_SHARED")
        if not shared or not (Path(shared) / SHARED_FILES[model_id]).is_file():
            return {"status": "skipped", "reason": f"its real weights are not here: {SHARED_FILES[model_id]} in the "
                                                   f"shared data folder ({shared or 'none found'}; see SEGGALLERY_SHARED)"}
    from fakes import install

    install(model_id)
    return {"status": "written"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seggallery.gpucheck.fakes")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args(argv)
    results = {}
    for model_id in args.models:
        start = time.perf_counter()
        try:
            result = prepare(model_id)
        except Exception as error:  # noqa: BLE001 - one model that cannot be written is a line, not the end
            result = {"status": "failed", "reason": f"{type(error).__name__}: {str(error)[:300]}"}
        results[model_id] = {**result, "seconds": round(time.perf_counter() - start, 2)}
        print(f"{model_id}: {result['status']}{' (' + result['reason'] + ')' if 'reason' in result else ''}", flush=True)
        args.json.write_text(json.dumps(results, indent=2))  # after every model: a timeout keeps what was done
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
