"""One writer per run directory: an exclusive lock, and the check that a folder is a pglab run.

Two processes writing the same run directory interleave their metrics.jsonl and overwrite each
other's config.json and summary.json without an error anywhere; a resume under a live run swaps
metrics.jsonl beneath it. So every command that writes a run directory (train, resume, a grid's
runs, eval's eval.json, a grid's directory) first takes :class:`DirectoryLock`: an ``flock`` on
``DIR/.pglab.lock``, which records the holder (pid, host, command). The kernel drops the lock when
its process dies, however it dies, so a lock is never left stale; a holder record left by a killed
process is taken over with a note. The lock file is never deleted (deleting a lock file lets two
processes hold "the" lock on two different files); a clean release empties it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pglab.errors import RunDirectoryError

LOCK_NAME = ".pglab.lock"


class DirectoryLock:
    """An exclusive, non-blocking lock on a directory, held until :meth:`release` (or process exit)."""

    def __init__(self, directory: Path, command: str):
        self.directory = Path(directory)
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        """Take the lock or raise RunDirectoryError naming the holder; creates the directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _take_exclusive(fd):
            os.close(fd)
            raise _in_use(self.directory)
        previous = _read_holder(path, attempts=1)  # ours now: an empty record is a clean release, not a write under way
        if previous:
            print(
                f"note: {self.directory} was last locked by {_describe(previous)}, which ended without releasing "
                "it; taking it over",
                file=sys.stderr,
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # an empty record: released cleanly
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _take_exclusive(fd: int, patience_s: float = 0.5) -> bool:
    """Take the exclusive flock on ``fd``, or False while another process holds it.

    :func:`in_use` takes a shared lock for a moment to look (``pglab runs`` beside a grid, a grid checking
    its own runs); refusing on that alone would fail a run whose directory is free, so a refusal is
    retried, 10 ms apart, for ``patience_s`` before the directory counts as held.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def in_use(directory: Path) -> bool:
    """Whether a live process holds ``directory``'s lock (a run being trained, resumed or evaluated)."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody ever locked it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused only while someone holds it exclusively
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def check_not_in_use(directory: Path) -> None:
    """Raise the one-line "in use by ..." error when another process holds ``directory``'s lock; takes nothing."""
    if in_use(directory):
        raise _in_use(directory)


def _in_use(directory: Path) -> RunDirectoryError:
    return RunDirectoryError(
        f"{directory} is in use by {_describe(_read_holder(directory / LOCK_NAME))}; wait for it to end or stop it, "
        "or choose another directory"
    )


def _read_holder(path: Path, attempts: int = 50) -> dict[str, Any]:
    """The holder record, or {} when empty or unreadable.

    A live holder may be writing its record right now, so an empty one is read again ``attempts`` times,
    20 ms apart (1 s by default). Under our own lock nobody else writes it: one read is the answer.
    """
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.02)
        try:
            text = path.read_text()
        except OSError:
            return {}
        if text:
            try:
                return json.loads(text)
            except ValueError:
                pass
    return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another pglab process"
    return f"pglab {holder.get('command', '?')} (pid {holder.get('pid', '?')} on host {holder.get('host', '?')})"


def is_pglab_run(directory: Path) -> bool:
    """Whether ``directory`` holds a config.json that pglab wrote (not merely a file of that name)."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("versions"), dict) and "pglab" in config["versions"]


def check_new_run_dir(run_dir: Path) -> None:
    """Refuse a directory that already holds a run, or a non-empty folder that is not a pglab run."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is a file, not a directory; choose another --run-dir")
    entries = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK_NAME)
    if not entries:
        return
    check_not_in_use(run_dir)
    if is_pglab_run(run_dir):
        raise RunDirectoryError(
            f"{run_dir} already holds a run; choose another --run-dir, or continue it with --resume {run_dir}"
        )
    raise RunDirectoryError(
        f"{run_dir} is not empty and is not a pglab run (it holds {entries[0]!r}"
        f"{f' and {len(entries) - 1} more' if len(entries) > 1 else ''}); choose a new or empty --run-dir"
    )
