"""The Ray actors that score (image, model) pairs: one per model per slot, each loading its model once.

A worker whose process dies (killed, out of memory, its machine lost) is started again by Ray up to RESTARTS
times, and the calls it had in flight are run again there; stream.py gives a pair to another worker of the same
model when one is gone for good. Each call runs seggallery.evidence.evaluation.score_pair, the function the
single-machine run calls.
"""

from __future__ import annotations

import os

import numpy as np
import ray
import torch

from ..catalog import get_spec, label_set
from ..evidence.evaluation import PairFailure, score_pair
from ..evidence.taxonomy import shared_space
from ..runtime.crf import CrfParams
from ..runtime.devices import pick_device
from ..runtime.engine import Engine
from .connect import ClusterError, Slots

RESTARTS = 3  # times Ray starts a dead worker again; also how often a call it had in flight is retried
START_TIMEOUT_S = 600  # the workers must have started by then (a cluster may have to add machines first)


class PairWorker:
    """One model on one slot: scores the pairs it is sent with its own engine (the model is loaded on the
    first pair and kept)."""

    def __init__(self, model_id: str, labels_id: str, device: str, threads: int, crf: CrfParams | None = None):
        torch.set_num_threads(threads)
        self.model_id, self.crf = model_id, crf
        self.labels = label_set(labels_id)
        self.space = shared_space([labels_id, get_spec(model_id).labels])
        self.engine = Engine(device=pick_device(device))

    def pid(self) -> int:
        """The worker's process id (a test kills it to check that the run survives)."""
        return os.getpid()

    def score(self, image_name: str, pixels: np.ndarray, truth: np.ndarray) -> dict | PairFailure:
        # Arrays from Ray's object store are read-only views of shared memory: the models get writable copies,
        # as they do on one machine.
        return score_pair(self.engine, np.array(pixels), np.array(truth), image_name, self.model_id, self.space,
                          self.labels, self.crf)


RemotePairWorker = ray.remote(max_restarts=RESTARTS, max_task_retries=RESTARTS)(PairWorker)


class WorkerPools:
    """The workers of every model, started together; `live(model)` are those not lost for good."""

    def __init__(self, model_ids: list[str], labels_id: str, slots: Slots, crf: CrfParams | None = None):
        self.slots, self.crf = slots, crf  # the dense CRF every worker refines with, or None
        options = {**slots.resources, "max_concurrency": 1}
        self.workers = {
            model_id: [RemotePairWorker.options(**options).remote(model_id, labels_id, slots.device, slots.threads, crf)
                       for _ in range(slots.per_model)]
            for model_id in model_ids}
        self._lost: set = set()
        everyone = [worker for pool in self.workers.values() for worker in pool]
        try:
            pids = ray.get([worker.pid.remote() for worker in everyone], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self.stop()
            raise ClusterError(f"{len(everyone)} Ray workers did not start within {START_TIMEOUT_S} s; the cluster has "
                               f"{ray.cluster_resources()} and each worker asks for {slots.resources}") from None
        self.started_pids = dict(zip(everyone, pids))

    def live(self, model_id: str) -> list:
        return [worker for worker in self.workers[model_id] if worker not in self._lost]

    def lose(self, worker) -> None:
        """A worker Ray will not start again: no more pairs go to it."""
        self._lost.add(worker)

    def stop(self) -> None:
        for pool in self.workers.values():
            for worker in pool:
                ray.kill(worker, no_restart=True)
