"""Shared test helpers: running the pglab CLI in-process or as a real subprocess, reading run dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pglab.cli import main


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


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``pglab ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
