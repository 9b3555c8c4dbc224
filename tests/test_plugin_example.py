"""The README's example plug-in package (examples/pglab_plugin_example): installed, and without installing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pglab_plugin_example"
DISTRIBUTION = "pglab-plugin-example"


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A copy of the example, so that building it leaves no build/ or egg-info in the repository."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "example", ignore=shutil.ignore_patterns("build", "*.egg-info")))


def run_pglab_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``pglab ARGS`` in a new process started in ``cwd`` (W&B disabled)."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "pglab", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True, timeout=300)


def test_installed_plugin_registers_through_the_entry_point_and_trains(example_copy, tmp_path):
    try:
        distribution(DISTRIBUTION)
        pytest.fail(f"{DISTRIBUTION} is already installed in this environment; uninstall it first")
    except PackageNotFoundError:
        pass
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(example_copy))
    try:
        run = tmp_path / "run"
        result = run_pglab_subprocess(
            "train", "--agent", "reinforce", "--env", "pglab_example/Corridor-v0", "--total-steps", "32768",
            "--set", "lr=3e-3", "--target-return", "0.9", "--run-dir", str(run), "--no-progress",
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert summary["solved_at_step"] is not None  # a random walk scores about 0.3, the best policy 0.94

        # the plug-in exposes its model, so pglab grads measures against the exact gradient
        out = tmp_path / "grads"
        result = run_pglab_subprocess(
            "grads", "--env", "pglab_example/Corridor-v0", "--agents", "reinforce", "--samples", "4",
            "--out", str(out), cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads((out / "grads.json").read_text())["reference"]["kind"] == "exact"
    finally:
        pip("uninstall", "-y", DISTRIBUTION)


def test_module_colon_id_works_without_installing(example_copy, tmp_path):
    run = tmp_path / "run"
    result = run_pglab_subprocess(
        "train", "--agent", "reinforce", "--env", "pglab_plugin_example:pglab_example/Corridor-v0",
        "--total-steps", "2048", "--run-dir", str(run), "--no-progress",
        cwd=example_copy,  # python -m puts the working directory on sys.path, as PYTHONPATH=. would
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
