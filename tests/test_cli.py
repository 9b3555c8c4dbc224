"""`pglab train` and `pglab list` end to end, and every bad input ending in one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_json, read_metrics, run_pglab_subprocess

TINY = ("--total-steps", "2048", "--wandb-mode", "disabled", "--no-progress")


def test_train_writes_the_run_directory_contract(tmp_path: Path):
    run_dir = tmp_path / "run"
    result = run_pglab_subprocess(
        "train", "--agent", "reinforce-rloo", "--env", "CartPole-v1", "--seed", "3", "--run-dir", str(run_dir),
        "--set", "lr=0.002", "--num-envs", "4", *TINY,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "reinforce-rloo on CartPole-v1 (seed 3)" in result.stdout

    config = read_json(run_dir / "config.json")
    assert config["agent"] == "reinforce-rloo" and config["env"] == "CartPole-v1" and config["seed"] == 3
    assert config["hyperparameters"]["lr"] == 0.002 and config["hyperparameters"]["num_envs"] == 4
    assert {"pglab", "torch", "gymnasium"} <= set(config["versions"])

    rows = read_metrics(run_dir)
    assert [row["global_step"] for row in rows] == [512 * (i + 1) for i in range(4)]  # 4 envs x 128 steps
    assert all("charts/SPS" in row and "losses/policy_loss" in row for row in rows)
    assert any("charts/episodic_return" in row and "charts/episodic_length" in row for row in rows)

    summary = read_json(run_dir / "summary.json")
    for key in ("global_step", "wall_s", "sps", "episodes", "return_mean_last100", "solved_at_step"):
        assert key in summary
    assert summary["global_step"] == 2048 and summary["solved_at_step"] is None and summary["status"] == "finished"
    assert not (run_dir / "wandb").exists()

    import torch

    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["global_step"] == 2048 and "policy" in checkpoint["agent"]


def test_target_return_stops_the_run_and_records_the_step(tmp_path: Path, run_cli):
    code, _, _ = run_cli(
        "train", "--env", "pglab/CategoricalBandit-v0", "--agent", "reinforce-value", "--target-return", "0.9",
        "--total-steps", "200000", "--run-dir", str(tmp_path / "r"), "--wandb-mode", "disabled", "--no-progress",
    )  # fmt: skip
    assert code == 0
    summary = read_json(tmp_path / "r" / "summary.json")
    assert summary["solved_at_step"] is not None and summary["global_step"] == summary["solved_at_step"] < 200000
    assert summary["return_mean_last100"] >= 0.9


def test_env_kwargs_reach_gym_make(tmp_path: Path, run_cli):
    code, _, err = run_cli(
        "train", "--env", "FrozenLake-v1", "--env-kwarg", "map_name=8x8", "--env-kwarg", "is_slippery=false",
        "--run-dir", str(tmp_path / "r"), *TINY,
    )  # fmt: skip
    assert code == 0, err
    config = read_json(tmp_path / "r" / "config.json")
    assert config["env_kwargs"] == {"map_name": "8x8", "is_slippery": False}


def test_module_colon_env_id_imports_a_plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "my_plugin.py").write_text(
        "import gymnasium as gym\n"
        "gym.register(id='MyBandit-v0', entry_point='pglab.envs.bandit:CategoricalBandit',\n"
        "             kwargs={'rewards': (0.0, 1.0)})\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = run_pglab_subprocess("train", "--env", "my_plugin:MyBandit-v0", "--run-dir", str(tmp_path / "r"), *TINY)
    assert result.returncode == 0, result.stderr
    # one-step episodes: every other vector step is an autoreset step
    assert read_json(tmp_path / "r" / "summary.json")["episodes"] == 1024


def test_list_shows_agents_envs_and_presets(run_cli):
    code, out, _ = run_cli("list")
    assert code == 0
    for name in ("reinforce", "reinforce-ema", "reinforce-value", "reinforce-rloo"):
        assert name in out
    assert "CartPole-v1" in out and "pglab/CategoricalBandit-v0" in out
    assert "Pendulum-v1" not in out  # continuous actions are not listed
    code, out, _ = run_cli("list", "--agent", "reinforce-value", "--no-envs")
    assert code == 0 and "gae_lambda" in out and "critic_lr" in out and "critic_update" in out
    tuned = [line for line in out.splitlines() if line.strip().startswith("tuned for")]
    minatar = [line for line in tuned if "MinAtar/" in line]  # the ten MinAtar ids share their values: one line
    assert len(minatar) == 1 and minatar[0].count("MinAtar/") == 10 and "'ent_coef': 0.05" in minatar[0], tuned
    assert any(line.strip().startswith("tuned for Acrobot-v1:") for line in tuned), tuned


def one_line_error(code: int, err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--env", "Pendulum-v1"), "needs a Discrete action space"),
        (("--env", "CartPol-v1"), "did you mean CartPole-v1"),
        (("--env", "no_such_module_xyz:Foo-v0"), "failed to import"),
        (("--agent", "reinforce-valu"), "did you mean reinforce-value"),
        (("--set", "lrr=0.1"), "did you mean lr"),
        (("--set", "lr"), "expected key=value"),
        (("--set", "lr=fast"), "expected a value of type float"),
        (("--set", "lr=0"), "lr=0.0 must be a positive number"),
        (("--set", "lr=-1e-3"), "must be a positive number"),
        (("--set", "gamma=1.5"), "gamma=1.5 must lie in (0, 1]"),
        (("--set", "gamma=0"), "must lie in (0, 1]"),
        (("--total-steps", "0"), "--total-steps must be positive"),
        (("--total-steps", "-5"), "--total-steps must be positive"),
        (("--num-envs", "0"), "--num-envs must be at least 1"),
        (("--agent", "reinforce-rloo", "--num-envs", "1"), "too few for a leave-one-out baseline"),
        (("--agent", "reinforce-ema", "--set", "ema_decay=1"), "ema_decay=1.0 must lie in [0, 1)"),
        (("--env-kwarg", "nokey"), "expected key=value"),
        (("--env", "FrozenLake-v1", "--env-kwarg", "bogus=1"), "rejected its arguments"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_code_2(tmp_path: Path, run_cli, args, expected):
    run_dir = tmp_path / "r"
    code, _, err = run_cli("train", "--run-dir", str(run_dir), "--wandb-mode", "disabled", "--no-progress", *args)
    assert expected in one_line_error(code, err)
    assert not (run_dir / "metrics.jsonl").exists()


def test_an_existing_run_is_never_overwritten(tmp_path: Path, run_cli):
    run_dir = tmp_path / "r"
    assert run_cli("train", "--run-dir", str(run_dir), "--env", "pglab/CategoricalBandit-v0", *TINY)[0] == 0
    before = (run_dir / "metrics.jsonl").read_text()
    code, _, err = run_cli("train", "--run-dir", str(run_dir), "--env", "pglab/CategoricalBandit-v0", *TINY)
    assert "already holds a run" in one_line_error(code, err)
    assert (run_dir / "metrics.jsonl").read_text() == before


@pytest.mark.filterwarnings("ignore:.*reward is a NaN value")
def test_nan_loss_stops_with_a_clear_line_and_keeps_the_last_good_weights(tmp_path: Path, run_cli):
    run_dir = tmp_path / "r"
    # a reward of NaN makes the returns, and so the loss, NaN on the first update
    code, _, err = run_cli(
        "train", "--env", "pglab/CategoricalBandit-v0", "--env-kwarg", "rewards=[0.0, NaN]", "--run-dir",
        str(run_dir), *TINY,
    )  # fmt: skip
    assert "loss became nan" in one_line_error(code, err)
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "diverged"
    import torch

    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["agent"]["policy"].values())


def metrics_without_timing(run_dir: Path, seed: int) -> list[dict]:
    import pglab

    pglab.train(
        agent="reinforce-value", env="CartPole-v1", seed=seed, total_steps=8192, run_dir=str(run_dir),
        wandb_mode="disabled", progress=False,
    )  # fmt: skip
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(run_dir)]


def test_same_seed_same_numbers(tmp_path: Path):
    first = metrics_without_timing(tmp_path / "a", seed=11)
    second = metrics_without_timing(tmp_path / "b", seed=11)
    assert first == second and len(first) == 8
    assert first != metrics_without_timing(tmp_path / "c", seed=12)
