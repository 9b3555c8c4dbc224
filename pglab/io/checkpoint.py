"""Checkpoints: written atomically, read without executing code.

A checkpoint is a plain dict of tensors, numbers and strings saved with ``torch.save`` and read with
``torch.load(..., weights_only=True)``: a file carrying a malicious pickle is refused, never run.
It is written to a temporary file in the same folder and renamed over the old one, so a crash or a
full disk mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pglab.core.limits import available_memory, gigabytes
from pglab.errors import CheckpointError, StorageError

CHECKPOINT = "checkpoint.pt"  # its name inside a run directory
# Environment steps between periodic checkpoints of `pglab train` and of every run of a grid: a run stopped
# even by SIGKILL resumes from at most this many steps back; a checkpoint costs milliseconds.
DEFAULT_CHECKPOINT_EVERY = 20_000


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename).

    Any failure to write (a full disk: torch reports it as a RuntimeError whose context is the
    OSError) removes the temporary file and raises a one-line StorageError; the previous
    checkpoint is left intact.
    """
    import torch  # here, not at the top: a grid's parent reads CHECKPOINT without importing torch

    path = Path(path)
    tmp_name = None
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as tmp:
            torch.save(payload, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except (OSError, RuntimeError) as exc:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        cause = _os_error(exc)
        if cause is None:
            raise
        reason = cause.strerror or cause
        raise StorageError(f"could not write {path}: {reason}; the previous checkpoint is intact") from exc
    except BaseException:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        raise


# torch.save stores a checkpoint's entries uncompressed; a deflated entry that inflates this many times
# over (or past MAX_ENTRIES entries) is a compression bomb, refused before torch reads a byte of it.
MAX_RATIO = 100
MAX_ENTRIES = 100_000


def check_archive(path: Path) -> None:
    """Refuse, from its directory alone, a file that is no torch zip archive or would inflate too far.

    Reads only the zip's central directory (declared sizes), so a bomb is refused in milliseconds and
    with no memory; and a file that is not a zip (a raw pickle, /etc/passwd) never reaches torch.load,
    whose legacy reader would unpickle it and warn.
    """
    foreign = (
        f"{path} is not a checkpoint pglab wrote (it is truncated or corrupt, or in another format: pglab "
        "writes torch's zip archive)"
    )
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(foreign) from exc
    if len(entries) > MAX_ENTRIES:
        raise CheckpointError(f"{path} holds {len(entries):,} entries, far more than a checkpoint; not loaded")
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED and entry.file_size > max(2**20, MAX_RATIO * entry.compress_size):
            raise CheckpointError(
                f"{path} is a compression bomb: {entry.filename} inflates {entry.compress_size:,} bytes to "
                f"{entry.file_size:,}; not loaded"
            )
    total = sum(entry.file_size for entry in entries)
    if total > available_memory():
        raise CheckpointError(
            f"{path} would take {gigabytes(total)} to load, more than the {gigabytes(available_memory())} of "
            "memory available; not loaded"
        )


def _os_error(exc: BaseException | None) -> OSError | None:
    """The OSError behind ``exc`` (itself, or what torch's RuntimeError was raised while handling)."""
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely; any problem becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    check_archive(path)
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"(?i)unsupported GLOBAL:? (?:GLOBAL )?([\w.]+)", str(exc))
        if unsafe:
            raise CheckpointError(
                f"{path} holds objects a safe load refuses ({unsafe.group(1)}: possibly malicious code); "
                "it was not loaded and nothing in it was run"
            ) from exc
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read (not a weights-only file)") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or "agent" not in payload:
        raise CheckpointError(f"{path} is not a pglab checkpoint")
    return payload
