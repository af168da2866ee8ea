"""The Ray run: photos streamed to the workers, each finished pair written by this process into progress.jsonl.

This process reads each photo and its mask once (evaluation.load_pair, as the single-machine run does), puts
them into Ray's object store, and sends them to one worker of every model that still needs that pair; a
bounded number of photos are open at a time, so memory stays flat however large the folder. Results are
written in the order they come back through evaluation.EvaluationRun, the single-machine run's bookkeeping,
so the folder resumes either way and the summary is the same.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ray

from ..evidence.evaluation import EvaluationRun, PairFailure, Pairing, load_pair
from ..images import ImageError
from .workers import RESTARTS, WorkerPools

IN_FLIGHT_PER_WORKER = 2  # one running, one waiting beside it, so that a worker never waits for its next photo
OPEN_PHOTOS_PER_WORKER = 2  # photos held in the object store at once, per worker of the cluster


@dataclass
class OpenPhoto:
    pixels: ray.ObjectRef
    truth: ray.ObjectRef
    waiting_for: set[str] = field(default_factory=set)  # models whose result for it has not come back


@dataclass
class Call:
    worker: object
    model_id: str
    image: str


class Stream:
    """Feeds every model's workers and hands each result to the run."""

    def __init__(self, run: EvaluationRun, pools: WorkerPools, on_progress: Callable[[int, int, str], None] | None):
        self.run, self.pools, self.on_progress = run, pools, on_progress
        self.photos = deque(run.pairing.pairs)
        self.open: dict[str, OpenPhoto] = {}
        self.queues: dict[str, deque[str]] = {m: deque() for m in run.comparable}
        self.in_flight: dict[ray.ObjectRef, Call] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        workers = sum(len(pool) for pool in pools.workers.values())
        self.max_open = max(2, OPEN_PHOTOS_PER_WORKER * workers)
        self.total = len(run.pairing.pairs) * len(run.comparable)
        self.finished = sum(1 for image, _ in run.pairing.pairs for m in run.comparable if (image.name, m) in run.done)

    def go(self) -> None:
        while True:
            self._open_photos()
            self._send()
            if not self.in_flight:
                if self.photos:
                    continue  # every photo opened so far was skipped; open more
                return
            ready, _ = ray.wait(list(self.in_flight), num_returns=1)
            for ref in ready:
                self._receive(ref, self.in_flight.pop(ref))

    def _open_photos(self) -> None:
        while self.photos and len(self.open) < self.max_open:
            image_path, mask_path = self.photos.popleft()
            todo = self.run.todo(image_path.name)
            left_out = [m for m in self.run.failed_models if (image_path.name, m) not in self.run.done]
            if left_out:  # a model that failed before any success is not run on later photos
                self._advance(len(left_out), image_path.name)
            if not todo:
                continue
            try:
                pixels, truth = load_pair(image_path, mask_path, self.run.labels)
            except ImageError as error:
                self.run.skip_image(image_path.name, str(error))
                self._advance(len(todo), image_path.name)
                continue
            self.open[image_path.name] = OpenPhoto(ray.put(pixels), ray.put(truth), set(todo))
            for model_id in todo:
                self.queues[model_id].append(image_path.name)

    def _send(self) -> None:
        busy: dict = {}
        for call in self.in_flight.values():
            busy[call.worker] = busy.get(call.worker, 0) + 1
        for model_id, queue in self.queues.items():
            if not self.pools.live(model_id):
                while queue:
                    image = queue.popleft()
                    self.run.add(PairFailure(image, model_id, "every Ray worker of this model was lost"))
                    self._done_with(image, model_id)
            for worker in self.pools.live(model_id):
                while queue and busy.get(worker, 0) < IN_FLIGHT_PER_WORKER:
                    image = queue.popleft()
                    photo = self.open[image]
                    self.in_flight[worker.score.remote(image, photo.pixels, photo.truth)] = Call(worker, model_id, image)
                    busy[worker] = busy.get(worker, 0) + 1

    def _receive(self, ref: ray.ObjectRef, call: Call) -> None:
        pair = (call.image, call.model_id)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayActorError as error:  # the worker is gone: the pair goes to another one
            if isinstance(error, ray.exceptions.ActorDiedError):
                self.pools.lose(call.worker)
            self.attempts[pair] = self.attempts.get(pair, 0) + 1
            if self.attempts[pair] <= RESTARTS:  # _send fails it when no worker of its model is left
                self.queues[call.model_id].appendleft(call.image)
                return
            outcome = PairFailure(call.image, call.model_id, f"the Ray workers running it were lost {RESTARTS + 1} times ({error})")
        except ray.exceptions.RayTaskError as error:
            outcome = PairFailure(call.image, call.model_id, f"the Ray worker failed: {error.cause!r}")
        self.run.add(outcome)
        self._done_with(call.image, call.model_id)
        if call.model_id in self.run.failed_models:  # as on one machine: a model failing before any success is left out
            for image in self.queues[call.model_id]:
                self._done_with(image, call.model_id)
            self.queues[call.model_id].clear()

    def _done_with(self, image: str, model_id: str) -> None:
        photo = self.open[image]
        photo.waiting_for.discard(model_id)
        if not photo.waiting_for:
            del self.open[image]
        self._advance(1, f"{image} ({model_id})")

    def _advance(self, pairs: int, message: str) -> None:
        self.finished += pairs
        if self.on_progress is not None:
            self.on_progress(self.finished, self.total, message)


def evaluate_on_ray(pairing: Pairing, model_ids: list[str], labels_id: str, out_dir: Path, pools: WorkerPools,
                    on_progress: Callable[[int, int, str], None] | None = None, source: str = "") -> dict:
    """evaluation.evaluate on the cluster's workers: every pair not yet in <out_dir>/progress.jsonl, then the
    summary. on_progress(done, total, message) counts (image, model) pairs, earlier runs' included."""
    run = EvaluationRun(pairing, model_ids, labels_id, out_dir, source, pools.crf)
    Stream(run, pools, on_progress).go()
    return run.summary()
