"""Where a run's numbers go: metrics.jsonl always, Weights & Biases when enabled.

metrics.jsonl is the record of truth: one JSON object per log row, flushed as written, so a run
that is killed keeps every row it logged. W&B mirrors it, one W&B run per training run, laid out
for comparing estimators: runs of one comparison share a group, job_type is the agent, every
metric is plotted against ``global_step``; at the end the run gets summary.json as its summary,
a one-row results table, the optional evaluation video and the final checkpoint as a model
artifact. W&B never stops training: if it cannot start, or any W&B call fails, one warning line
is printed and the run goes on with metrics.jsonl alone.

``wandb`` is imported only when a run uses it, and offline it is imported and started in a
background thread: that costs about a CPU-second, which then overlaps with training.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WANDB_MODES = ("disabled", "offline", "online")
_WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}  # older spellings wandb itself accepts

# W&B's sampling of CPU/memory/disk and its machine survey cost start-up time and CPU for charts an
# estimator comparison does not read (charts/SPS is logged anyway). Settings this wandb does not know
# are left out, so an older or newer wandb still starts.
LEAN_SETTINGS = {"x_disable_stats": True, "x_disable_machine_info": True}

# The summary fields that make up the results table, in the order a reader compares them.
RESULT_COLUMNS = (
    "agent",
    "env",
    "seed",
    "status",
    "global_step",
    "return_mean_last100",
    "solved_at_step",
    "solved_at_wall_s",
    "wall_s",
    "sps",
    "episodes",
)


def default_wandb_mode() -> str:
    """``$WANDB_MODE`` when set (wandb's old spellings ``dryrun``/``run`` understood), else offline."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    return _WANDB_MODE_ALIASES.get(mode, mode) or "offline"


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr: for problems that must not stop a run."""
    print(f"warning: {message}", file=sys.stderr)


def jsonable(value: Any) -> Any:
    """``value`` with every NaN or infinite float (also inside dicts, lists and tuples) replaced by None.

    JSON has no NaN or Infinity: Python writes them as bare ``NaN``/``Infinity``, which strict parsers
    (jq, JavaScript, pandas with a strict engine) reject. None -- ``null`` -- keeps one type per key
    (a number, or null where it is undefined: the spread of one episode, the SNR of a zero-variance
    estimate).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def dumps(data: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``data`` (non-finite floats become null; anything else non-JSON becomes a string)."""
    return json.dumps(jsonable(data), allow_nan=False, default=str, **kwargs)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path``'s content all at once (temporary file, then rename): a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, dumps(data, indent=2, sort_keys=True) + "\n")


def _artifact_name(text: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def _settings(wandb: Any) -> Any:
    known = getattr(wandb.Settings, "model_fields", {})
    lean = {key: value for key, value in LEAN_SETTINGS.items() if key in known}
    return wandb.Settings(silent=True, console="off", **lean)


class RunLog:
    """Append-only metrics file plus an optional W&B run, opened for one training run."""

    def __init__(self, run_dir: Path, config: dict[str, Any], wandb_mode: str, wandb_settings: dict[str, Any]):
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        self._metrics = self.metrics_path.open("a", buffering=1)
        self._last_step = 0
        self.wandb_run: Any = None
        # Offline, W&B starts in a background thread: importing wandb and starting its service take about
        # a second, which then overlaps with training instead of delaying it. Rows logged before W&B is
        # ready wait in _pending (with their time). Only this thread touches _pending and calls the run; the starter
        # thread only sets wandb_run, before _ready.
        self._pending: list[dict[str, Any]] = []
        self._ready = threading.Event()
        if wandb_mode == "disabled":
            self._ready.set()
        elif wandb_mode == "online":
            # In the foreground: W&B may ask for a login at the terminal, which must come before training.
            self._start_wandb(config, wandb_mode, wandb_settings)
        else:
            threading.Thread(
                target=self._start_wandb,
                args=(config, wandb_mode, wandb_settings),
                name="pglab-wandb-start",
                daemon=True,
            ).start()

    def _start_wandb(self, config: dict[str, Any], mode: str, settings: dict[str, Any]) -> None:
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
                id=config.get("wandb_run_id"),
                resume="allow",  # a resumed training run continues its W&B run
                dir=str(self.run_dir),
                mode=mode,
                settings=_settings(wandb),
            )
            run.define_metric("global_step")
            run.define_metric("*", step_metric="global_step")
            self.wandb_run = run
        except (Exception, SystemExit) as exc:  # wandb's login exits on a closed terminal
            warn(f"W&B could not start ({type(exc).__name__}: {exc}); metrics.jsonl still has everything")
        finally:
            self._ready.set()

    @contextlib.contextmanager
    def _wandb_call(self, what: str) -> Iterator[None]:
        """Run a W&B call; if it raises, warn once and go on without W&B for the rest of the run."""
        try:
            yield
        except Exception as exc:
            warn(f"W&B {what} failed ({type(exc).__name__}: {exc}); continuing without W&B")
            self._finish_wandb(exit_code=1)

    def log(self, row: dict[str, Any]) -> None:
        """Write one row (it must contain ``global_step``)."""
        self._metrics.write(dumps(row) + "\n")
        self._last_step = row["global_step"]
        # The row's own time, so that W&B's time axes stay true for rows that waited for the start.
        self._pending.append({**row, "_timestamp": time.time()})
        if self._ready.is_set():
            self._flush_pending()

    def _flush_pending(self) -> None:
        rows, self._pending = self._pending, []
        for row in rows:
            if self.wandb_run is None:
                return
            with self._wandb_call("logging"):
                self.wandb_run.log(row)

    def close(
        self,
        summary: dict[str, Any] | None,
        exit_code: int = 0,
        checkpoint: Path | None = None,
        video: Path | None = None,
    ) -> None:
        """Flush the metrics file; hand W&B (if running) the results, the video and the checkpoint.

        ``summary`` becomes the W&B run's summary and the one row of its ``results`` table;
        ``checkpoint`` (when it exists) is logged as a ``model`` artifact named ``model-<run id>``.
        """
        self._metrics.close()
        self._ready.wait()
        self._flush_pending()
        if summary is not None:
            self._log_results(summary)
        if video is not None:
            self._log_video(video)
        if checkpoint is not None and checkpoint.is_file():
            self._log_checkpoint(checkpoint, summary or {})
        self._finish_wandb(exit_code)

    def _log_results(self, summary: dict[str, Any]) -> None:
        if self.wandb_run is None:
            return
        with self._wandb_call("results"):
            import wandb

            columns = [c for c in RESULT_COLUMNS if c in summary]
            table = wandb.Table(columns=columns, data=[[jsonable(summary[c]) for c in columns]])
            self.wandb_run.log({"results": table, "global_step": self._last_step})
            # Last, so that summary.json's values win over the last logged row's.
            self.wandb_run.summary.update({k: jsonable(v) for k, v in summary.items()})

    def _log_video(self, video: Path) -> None:
        if self.wandb_run is None:
            return
        with self._wandb_call("video"):
            import wandb

            self.wandb_run.log({"videos/eval": wandb.Video(str(video), format="mp4"), "global_step": self._last_step})

    def _log_checkpoint(self, checkpoint: Path, summary: dict[str, Any]) -> None:
        if self.wandb_run is None:
            return
        with self._wandb_call("checkpoint artifact"):
            import wandb

            metadata = {k: jsonable(summary[k]) for k in RESULT_COLUMNS if k in summary}
            artifact = wandb.Artifact(_artifact_name(f"model-{self.wandb_run.id}"), type="model", metadata=metadata)
            artifact.add_file(str(checkpoint), name=checkpoint.name)
            self.wandb_run.log_artifact(artifact, aliases=["latest", "final"])

    def _finish_wandb(self, exit_code: int) -> None:
        run, self.wandb_run = self.wandb_run, None
        if run is not None:
            try:
                import wandb

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run.finish(exit_code=exit_code)
                    # finish() returns before W&B's service has written the run file out; stopping the
                    # service waits for that, so the run directory is complete when training returns.
                    # Not while the caller has a W&B run of their own open: the service is theirs too.
                    if wandb.run is None:
                        wandb.teardown()
            except Exception as exc:
                warn(f"W&B did not finish cleanly ({type(exc).__name__}: {exc})")
