"""Rough edges of the command line: examples in every --help, effective values in config.json,
a periodic checkpoint by default, and resuming a finished run doing nothing."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

import pglab
from pglab.cli import cli
from pglab.io.checkpoint import DEFAULT_CHECKPOINT_EVERY, load_checkpoint
from tests.grid_envs import RaisesAfter
from tests.helpers import read_json

COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_shows_an_example(command: str, run_cli):
    code, out, _ = run_cli(command, "--help")
    assert code == 0
    examples = out.split("Examples:")[1].strip().splitlines()
    assert examples and all(line.strip().startswith(f"pglab {command}") for line in examples)


def test_config_json_records_effective_values_not_null(tmp_path: Path):
    run_dir = tmp_path / "r"
    pglab.train(agent="reinforce", total_steps=256, run_dir=str(run_dir), wandb_mode="disabled", progress=False)
    config = read_json(run_dir / "config.json")
    assert config["num_envs"] == config["hyperparameters"]["num_envs"] == 8
    assert config["wandb_group"] == "CartPole-v1" and config["wandb_tags"] == ["reinforce", "CartPole-v1"]


def test_train_checkpoints_periodically_by_default(tmp_path: Path, run_cli):
    # a bandit raising well after the first default checkpoint is due (a reset is no step)
    gym.register(
        "pglab-test/FailsAfter-v0",
        entry_point=RaisesAfter,
        kwargs={
            "env_id": "pglab/CategoricalBandit-v0",
            "at": DEFAULT_CHECKPOINT_EVERY + 4096,
            "message": "simulator crashed",
        },
    )
    RaisesAfter.steps = 0
    run_dir = tmp_path / "r"
    code, _, err = run_cli(
        "train", "--agent", "reinforce", "--env", "pglab-test/FailsAfter-v0", "--run-dir", str(run_dir),
        "--total-steps", "100000", "--wandb-mode", "disabled", "--no-progress",
    )  # fmt: skip
    assert code == 2 and "simulator crashed" in err
    step = load_checkpoint(run_dir / "checkpoint.pt")["global_step"]
    failed_at = read_json(run_dir / "summary.json")["global_step"]
    assert DEFAULT_CHECKPOINT_EVERY <= step <= failed_at < 100_000  # a periodic one, not only the end's
    assert step % DEFAULT_CHECKPOINT_EVERY < 8 * 128  # written when a multiple of the period was passed


def test_resuming_a_finished_run_does_nothing_and_says_so(tmp_path: Path, capsys):
    run_dir = tmp_path / "r"
    summary = pglab.train(agent="reinforce", total_steps=512, num_envs=2, run_dir=str(run_dir), wandb_mode="offline",
                          progress=False)  # fmt: skip
    capsys.readouterr()
    metrics = (run_dir / "metrics.jsonl").read_text()
    again = pglab.resume(run_dir, progress=False)
    assert "finished at step 512; nothing to resume" in capsys.readouterr().err
    assert again == summary and (run_dir / "metrics.jsonl").read_text() == metrics
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    longer = pglab.resume(run_dir, total_steps=1024, progress=False)
    assert longer["global_step"] == 1024
