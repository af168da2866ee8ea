"""`models [--json]`: the catalog, with the local cache status of each checkpoint."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    output.add_argument("--markdown", action="store_true", help="print the README's model table")


def run(args) -> int:
    from ..backends import is_cached
    from ..catalog import catalog
    from ..docs import model_table_markdown

    if args.markdown:
        print(model_table_markdown())
        return 0
    rows = []
    for spec in catalog().values():
        rows.append({
            "id": spec.id, "name": spec.name, "family": spec.family, "backend": spec.backend,
            "labels": spec.labels, "cached": is_cached(spec), "license": spec.license,
            "metrics": list(spec.metrics),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["id", "family", "backend", "labels", "cached"]
    table = [[str(row[c]) if c != "cached" else ("yes" if row[c] else "no") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    return 0
