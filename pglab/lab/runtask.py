"""One run of a grid as an engine sees it: the task, its execution in a worker process, its outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FINISHED = "finished"


@dataclass(frozen=True)
class RunTask:
    """One run for an engine to execute: start it afresh or resume it from its checkpoint."""

    config: Any  # pglab.core.config.TrainConfig (untyped: an engine passes it through to the worker)
    resume: bool

    @property
    def run_dir(self) -> Path:
        return Path(self.config.run_dir)


@dataclass
class Outcome:
    """What became of one run of the grid; one entry of status.json."""

    run: str
    env: str
    agent: str
    seed: int
    status: str  # finished, failed, interrupted, or a status of summary.json (diverged, ...)
    action: str  # skipped (already finished), started, resumed
    error: str | None = None
    final_return: float | None = None
    global_step: int | None = None
    wall_s: float | None = None

    @property
    def failed(self) -> bool:
        """Failed, diverged or crashed; an interrupted run has not failed, it is merely unfinished."""
        return self.status not in (FINISHED, "interrupted")

    @classmethod
    def of(
        cls, task: RunTask, status: str, action: str, summary: dict[str, Any] | None = None, error: str | None = None
    ):
        summary = summary or {}
        config = task.config
        return cls(
            run=task.run_dir.name,
            env=config.env,
            agent=config.agent,
            seed=config.seed,
            status=status,
            action=action,
            error=error,
            final_return=summary.get("return_mean_last100"),
            global_step=summary.get("global_step"),
            wall_s=summary.get("wall_s"),
        )


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def execute(task: RunTask) -> Outcome:
    """Run one task to its end and say how it went; never raises (engines run it in worker processes).

    The grid must go on when a run fails, so every exception becomes an Outcome with its error in one
    line; the run's own directory keeps its summary.json and last checkpoint for a later retry.
    """
    from pglab.core.environment import env_module
    from pglab.core.train import resume, train

    action = "resumed" if task.resume else "started"
    try:
        summary = (
            resume(task.run_dir, progress=False, trusted_modules=[env_module(task.config.env)])
            if task.resume
            else train(task.config)
        )
    except KeyboardInterrupt:
        return Outcome.of(task, "interrupted", action, read_summary(task.run_dir))
    except Exception as exc:
        summary = read_summary(task.run_dir) or {}
        status = summary.get("status") if summary.get("status") not in (None, "running", FINISHED) else "failed"
        return Outcome.of(task, status, action, summary, error=f"{type(exc).__name__}: {exc}")
    return Outcome.of(task, summary["status"], action, summary)
