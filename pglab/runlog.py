"""Where a run's numbers go: metrics.jsonl always, Weights & Biases when enabled.

metrics.jsonl is the record of truth: one JSON object per log row, flushed as written, so a run
that is killed keeps every row it logged. W&B mirrors it; W&B never stops training: if it cannot
start, or fails mid-run, one warning line is printed and the run goes on with metrics.jsonl alone.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

WANDB_MODES = ("disabled", "offline", "online")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class RunLog:
    """Append-only metrics file plus an optional W&B run, opened for one training run."""

    def __init__(self, run_dir: Path, config: dict[str, Any], wandb_mode: str, wandb_settings: dict[str, Any]):
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self._metrics = self.metrics_path.open("a", buffering=1)
        self.wandb_run = None
        if wandb_mode != "disabled":
            self.wandb_run = self._start_wandb(config, wandb_mode, wandb_settings)

    def _start_wandb(self, config: dict[str, Any], mode: str, settings: dict[str, Any]) -> Any:
        try:
            import wandb

            run = wandb.init(
                project=settings.get("project") or "pglab",
                entity=settings.get("entity"),
                group=settings.get("group") or config["env"],
                job_type=config["agent"],
                name=f"{config['env']}__{config['agent']}__{config['seed']}",
                tags=list(settings.get("tags") or [config["agent"], config["env"]]),
                config=config,
                dir=str(self.run_dir),
                mode=mode,
                settings=wandb.Settings(silent=True, console="off"),
            )
            run.define_metric("global_step")
            run.define_metric("*", step_metric="global_step")
            return run
        except Exception as exc:
            self._warn(f"W&B could not start ({type(exc).__name__}: {exc}); metrics.jsonl still has everything")
            return None

    @staticmethod
    def _warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def log(self, row: dict[str, Any]) -> None:
        """Write one row (it must contain ``global_step``)."""
        self._metrics.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
        if self.wandb_run is not None:
            try:
                self.wandb_run.log(row)
            except Exception as exc:
                self._warn(f"W&B logging failed ({type(exc).__name__}: {exc}); continuing without W&B")
                self._finish_wandb(exit_code=1)

    def close(self, summary: dict[str, Any] | None, exit_code: int = 0) -> None:
        """Flush the metrics file and hand the summary to W&B (if running)."""
        self._metrics.close()
        if self.wandb_run is not None and summary is not None:
            try:
                self.wandb_run.summary.update({k: _jsonable(v) for k, v in summary.items()})
            except Exception as exc:
                self._warn(f"W&B summary failed ({type(exc).__name__}: {exc})")
        self._finish_wandb(exit_code)

    def _finish_wandb(self, exit_code: int) -> None:
        run, self.wandb_run = self.wandb_run, None
        if run is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run.finish(exit_code=exit_code)
            except Exception as exc:
                self._warn(f"W&B did not finish cleanly ({type(exc).__name__}: {exc})")
