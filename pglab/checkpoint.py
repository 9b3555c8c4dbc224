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

import torch

from pglab.errors import CheckpointError

CHECKPOINT = "checkpoint.pt"  # its name inside a run directory


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            torch.save(payload, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write {path}: {exc.strerror or exc}; the previous checkpoint is intact"
        ) from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely; any problem becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
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
