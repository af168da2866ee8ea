"""`eval --ray`: the same evaluation on a local Ray cluster of several worker processes, agreeing exactly with the
single-machine run, resuming its folder, and surviving a worker process killed in the middle of a run.

One local cluster (2 CPU slots, so 2 workers per model: 4 worker processes for ENet with its real weights and a
random-weight VOC model) serves the whole module. Ray is optional for users but a test dependency: without it
these tests skip here and fail under CI=true.
"""

from __future__ import annotations

import importlib.util
import os
import signal

import pytest
from conftest import EVAL_IMAGES
from eval_runs import (
    CountingRuns,
    eval_args,
    progress_records,
    read_csv,
    without_timings,
)

from seggallery.cli import main
from seggallery.evidence.evaluation import default_labels, pair_folders

IMAGES = EVAL_IMAGES
CLUSTER_CPUS = 2

pytestmark = pytest.mark.usefixtures("one_thread")


def require_ray():
    if importlib.util.find_spec("ray") is None:
        message = "ray is not installed (pip install -r requirements-ray.txt; requirements-test.txt has it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    import ray

    return ray


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for this module; `eval --ray local` joins it instead of starting its own."""
    ray = require_ray()
    ray.init(num_cpus=CLUSTER_CPUS, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def on_ray(cluster, eval_camvid, eval_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-ray")
    assert main(eval_args(eval_camvid, out, eval_models, "--ray", "local")) == 0
    return out


def assert_pairs_unique_and_complete(out, models: str) -> None:
    pairs = [(r["image"], r["model"]) for r in progress_records(out)]
    assert len(pairs) == len(set(pairs)) == IMAGES * len(models.split(","))


def test_ray_agrees_exactly_with_one_machine(eval_one_machine, on_ray, eval_models):
    assert_pairs_unique_and_complete(on_ray, eval_models)
    ray_outputs, local_outputs = without_timings(on_ray), without_timings(eval_one_machine)
    assert ray_outputs == local_outputs
    enet = ray_outputs["results.json"]["models"]["enet_camvid"]
    assert enet["images"] == IMAGES and 0.4 < enet["mean_iou"] < 0.8  # real weights: a real score, not zeros
    assert len(ray_outputs["per_image.csv"]) == 2 * IMAGES
    assert read_csv(on_ray / "leaderboard.csv") == read_csv(eval_one_machine / "leaderboard.csv")


def test_a_killed_worker_process_loses_nothing_and_counts_nothing_twice(cluster, eval_camvid, eval_models, eval_one_machine,
                                                                       tmp_path):
    from seggallery.cluster.connect import plan_slots
    from seggallery.cluster.stream import evaluate_on_ray
    from seggallery.cluster.workers import WorkerPools

    model_ids = eval_models.split(",")
    pairing = pair_folders(eval_camvid / "images", eval_camvid / "masks")
    pools = WorkerPools(model_ids, default_labels(["enet_camvid"]), plan_slots(len(model_ids), "cpu", None))
    try:
        assert len(set(pools.started_pids.values())) == CLUSTER_CPUS * len(model_ids)  # 4 worker processes
        victim = pools.workers["enet_camvid"][0]
        killed: list[tuple[int, int]] = []

        def kill_once(done: int, total: int, name: str) -> None:
            # After the first result every worker still has a pair in flight (each is sent 2 at a time and
            # ENet's 5 photos go 2 + 2 to its workers), so the victim dies in the middle of its work.
            if not killed:
                os.kill(pools.started_pids[victim], signal.SIGKILL)
                killed.append((done, total))

        source = f"images {eval_camvid / 'images'}, masks {eval_camvid / 'masks'}"
        evaluate_on_ray(pairing, model_ids, "camvid11", tmp_path, pools, kill_once, source=source)
        assert killed and killed[0][0] < killed[0][1]
        assert cluster.get(victim.pid.remote()) != pools.started_pids[victim]  # Ray started it again
    finally:
        pools.stop()
    assert_pairs_unique_and_complete(tmp_path, eval_models)
    assert without_timings(tmp_path) == without_timings(eval_one_machine)


def test_a_run_cut_short_on_one_machine_resumes_on_ray(cluster, eval_camvid, eval_models, eval_one_machine, tmp_path,
                                                       monkeypatch):
    CountingRuns(monkeypatch, interrupt_at=2 * 2 + 1)  # Ctrl+C during image 3
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 130
    before = (tmp_path / "progress.jsonl").read_text()
    assert len(before.splitlines()) == 4
    monkeypatch.undo()
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray", "local")) == 0
    after = (tmp_path / "progress.jsonl").read_text()
    assert after.startswith(before)  # the finished pairs were kept, not redone
    assert_pairs_unique_and_complete(tmp_path, eval_models)
    assert without_timings(tmp_path) == without_timings(eval_one_machine)
    counting = CountingRuns(monkeypatch)  # finished on Ray: one machine has nothing left to do
    assert main(eval_args(eval_camvid, tmp_path, eval_models)) == 0
    assert counting.calls == [] and (tmp_path / "progress.jsonl").read_text() == after


def test_clear_errors(cluster, eval_camvid, eval_models, tmp_path, capsys, monkeypatch):
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray", "--workers", "0")) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray", "--device", "cuda")) == 2
    assert "has no GPU" in capsys.readouterr().err
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray", "--workers", "64")) == 2
    assert "do not fit" in capsys.readouterr().err
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray", "127.0.0.1:1")) == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:1'" in capsys.readouterr().err
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray", "nonsense")) == 2
    assert "give local, auto or a cluster's HOST:PORT" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert main(eval_args(eval_camvid, tmp_path, eval_models, "--ray")) == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err
