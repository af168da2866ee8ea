"""Join a Ray cluster (`auto`, an address) or start a local one, and plan the worker slots on it."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import ray

import seggallery

LOCAL = "local"
# The settings that decide a model's numbers (seggallery.runtime.speed): remote workers get the driver's, so
# that they run the models as the single-machine run would.
RESULT_SETTINGS = ("SEGGALLERY_OPTIMIZE", "SEGGALLERY_PRECISION", "SEGGALLERY_CHANNELS_LAST", "SEGGALLERY_COMPILE",
                   "SEGGALLERY_PRECISION_CHECK", "SEGGALLERY_FAST_CONVOLUTIONS", "SEGGALLERY_TIME_CHOICES")


class ClusterError(RuntimeError):
    """The cluster cannot be reached or cannot hold the workers; the message says why."""


def connect(address: str, cpus: int | None = None) -> bool:
    """Join the cluster at `address` ('auto': the one `ray start` runs here) or start a local one with `cpus`
    CPU slots (default: every core). Already connected (a test's cluster, a notebook's): use that one.
    Returns True when this call connected, so that `disconnect` leaves alone what it did not start."""
    if address not in (LOCAL, "auto"):
        _check_answers(address)
    if ray.is_initialized():
        return False
    env_vars = {name: os.environ[name] for name in RESULT_SETTINGS if name in os.environ}
    try:
        if address == LOCAL:
            ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING,
                     runtime_env={"env_vars": env_vars})
        else:  # other machines: ship this package's code with the job (their Python needs requirements.txt)
            ray.init(address=address, logging_level=logging.WARNING,
                     runtime_env={"py_modules": [seggallery], "env_vars": env_vars, "excludes": ["__pycache__"]})
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {error}") from None
    return True


def _check_answers(address: str, timeout_s: float = 10.0) -> None:
    """Fail at once when nothing listens at HOST:PORT (ray.init would keep retrying for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray {address!r}: give local, auto or a cluster's HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {error}") from None


def disconnect(connected: bool) -> None:
    if connected:
        ray.shutdown()


@dataclass(frozen=True)
class Slots:
    """How many workers each model gets and what each one asks the cluster for."""

    per_model: int
    resources: dict  # ray actor options: num_cpus, num_gpus
    device: str  # what the workers' engines run on: "cpu" or "cuda"
    threads: int  # torch threads per worker

    def describe(self, models: int) -> str:
        kind = "GPU" if self.device == "cuda" else "CPU"
        return f"{self.per_model * models} Ray worker(s): {self.per_model} per model, one per {kind} slot and model"


def plan_slots(models: int, device: str | None, workers: int | None) -> Slots:
    """One worker per model per GPU of the cluster (device auto or cuda), else per CPU; `workers` slots instead
    when given. The models of one slot share its GPU or CPU: each worker asks for its share."""
    if models < 1:
        raise ClusterError("no model to run")
    if workers is not None and workers < 1:
        raise ClusterError(f"--workers must be at least 1, not {workers}")
    available = ray.cluster_resources()
    gpus, cpus = float(available.get("GPU", 0)), float(available.get("CPU", 0))
    device = (device or "auto").lower()
    if device.startswith("cuda") and gpus == 0:
        raise ClusterError(f"--device {device} was asked for but the Ray cluster has no GPU")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ClusterError(f"--device {device}: Ray workers run on cpu or cuda")
    on_gpu = gpus > 0 and device != "cpu"
    capacity = gpus if on_gpu else cpus
    kind = "GPU" if on_gpu else "CPU"
    if capacity < 1:
        raise ClusterError(f"the Ray cluster has no whole {kind} to run workers on ({capacity:g})")
    if workers is not None and workers > capacity:
        raise ClusterError(f"{workers} workers per model do not fit: the Ray cluster has {capacity:g} {kind}s, "
                           "and each worker slot is one of them")
    per_model = workers or int(capacity)
    share = int(capacity / (per_model * models) * 10_000) / 10_000  # Ray counts resources in 1/10,000ths
    if on_gpu:
        return Slots(per_model, {"num_gpus": share, "num_cpus": 0}, "cuda", 1)
    return Slots(per_model, {"num_cpus": share}, "cpu", max(1, int(share)))
