"""Where a run's numbers go: metrics.jsonl always, Weights & Biases when enabled.

metrics.jsonl is the record of truth: one JSON object per log row, flushed as written, so a run
that is killed keeps every row it logged. W&B mirrors it, one W&B run per training run, laid out
for comparing estimators: runs of one comparison share a group, job_type is the agent, every
metric is plotted against ``global_step``; at the end the run gets summary.json as its summary,
a one-row results table, the optional evaluation video and the final checkpoint as a model
artifact. W&B never stops training: if it cannot start, or any W&B call fails, one warning line
is printed and the run goes on with metrics.jsonl alone.

``wandb`` is never imported by the training process: a run that uses W&B starts
:mod:`pglab.io.wandb_process`, which imports and runs it, and feeds it rows through a pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import netrc
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pglab.errors import StorageError

WANDB_MODES = ("disabled", "offline", "online")
# Online, training waits this long for W&B to start (W&B retries an unreachable server for minutes).
ONLINE_START_WAIT_S = 5.0
FINISH_TIMEOUT_S = 600  # the longest the end of a run waits for W&B to write (or upload) its run out
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


def note(message: str) -> None:
    """One ``note: ...`` line on stderr: what pglab did that the user did not ask for in so many words."""
    print(f"note: {message}", file=sys.stderr)


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
    """Replace ``path``'s content all at once (temporary file, fsync, rename): a crash or a full disk
    never leaves half a file, and no temporary file stays behind. A failure is a one-line StorageError."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"could not write {path}: {exc.strerror or exc}") from exc


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, dumps(data, indent=2, sort_keys=True) + "\n")


def _open_tensorboard(run_dir: Path, start_step: int) -> Any:
    from pglab.io.tblog import TensorBoardLog

    return TensorBoardLog(run_dir, purge_from=start_step + 1 if start_step else None)


class RunLog:
    """Append-only metrics file plus an optional W&B run, opened for one training run.

    W&B lives in a process of its own (:mod:`pglab.io.wandb_process`): importing wandb, starting its
    service and every ``log`` call happen there, on another core where there is one, and the training
    process only hands each row to a writer thread that puts it into a pipe. Offline, training starts
    at once; online, it waits for the W&B run to start (W&B may ask for a login at the terminal, which
    must come before training).
    """

    def __init__(
        self,
        run_dir: Path,
        config: dict[str, Any],
        wandb_mode: str,
        wandb_settings: dict[str, Any],
        tensorboard: bool = False,
        start_step: int = 0,
    ):
        self.run_dir = run_dir
        self.metrics_path = run_dir / "metrics.jsonl"
        # Appended with os.write, so that a failed write (a full disk) can be cut back to the last whole row.
        try:
            self._metrics = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"could not open {self.metrics_path}: {exc.strerror or exc}") from exc
        self._metrics_size = os.fstat(self._metrics).st_size
        self._tensorboard: Any = None
        if tensorboard:
            self._tensorboard = self._tensorboard_call("start", _open_tensorboard, run_dir, start_step)
        self._wandb: _WandbProcess | None = None
        if wandb_mode != "disabled":
            try:
                self._wandb = _WandbProcess.get()
            except OSError as exc:
                warn(f"W&B could not start ({type(exc).__name__}: {exc}); metrics.jsonl still has everything")
            else:
                self._wandb.start(config, wandb_mode, wandb_settings, run_dir)
                if wandb_mode == "online" and not self._wandb.wait_started(_online_start_wait()):
                    warn(
                        f"W&B has not started within {ONLINE_START_WAIT_S:.0f} s (no network?); training goes on, "
                        "W&B gets every row if it starts later; metrics.jsonl has everything"
                    )

    def log(self, row: dict[str, Any]) -> None:
        """Write one row (it must contain ``global_step``); a failed write leaves no part of it behind."""
        line = dumps(row)
        self._append((line + "\n").encode())
        if self._tensorboard is not None:
            self._tensorboard_call("logging", self._tensorboard.log, row, time.time())
        if self._wandb is not None:
            # The row's own time, so that W&B's time axes stay true for rows that waited for its start.
            self._wandb.send(f'{{"t": {time.time()!r}, "row": {line}}}')

    def _append(self, data: bytes) -> None:
        written = 0
        try:
            while written < len(data):  # a write to a nearly full disk may write part of the row, then fail
                written += os.write(self._metrics, data[written:])
        except OSError as exc:
            os.ftruncate(self._metrics, self._metrics_size)  # metrics.jsonl ends with its last whole row again
            raise StorageError(f"could not write {self.metrics_path}: {exc.strerror or exc}") from exc
        self._metrics_size += written

    def _tensorboard_call(self, what: str, call: Any, *args: Any) -> Any:
        """``call(*args)``; if it raises, warn once and go on without TensorBoard for the rest of the run."""
        try:
            return call(*args)
        except Exception as exc:
            warn(f"TensorBoard {what} failed ({type(exc).__name__}: {exc}); metrics.jsonl still has everything")
            self._tensorboard = None
            return None

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
        Returns once the W&B process has written its run directory out.
        """
        os.close(self._metrics)
        if self._tensorboard is not None:
            self._tensorboard_call("closing", self._tensorboard.close)
        if self._wandb is None:
            return
        closing = {
            "summary": summary,
            "exit_code": exit_code,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "video": None if video is None else str(video),
        }
        self._wandb.send(dumps({"close": closing}))
        self._wandb.close()


def _online_start_wait() -> float | None:
    """How long training waits for an online W&B start: no limit while W&B may be asking for a login
    at the terminal (that prompt must come before training), else ONLINE_START_WAIT_S."""
    if os.environ.get("WANDB_API_KEY") or sys.stdin is None or not sys.stdin.isatty():
        return ONLINE_START_WAIT_S
    try:
        known = netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        known = False
    return ONLINE_START_WAIT_S if known else None


class _WandbProcess:
    """The training process's end of the pipe to :mod:`pglab.io.wandb_process`.

    A writer thread moves queued lines into the pipe, so ``send`` never blocks training, even while
    the W&B process is still importing wandb; a reader thread prints the process's warnings as they
    come, as this process's own one-line warnings. After a run the process waits for the next one
    (:meth:`get`): a grid's worker pays for importing wandb once, not once per run.
    """

    _idle: _WandbProcess | None = None  # the process of this process's last run, free for the next

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "pglab.io.wandb_process", str(read_end)],
                pass_fds=(read_end,),
                stdout=subprocess.PIPE,
                text=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        # W&B reads its settings from the environment when it starts: a changed one needs a new process.
        self._owner = (os.getpid(), dict(os.environ))
        self._mode = "offline"
        self._pipe = os.fdopen(write_end, "w", encoding="utf-8")
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._started = threading.Event()
        self._closed = threading.Event()
        self._writer = threading.Thread(target=self._write, name="pglab-wandb-writer", daemon=True)
        self._reader = threading.Thread(target=self._read, name="pglab-wandb-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    @classmethod
    def get(cls) -> _WandbProcess:
        """The idle W&B process of this process's previous run if it can serve this one, else a new one."""
        process, cls._idle = cls._idle, None
        if process is not None and process._owner == (os.getpid(), dict(os.environ)) and process.alive():
            return process
        if process is not None:
            process.stop()
        return cls()

    def alive(self) -> bool:
        return self._process.poll() is None and self._reader.is_alive()

    def start(self, config: dict[str, Any], mode: str, settings: dict[str, Any], run_dir: Path) -> None:
        self._mode = mode
        self._started.clear()
        self._closed.clear()
        start = {"config": config, "mode": mode, "settings": settings, "run_dir": str(run_dir)}
        self.send(dumps({"start": start}))

    def send(self, line: str) -> None:
        if self._writer.is_alive():  # once the W&B process is gone, rows are not kept for it
            self._queue.put(line)

    def wait_started(self, timeout: float | None = None) -> bool:
        """Until W&B has started or failed to (its warning is printed then), or ``timeout`` s; False on timeout."""
        return self._started.wait(timeout)

    def _write(self) -> None:
        try:
            while (line := self._queue.get()) is not None:
                self._pipe.write(line + "\n")
                self._pipe.flush()
        except OSError:
            pass  # the W&B process is gone; the reader reports it
        finally:
            with contextlib.suppress(OSError):
                self._pipe.close()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            kind, _, text = line.rstrip("\n").partition(" ")
            if kind == "warning":
                warn(text)
            elif kind in ("started", "failed"):
                self._started.set()
            elif kind == "closed":
                self._closed.set()
        self._started.set()
        self._closed.set()

    def close(self) -> None:
        """Waits for the W&B process to write the run out, then keeps it for this process's next run."""
        # Online, a W&B that never started (an unreachable server) gets a short grace, not the time to upload
        # a run; its warning was printed when training went on without it.
        unreachable = self._mode == "online" and not self._started.is_set()
        if not self._closed.wait(timeout=ONLINE_START_WAIT_S if unreachable else FINISH_TIMEOUT_S):
            if not unreachable:
                warn(f"W&B did not finish within {FINISH_TIMEOUT_S} s and was stopped; metrics.jsonl has everything")
            self._process.kill()
        if self.alive():
            _WandbProcess._idle = self
            return
        self.stop()
        if self._process.returncode not in (0, -signal.SIGKILL):
            warn(f"the W&B process exited with code {self._process.returncode}; metrics.jsonl still has everything")

    @classmethod
    def stop_idle(cls) -> None:
        """At exit: the idle W&B process ends, and is waited for (no orphan, its CPU time counted)."""
        process, cls._idle = cls._idle, None
        if process is not None and process._owner[0] == os.getpid():
            process.stop()

    def stop(self) -> None:
        """Ends the pipe; the W&B process ends its run (if one is open) and exits."""
        self._queue.put(None)
        self._writer.join()
        try:
            self._process.wait(timeout=FINISH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join()


atexit.register(_WandbProcess.stop_idle)
