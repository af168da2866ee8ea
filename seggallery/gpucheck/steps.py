"""One step of the check: a command in a process of its own, its output in a log, under a time limit.

A process per step keeps the steps apart: a step that crashes, hangs in a compiler or leaves the GPU in an
error state costs only itself, and its log says what happened. A step past its limit is stopped with its
whole process group (the served benchmark starts the app's client as a child).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .environment import REPO


@dataclass
class Step:
    name: str
    command: list[str]
    limit_s: int
    env: dict[str, str] = field(default_factory=dict)  # on top of the check's environment


@dataclass
class Outcome:
    name: str
    status: str  # ok | failed | timed out | not run
    seconds: float = 0.0
    returncode: int | None = None
    command: str = ""
    log: str | None = None
    reason: str | None = None


def not_run(name: str, reason: str) -> Outcome:
    return Outcome(name, "not run", reason=reason)


def run_step(step: Step, out: Path, env: dict[str, str], timeout_s: float) -> Outcome:
    """Run the step from the repository's root with its output in out/logs/<name>.log."""
    log_path = out / "logs" / f"{step.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(step.command)
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write(f"$ {command}\n")
        log.flush()
        process = subprocess.Popen(step.command, cwd=REPO, env={**env, **step.env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this step started, children included
            process.wait()
            log.write(f"\n[gpucheck] stopped after {timeout_s:.0f} s (its time limit)\n")
            return Outcome(step.name, "timed out", time.monotonic() - start, None, command, _relative(log_path, out),
                           f"stopped after {timeout_s:.0f} s")
    seconds = time.monotonic() - start
    status = "ok" if returncode == 0 else "failed"
    reason = None if returncode == 0 else f"exit status {returncode}: {_last_line(log_path)}"
    return Outcome(step.name, status, seconds, returncode, command, _relative(log_path, out), reason)


def _relative(path: Path, out: Path) -> str:
    return str(path.relative_to(out))


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
