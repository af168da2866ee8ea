"""The package's shape: no import cycle anywhere, every backend answers the protocol, every model reads its scores."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seggallery import backends
from seggallery.backends.base import Backend, HubFile, UrlFile, WeightFile
from seggallery.catalog import BACKENDS, catalog

PACKAGE = Path(__file__).resolve().parents[1] / "seggallery"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every seggallery module `name` imports, at top level or inside functions ('from . import x' counts
    as importing module x when x is one)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                found.add(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_anywhere_in_the_package():
    known = module_names()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert len(graph) > 60 and "seggallery.runtime.engine" in graph["seggallery.ui"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_cluster_package_imports_ray():
    """Ray is optional (requirements-ray.txt): seggallery.cluster imports it, nothing else does, at any level."""
    importers = set()
    for name, path in module_names().items():
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(module == "ray" or module.startswith("ray.") for module in modules):
                importers.add(name)
    assert importers and all(name.startswith("seggallery.cluster.") for name in importers), sorted(importers)


def test_the_app_and_the_eval_command_run_without_ray():
    """Importing the app (which builds the whole UI) or the CLI imports no Ray module, even where Ray is installed."""
    check = ("import sys, app, seggallery.cli; seggallery.cli.build_parser(); "
             "loaded = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')); "
             "assert not loaded, loaded; assert 'seggallery.ui.evaluate' in sys.modules")
    done = subprocess.run([sys.executable, "-c", check], cwd=PACKAGE.parent, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_few_modules_loose_at_the_top():
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(loose) <= 8, loose


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_answers_the_protocol(name):
    module = importlib.import_module(f"seggallery.backends.{name}")
    assert isinstance(module, Backend)
    specs = [spec for spec in catalog().values() if spec.backend == name]
    assert specs
    for spec in specs:
        files = module.files(spec)
        assert files and all(isinstance(file, WeightFile) for file in files)
        for file in files:
            for origin in file.origins:
                if isinstance(origin, HubFile):
                    assert origin.repo.count("/") == 1 and origin.revision and origin.filename
                else:
                    assert isinstance(origin, UrlFile) and origin.url.startswith("https://")
                    # no published hash anywhere: allowed only when the entry says so, as unpinned Hub revisions are
                    assert (origin.sha256 and len(origin.sha256) >= 8) or spec.source.get("unpinned_reason"), (
                        f"{spec.id}: {origin.url} has no hash to check and no unpinned_reason")
        assert module.describe_source(spec) in backends.describe_source(spec)


def test_the_hub_allowlist_is_every_hub_file_of_the_catalog():
    named = {(origin.repo, origin.revision, origin.filename) for origin in backends.catalog_hub_files()}
    for spec in catalog().values():
        source = spec.source
        if "repo" in source:
            for name in source.get("files", ()):
                assert (source["repo"], source["revision"], name) in named
    assert set(backends.hub_repos()) == {repo for repo, _, _ in named} - {
        o.repo for o in backends.catalog_hub_files() if o.repo_type != "model"}


class _Queries:
    class_queries_logits = torch.zeros(1, 3, 5)
    masks_queries_logits = torch.zeros(1, 3, 4, 6)


def test_every_segmenter_reads_its_class_scores():
    """class_scores gives N x C x h x w for each backend's raw output shape, so that uncertainty, bench and
    the probes need not know the backend (mmseg's (scores, input size) tuple used to give no maps)."""
    from seggallery.backends.mmseg import MmsegSegmenter
    from seggallery.backends.transformers import TransformersSegmenter
    from seggallery.runtime.segmenter import Segmenter

    scores = torch.randn(1, 21, 8, 10)
    assert Segmenter.class_scores(None, scores) is scores
    assert MmsegSegmenter.class_scores(None, (scores, (64, 80))) is scores

    class Semantic:
        logits = scores

    assert TransformersSegmenter.class_scores(None, Semantic()) is scores
    universal = TransformersSegmenter.class_scores(None, _Queries())
    assert universal.shape == (1, 4, 4, 6)  # 5 classes less "no object"
    assert torch.allclose(universal.exp().sum(1), torch.ones(1, 4, 6))
