"""TensorBoard event files read back with TensorBoard's own reader and compared with metrics.jsonl."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pglab.io import tblog
from pglab.io.checkpoint import CHECKPOINT
from tests.helpers import read_metrics

TRAIN = ("train", "--agent", "reinforce-rloo", "--env", "CartPole-v1", "--num-envs", "2", "--wandb-mode", "disabled",
         "--no-progress")  # fmt: skip


def logged_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar as TensorBoard shows it: (step, value) per tag, purged events left out."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every event
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def expected_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl row by row: each number of each row at the row's global_step, as float32."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in read_metrics(run_dir):
        for key, value in tblog.scalars(row).items():
            expected.setdefault(key, []).append((row["global_step"], float(np.float32(value))))
    return expected


def test_every_metrics_row_is_in_the_event_file(tmp_path: Path, run_cli):
    run_dir = tmp_path / "run"
    code, _, err = run_cli(*TRAIN, "--total-steps", "2048", "--run-dir", str(run_dir))
    assert code == 0, err
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # in the run directory itself, as CleanRL does
    expected = expected_scalars(run_dir)
    assert {"charts/episodic_return", "charts/SPS", "losses/policy_loss"} <= expected.keys()
    assert len(expected["charts/SPS"]) == len(read_metrics(run_dir)) == 8
    assert logged_scalars(run_dir) == expected


def test_a_resumed_run_purges_the_steps_it_logs_again(tmp_path: Path, run_cli):
    """Killed after step 2048 with its last checkpoint at 1024: the resumed run logs 1280..2048 again,
    and TensorBoard must show each of those steps once, as metrics.jsonl does."""
    run_dir = tmp_path / "run"
    assert run_cli(*TRAIN, "--total-steps", "1024", "--run-dir", str(run_dir))[0] == 0
    shutil.copy(run_dir / CHECKPOINT, tmp_path / "at_1024.pt")
    assert run_cli("train", "--resume", str(run_dir), "--total-steps", "2048", "--no-progress")[0] == 0
    shutil.copy(tmp_path / "at_1024.pt", run_dir / CHECKPOINT)  # as if killed before its final checkpoint
    code, _, err = run_cli("train", "--resume", str(run_dir), "--total-steps", "2048", "--no-progress")
    assert code == 0, err
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 3
    steps = [row["global_step"] for row in read_metrics(run_dir)]
    assert steps == [256 * (i + 1) for i in range(8)]
    assert logged_scalars(run_dir) == expected_scalars(run_dir)


def test_no_tensorboard_writes_no_event_file(tmp_path: Path, run_cli):
    code, _, err = run_cli(*TRAIN, "--total-steps", "512", "--run-dir", str(tmp_path / "run"), "--no-tensorboard")
    assert code == 0, err
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_a_failing_writer_warns_once_and_the_run_goes_on(tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch):
    def broken(self: tblog.TensorBoardLog, row: dict, walltime: float) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(tblog.TensorBoardLog, "log", broken)
    code, _, err = run_cli(*TRAIN, "--total-steps", "1024", "--run-dir", str(tmp_path / "run"))
    assert code == 0
    assert err.count("warning: TensorBoard logging failed (OSError: disk full)") == 1
    assert [row["global_step"] for row in read_metrics(tmp_path / "run")] == [256, 512, 768, 1024]
