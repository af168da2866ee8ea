"""`pin [--write]`: resolve Hub entries that track a branch to the commit SHA the branch points at now."""

from __future__ import annotations

import re
import sys

_SHA = re.compile(r"^[0-9a-f]{40}$")


def add_arguments(parser) -> None:
    parser.add_argument("--write", action="store_true", help="write the SHAs into the catalog files")


def run(args) -> int:
    from huggingface_hub import HfApi

    from ..backends import files
    from ..backends.base import hub_files
    from ..catalog import CATALOG_DIR, catalog

    unpinned = []  # (entry, repo, branch, repo type) for every Hub repo an entry reads at a branch
    for spec in catalog().values():
        for repo, revision, repo_type in dict.fromkeys((o.repo, o.revision, o.repo_type) for o in hub_files(files(spec))):
            if not _SHA.match(revision):
                unpinned.append((spec, repo, revision, repo_type))
    if not unpinned:
        print("every Hub entry is pinned to a commit SHA")
        return 0
    api, failed = HfApi(), 0
    for spec, repo, branch, repo_type in unpinned:
        try:
            sha = api.repo_info(repo, revision=branch, repo_type=repo_type).sha
        except Exception as error:  # noqa: BLE001
            print(f"{spec.id}: cannot reach {repo}: {error}", file=sys.stderr)
            failed += 1
            continue
        print(f"{spec.id}: {repo}@{branch} = {sha}")
        if args.write:
            path = CATALOG_DIR / "models" / f"{spec.backend}.toml"
            text = path.read_text()
            pattern = re.compile(r'(repo = "' + re.escape(repo) + r'", revision = )"' + re.escape(branch) + r'", unpinned_reason = "[^"]*"')
            path.write_text(pattern.sub(rf'\1"{sha}"', text, count=1))
    return 1 if failed else 0
