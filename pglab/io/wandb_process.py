"""The W&B logging process: one per training run, fed by :class:`pglab.io.runlog.RunLog` through a pipe.

``python -m pglab.io.wandb_process FD`` reads JSON messages, one a line, from the inherited file
descriptor FD, and answers on its stdout with lines ``started``, ``failed``, ``closed`` or
``warning <text>`` (which the training process prints as its own warning line). Messages, in order,
for each training run in turn::

    {"start": {"config": ..., "mode": ..., "settings": ..., "run_dir": ...}}
    {"row": {...}, "t": <time.time() when logged>}      # any number
    {"close": {"summary": ..., "exit_code": 0, "checkpoint": path or null, "video": path or null}}

Importing wandb, starting its service and every ``log`` call happen here, so they cost the training
process no CPU time and no lock: it only writes lines into a pipe. This module imports neither torch
nor pglab's training code. Any W&B failure is reported once; the process then ends its W&B run and
keeps reading (and dropping) messages, so the training process never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from typing import Any

from pglab.io.runlog import LEAN_SETTINGS, RESULT_COLUMNS


def _artifact_name(text: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def _tell(line: str) -> None:
    """One line to the training process (its reader thread prints warnings as they arrive)."""
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


class WandbSink:
    """The W&B side of a RunLog: a run started from the first message, fed by the others."""

    def __init__(self) -> None:
        self.run: Any = None
        self.last_step = 0

    def start(self, config: dict[str, Any], mode: str, settings: dict[str, Any], run_dir: str) -> None:
        # W&B stages artifact files (the checkpoint) in its data folder until they are uploaded, which for
        # an offline run is never: staged under the run directory, a copied run directory syncs whole and
        # nothing piles up in ~/.local/share/wandb.
        os.environ["WANDB_DATA_DIR"] = os.path.join(run_dir, "wandb", "data")
        os.environ["WANDB_CACHE_DIR"] = os.path.join(run_dir, "wandb", "cache")
        try:
            import wandb

            known = getattr(wandb.Settings, "model_fields", {})
            lean = {key: value for key, value in LEAN_SETTINGS.items() if key in known}
            self.run = wandb.init(
                project=settings.get("project") or "pglab",
                entity=settings.get("entity"),
                group=settings.get("group") or config["env"],
                job_type=config["agent"],
                name=f"{config['env']}__{config['agent']}__{config['seed']}",
                tags=list(settings.get("tags") or [config["agent"], config["env"]]),
                config=config,
                id=config.get("wandb_run_id"),
                resume="allow",  # a resumed training run continues its W&B run
                dir=run_dir,
                mode=mode,
                settings=wandb.Settings(silent=True, console="off", **lean),
            )
            self.run.define_metric("global_step")
            self.run.define_metric("*", step_metric="global_step")
        except (Exception, SystemExit) as exc:  # wandb's login exits on a closed terminal
            _tell(f"warning W&B could not start ({type(exc).__name__}: {exc}); metrics.jsonl still has everything")
            _tell("failed")
            return
        _tell("started")

    def _call(self, what: str, call: Any) -> None:
        """Run a W&B call; if it raises, warn once and go on without W&B for the rest of the run."""
        if self.run is None:
            return
        try:
            call()
        except Exception as exc:
            _tell(f"warning W&B {what} failed ({type(exc).__name__}: {exc}); continuing without W&B")
            self.finish(exit_code=1)

    def log(self, row: dict[str, Any], timestamp: float) -> None:
        self.last_step = row["global_step"]
        # The row's own time, so that W&B's time axes stay true for rows that waited for the start.
        self._call("logging", lambda: self.run.log({**row, "_timestamp": timestamp}))

    def close(self, summary: dict[str, Any] | None, exit_code: int, checkpoint: str | None, video: str | None) -> None:
        """The results table, the video and the checkpoint artifact, then the end of the W&B run."""
        if self.run is None:
            return
        import wandb

        step = self.last_step
        if summary is not None:

            def results() -> None:
                columns = [c for c in RESULT_COLUMNS if c in summary]
                table = wandb.Table(columns=columns, data=[[summary[c] for c in columns]])
                self.run.log({"results": table, "global_step": step})
                # Last, so that summary.json's values win over the last logged row's.
                self.run.summary.update(summary)

            self._call("results", results)
        if video is not None:
            self._call(
                "video", lambda: self.run.log({"videos/eval": wandb.Video(video, format="mp4"), "global_step": step})
            )
        if checkpoint is not None and os.path.isfile(checkpoint):

            def artifact() -> None:
                metadata = {k: summary[k] for k in RESULT_COLUMNS if summary and k in summary}
                model = wandb.Artifact(_artifact_name(f"model-{self.run.id}"), type="model", metadata=metadata)
                model.add_file(checkpoint, name=os.path.basename(checkpoint))
                self.run.log_artifact(model, aliases=["latest", "final"])

            self._call("checkpoint artifact", artifact)
        self.finish(exit_code)

    def finish(self, exit_code: int) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            import wandb

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run.finish(exit_code=exit_code)
                # finish() returns before W&B's service has written the run file out; stopping the
                # service waits for that, so the run directory is complete when this process ends.
                wandb.teardown()
        except Exception as exc:
            _tell(f"warning W&B did not finish cleanly ({type(exc).__name__}: {exc})")


def serve(messages: Any) -> None:
    """Handle every message from ``messages`` (lines of JSON) until the end of the pipe.

    One training run after another: after each ``close`` this process says ``closed`` and waits for
    the next ``start`` (a grid's worker runs many), so wandb is imported once per worker, not per run.
    """
    sink = WandbSink()
    for line in messages:
        message = json.loads(line)
        if "row" in message:
            sink.log(message["row"], message["t"])
        elif "start" in message:
            sink = WandbSink()
            sink.start(**message["start"])
        elif "close" in message:
            sink.close(**message["close"])
            _tell("closed")
    sink.finish(exit_code=1)  # the training process died mid-run: end its W&B run as failed, keep what it logged


def main() -> None:
    with os.fdopen(int(sys.argv[1]), encoding="utf-8") as messages:
        serve(messages)


if __name__ == "__main__":
    main()
