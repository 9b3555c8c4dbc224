"""Helpers shared by the tests: reading run directories, running pglab as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def run_pglab_subprocess(*args: str, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``pglab ARGS`` as a user would run it: a new process, the installed console script's module."""
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled"), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pglab", *args], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )
