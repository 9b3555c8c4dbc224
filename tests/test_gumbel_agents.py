"""The Gumbel agents end to end: they learn, log their temperature, checkpoint, and refuse bad presets."""

from __future__ import annotations

import math

import pytest
import torch
from gymnasium.spaces import Box, Discrete

import pglab
from pglab.core.agent import resolve_preset
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from tests.helpers import read_json, read_metrics

GUMBEL_AGENTS = ("gumbel-softmax", "gumbel-st", "gumbel-rao")


@pytest.mark.slow
@pytest.mark.parametrize("agent", GUMBEL_AGENTS)
def test_learns_cartpole(agent, tmp_path):
    summary = pglab.train(
        agent=agent,
        env="CartPole-v1",
        seed=1,
        total_steps=200_000,
        target_return=195.0,
        run_dir=str(tmp_path / "run"),
        wandb_mode="disabled",
        progress=False,
    )
    assert summary["return_mean_last100"] >= 195.0, summary


def test_logs_the_annealed_temperature(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli(
        "train",
        "--agent",
        "gumbel-rao",
        "--env",
        "CartPole-v1",
        "--total-steps",
        "2048",
        "--num-envs",
        "2",
        "--set",
        "num_steps=256",
        "--set",
        "tau=2.0",
        "--set",
        "tau_schedule=exponential",
        "--set",
        "tau_anneal_rate=1e-3",
        "--set",
        "tau_min=0.3",
        "--set",
        "rao_samples=3",
        "--run-dir",
        str(run_dir),
        "--wandb-mode",
        "disabled",
        "--no-progress",
    )
    assert code == 0, err
    taus = [row["charts/tau"] for row in read_metrics(run_dir)]
    expected = [max(0.3, 2.0 * math.exp(-1e-3 * 512 * i)) for i in range(4)]
    assert taus == pytest.approx(expected)
    assert read_json(run_dir / "config.json")["hyperparameters"]["rao_samples"] == 3
    assert {"losses/q_loss", "losses/policy_loss", "losses/entropy", "grads/policy_grad_norm"} <= set(
        read_metrics(run_dir)[-1]
    )


def test_checkpoint_holds_policy_critic_and_schedule_position(tmp_path):
    pglab.train(
        agent="gumbel-st",
        env="CartPole-v1",
        total_steps=1024,
        overrides={"target_decay": 0.9},
        run_dir=str(tmp_path / "run"),
        wandb_mode="disabled",
        progress=False,
    )
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["agent"]
    assert {"policy", "critic", "target_critic", "critic_optimizer"} <= set(state)
    assert state["env_steps"] == 1024
    assert state["critic"].keys() == state["target_critic"].keys()


def test_executes_the_hard_gumbel_max_sample():
    """act() samples one integer action per row from softmax(logits), never a relaxed vector."""
    spec = get_agent("gumbel-softmax")
    torch.manual_seed(0)
    policy = PolicyNetwork(Box(-1, 1, (3,)), 3)
    agent = spec.build(policy, Box(-1, 1, (3,)), Discrete(3), resolve_preset(spec.preset, "x", {}))
    with torch.no_grad():
        policy.net[-1].bias.copy_(torch.tensor([4.0, 0.0, -4.0]))
    actions = agent.act(torch.zeros(20_000, 3))
    assert actions.dtype == torch.int64 and set(actions.unique().tolist()) <= {0, 1, 2}
    probs = torch.softmax(policy(torch.zeros(1, 3)), -1)[0]
    frequency = torch.bincount(actions, minlength=3).double() / len(actions)
    assert (frequency - probs.double()).abs().max() < 0.01


@pytest.mark.parametrize(
    ("agent", "setting", "name"),
    [
        ("gumbel-softmax", "tau=0", "tau"),
        ("gumbel-st", "tau=-0.5", "tau"),
        ("gumbel-st", "tau_min=0", "tau_min"),
        ("gumbel-rao", "rao_samples=0", "rao_samples"),
        ("gumbel-softmax", "tau_anneal_rate=-1e-5", "tau_anneal_rate"),
        ("gumbel-st", "tau_schedule=cosine", "tau_schedule"),
        ("gumbel-rao", "critic_lambda=1.5", "critic_lambda"),
        ("gumbel-rao", "target_decay=1", "target_decay"),
    ],
)
def test_bad_presets_end_in_one_line_and_exit_code_2(run_cli, tmp_path, agent, setting, name):
    code, _, err = run_cli(
        "train",
        "--agent",
        agent,
        "--set",
        setting,
        "--total-steps",
        "1000",
        "--run-dir",
        str(tmp_path / "run"),
        "--wandb-mode",
        "disabled",
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], err
    assert not (tmp_path / "run").exists()
