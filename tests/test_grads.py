"""pglab grads: the score-function estimators against exact gradients, and the command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from pglab.core.environment import make_vector_env
from pglab.core.policy import PolicyNetwork
from pglab.diagnostics.grads import GradsConfig, run_grads
from pglab.io.checkpoint import save_checkpoint

SCORE_FUNCTION = ("reinforce", "reinforce-ema", "reinforce-value", "reinforce-rloo")


def grads(tmp_path: Path, env: str, agents=SCORE_FUNCTION, **kwargs) -> dict:
    config = GradsConfig(env=env, agents=tuple(agents), out=str(tmp_path / "out"), **kwargs)
    report = run_grads(config)
    return {row["agent"]: {**row, "reference_norm": report["reference"]["norm"]} for row in report["estimators"]}


def assert_unbiased(row: dict) -> None:
    """|mean - exact| within 3 times the norm the mean's noise has (sqrt(trace Cov / M)).

    For an unbiased estimator E|mean - exact|^2 = trace(Cov) / M, so the ratio is about 1; a bias of
    the size of the noise already fails the check often, one several times larger always. Along the
    exact gradient's direction the noise is far smaller: there the mean must lie within 4 standard
    errors of the exact norm.
    """
    assert row["bias_norm"] < 3.0 * row["bias_noise_norm"], row["agent"]
    assert abs(bias_z(row)) < 4.0, (row["agent"], bias_z(row))


def bias_z(row: dict) -> float:
    """The mean's component along the exact gradient minus the exact norm, in standard errors."""
    return (row["along_reference"] - row["reference_norm"]) / row["along_reference_se"]


def test_score_function_estimators_are_unbiased_and_baselines_cut_variance_on_the_bandit(tmp_path):
    rows = grads(tmp_path, "pglab/CategoricalBandit-v0", samples=300, batch_episodes=8, critic="oracle", seed=3)
    for row in rows.values():
        assert_unbiased(row)
        assert row["cosine_of_mean"] > 0.99
    # rewards (0, 0.2, 0.5, 1) sit far from zero: any baseline near their mean removes most variance
    for name in ("reinforce-ema", "reinforce-value", "reinforce-rloo"):
        assert rows[name]["variance_vs_reinforce"] < 0.6, name


def test_on_the_relax_toy_a_baseline_removes_nearly_all_variance(tmp_path):
    """Both arms pay about -0.25 and differ by 0.02: without a baseline the offset is all noise."""
    rows = grads(tmp_path, "pglab/RelaxToy-v0", samples=200, batch_episodes=8, critic="oracle")
    for row in rows.values():
        assert_unbiased(row)
    assert rows["reinforce"]["snr"] < 0.5
    for name in ("reinforce-ema", "reinforce-value", "reinforce-rloo"):
        assert rows[name]["variance_vs_reinforce"] < 0.01, name
        assert rows[name]["cosine"]["mean"] > 0.99, name


def frozen_lake_checkpoint(path: Path) -> Path:
    """A policy fitted to a softened shortest path of non-slippery FrozenLake (J = 0.36), as a checkpoint.

    At a fresh policy on slippery FrozenLake 1.4% of the episodes succeed: a test of the mean would
    need tens of thousands of episodes to have any power. Here a few hundred suffice.
    """
    env = gym.make("FrozenLake-v1", is_slippery=False)
    torch.manual_seed(0)
    policy = PolicyNetwork(env.observation_space, 4)
    path_actions = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0, 2, 1, 1, 0, 0, 2, 2, 0])  # LEFT 0, DOWN 1, RIGHT 2
    target = 1.5 * torch.nn.functional.one_hot(path_actions, 4).float()
    features = policy.encoder(np.arange(16))
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        ((policy(features) - target) ** 2).mean().backward()
        optimizer.step()
    save_checkpoint(path, {"agent": {"policy": policy.state_dict()}, "agent_name": "handmade", "env": "FrozenLake-v1"})
    return path


def test_score_function_estimators_are_unbiased_and_baselines_cut_variance_on_frozen_lake(tmp_path):
    """gamma = 1: the agents' undiscounted step weights then match J exactly (see pglab.diagnostics.grads). With them,
    the bridges: relax, the optimal baseline and all-action, which the exact Q makes unbiased too."""
    rows = grads(
        tmp_path,
        "FrozenLake-v1",
        agents=(*SCORE_FUNCTION, "reinforce-optimal", "relax", "all-action"),
        env_kwargs={"is_slippery": False},
        checkpoint=str(frozen_lake_checkpoint(tmp_path / "policy.pt")),
        samples=100,
        batch_episodes=8,
        critic="oracle",
        overrides={"gamma": 1.0},
    )
    for row in rows.values():
        assert_unbiased(row)
        assert row["along_reference_se"] < 0.1 * row["reference_norm"]  # the test has the power to see a bias
        assert row["cosine_of_mean"] > 0.98
    for name in ("reinforce-ema", "reinforce-value", "reinforce-rloo", "reinforce-optimal", "relax", "all-action"):
        assert rows[name]["variance_vs_reinforce"] < 0.9, name


def test_weight_one_scores_are_biased_and_discount_weighting_removes_the_bias(tmp_path):
    """At gamma < 1 the common weight-1 surrogate is not the gradient of J (Nota & Thomas 2020): on the
    chain the check sees the bias far above the noise; weighting step t by gamma^t removes it, for every
    baseline (the value baseline with the exact, time-indexed V)."""
    agents = ("reinforce", "reinforce-value", "reinforce-rloo")
    common = {"env": "pglab/DelayedChain-v0", "agents": agents, "samples": 100, "critic": "oracle"}
    plain = grads(tmp_path / "plain", **common, overrides={"gamma": 0.8})
    weighted = grads(tmp_path / "weighted", **common, overrides={"gamma": 0.8, "discount_weighting": True})
    for name in agents:
        assert plain[name]["bias_norm"] > 3.0 * plain[name]["bias_noise_norm"] and abs(bias_z(plain[name])) > 4.0, name
        assert not plain[name]["targets_reference"], name
        assert_unbiased(weighted[name])
        assert weighted[name]["targets_reference"], name


def check_schema(report: dict) -> None:
    """The grads.json schema documented in README ("Estimator diagnostics")."""
    assert report["schema"] == "pglab.grads/1"
    for key, kind in {
        "env": str,
        "seed": int,
        "device": str,
        "samples": int,
        "batch_episodes": int,
        "warmup": int,
        "gamma": float,
        "horizon": int,
        "units": str,
        "parameters": int,
        "versions": dict,
        "env_kwargs": dict,
    }.items():
        assert isinstance(report[key], kind), key
    ref = report["reference"]
    assert ref["kind"] in ("exact", "large-batch")
    assert ref["objective_name"].startswith("E[sum_{t<H} gamma^t r_t] from the start state")  # both kinds: J
    assert len(ref["gradient"]) == report["parameters"] and math.isfinite(ref["norm"])
    assert (ref["objective"] is None) == (ref["kind"] != "exact")
    assert (ref["estimator"] is None) == (ref["kind"] == "exact")
    for row in report["estimators"]:
        assert row["critic"] in ("none", "checkpoint", "oracle", "untrained")
        assert isinstance(row["objective"], str) and isinstance(row["targets_reference"], bool)
        assert len(row["mean_gradient"]) == report["parameters"]
        for key in (
            "mean_norm",
            "total_variance",
            "snr",
            "cosine_of_mean",
            "bias_noise_norm",
            "wall_ms_per_estimate",
            "collect_ms",
            "gradient_ms",
            "mean_episode_length",
        ):
            assert isinstance(row[key], float) and math.isfinite(row[key]), key
        assert set(row["cosine"]) == {"mean", "std", "p10", "p50", "p90"}
        assert -1.0 <= row["cosine"]["p10"] <= row["cosine"]["p50"] <= row["cosine"]["p90"] <= 1.0
        assert (row["bias_norm"] is None) == (ref["kind"] != "exact")
        assert isinstance(row["hyperparameters"], dict)


def test_cli_writes_json_markdown_and_figure(run_cli, tmp_path):
    out = tmp_path / "bandit"
    code, stdout, stderr = run_cli(
        "grads", "--env", "pglab/CategoricalBandit-v0", "--agents", "reinforce,reinforce-rloo",
        "--samples", "20", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "grads.json").read_text())
    check_schema(report)
    assert report["reference"]["kind"] == "exact"
    assert [r["agent"] for r in report["estimators"]] == ["reinforce", "reinforce-rloo"]
    assert report["estimators"][0]["variance_vs_reinforce"] == 1.0
    table = (out / "grads.md").read_text()
    assert table.count("\n| reinforce") == 2 and "the exact gradient" in table
    assert (out / "grads.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| reinforce-rloo |" in stdout


def test_cli_large_batch_reference_where_no_model_exists(run_cli, tmp_path):
    out = tmp_path / "cartpole"
    code, _, stderr = run_cli(
        "grads", "--env", "CartPole-v1", "--agents", "reinforce-ema", "--samples", "4", "--batch-episodes", "2",
        "--reference-samples", "8", "--warmup", "1", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "grads.json").read_text())
    check_schema(report)
    assert report["reference"] | {"gradient": None} == report["reference"] | {
        "kind": "large-batch", "estimator": "reinforce", "samples": 8, "gradient": None
    }  # fmt: skip


def test_checkpoint_policy_and_critic_are_used(run_cli, tmp_path):
    run = tmp_path / "run"
    code, _, stderr = run_cli(
        "train", "--agent", "reinforce-value", "--env", "pglab/DelayedChain-v0", "--total-steps", "512",
        "--run-dir", str(run), "--wandb-mode", "disabled", "--no-progress",
    )  # fmt: skip
    assert code == 0, stderr
    rows = grads(
        tmp_path, "pglab/DelayedChain-v0", agents=("reinforce-value", "reinforce"),
        checkpoint=str(run / "checkpoint.pt"), samples=3, warmup=0,
    )  # fmt: skip
    assert rows["reinforce-value"]["critic"] == "checkpoint" and rows["reinforce"]["critic"] == "none"
    trained = torch.load(run / "checkpoint.pt", weights_only=True)["agent"]["policy"]
    fresh = PolicyNetwork(make_vector_env("pglab/DelayedChain-v0", 1).single_observation_space, 2).state_dict()
    assert any(not torch.equal(trained[k], fresh[k]) for k in trained)  # training moved the weights


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "reinforce,nope"], "unknown agent 'nope'"),
        (["--agents", "reinforce", "--samples", "1"], "--samples must be at least 2"),
        (["--agents", "reinforce,reinforce"], "names an agent twice"),
        (
            ["--agents", "reinforce", "--reference", "exact", "--env", "CartPole-v1"],
            "needs an environment with a model",
        ),
        (["--agents", "reinforce-value", "--oracle-critic", "--env", "CartPole-v1"], "--critic oracle needs"),
        (["--agents", "reinforce-value"], "critic was never trained"),
        (["--agents", "gumbel-st"], "critic was never trained"),
        (["--agents", "reinforce", "--env", "CliffWalking-v1"], "give it one with --horizon N"),
        (["--agents", "reinforce", "--horizon", "0"], "--horizon must be at least 1"),
        (["--agents", "reinforce", "--env", "Pendulum-v1"], "needs a Discrete action space"),
        (["--agents", "reinforce", "--checkpoint", "missing.pt"], "no checkpoint at missing.pt"),
        (["--agents", "reinforce", "--set", "gamma=2"], "gamma=2.0 must lie in (0, 1]"),
    ],
)
def test_bad_flags_give_one_clear_line(run_cli, tmp_path, args, message):
    if "--env" not in args:
        args = [*args, "--env", "pglab/CategoricalBandit-v0"]
    code, _, stderr = run_cli("grads", *args, "--out", str(tmp_path / "x"))
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr and stderr.count("\n") == 1, stderr


@pytest.mark.parametrize("env", ["pglab/DelayedChain-v0", "CartPole-v1"])  # exact and large-batch references
def test_training_logs_estimator_diagnostics_without_changing_the_run(tmp_path, env):
    from pglab.core.train import TrainConfig, train

    def run(every: int) -> list[dict]:
        config = TrainConfig(
            agent="reinforce-ema", env=env, total_steps=3 * 512, num_envs=4, overrides={"num_steps": 128},
            run_dir=str(tmp_path / f"run{every}"), wandb_mode="disabled", progress=False,
            grad_diagnostics_every=every, grad_diagnostics_samples=3,
        )  # fmt: skip
        train(config)
        return [json.loads(line) for line in (tmp_path / f"run{every}" / "metrics.jsonl").read_text().splitlines()]

    plain, measured = run(0), run(2)
    diagnosed = [row for row in measured if "grads/estimator_variance" in row]
    assert [row["global_step"] for row in diagnosed] == [512, 1536]  # updates 0 and 2
    for row in diagnosed:
        assert row["grads/estimator_variance"] > 0 and -1 <= row["grads/estimator_cosine"] <= 1
        assert ("grads/estimator_bias_norm" in row) == (env == "pglab/DelayedChain-v0")
    for a, b in zip(plain, measured, strict=True):  # the diagnostics leave training exactly as it was
        assert a["losses/policy_loss"] == b["losses/policy_loss"] and a.get("charts/baseline") == b.get(
            "charts/baseline"
        )


def test_gumbel_estimators_with_the_oracle_critic_have_a_bias_that_shrinks_with_tau(tmp_path: Path):
    """On the RELAX toy with the exact Q, what is left is the relaxation's own bias: it falls as tau falls,
    while the variance rises (the trade-off the temperature sets)."""
    results = {}
    for tau in (1.0, 0.5, 0.25):
        report = run_grads(
            GradsConfig(
                env="pglab/RelaxToy-v0",
                agents=("gumbel-softmax", "gumbel-rao"),
                samples=300,
                critic="oracle",
                overrides={"tau": tau},
                out=str(tmp_path / str(tau)),
            )
        )
        assert report["reference"]["kind"] == "exact"
        results[tau] = {e["agent"]: e for e in report["estimators"]}
    for agent in ("gumbel-softmax", "gumbel-rao"):
        bias = [results[tau][agent]["bias_norm"] for tau in (1.0, 0.5, 0.25)]
        noise = [results[tau][agent]["bias_noise_norm"] for tau in (1.0, 0.5, 0.25)]
        variance = [results[tau][agent]["total_variance"] for tau in (1.0, 0.5, 0.25)]
        assert results[1.0][agent]["critic"] == "oracle"
        assert bias[0] > 10 * noise[0]  # measurable: far above what sampling noise alone would give
        assert bias[0] > bias[1] > bias[2], bias
        assert variance[0] < variance[1] < variance[2], variance


def test_horizon_gives_cliff_walking_a_time_limit_and_an_untrained_critic_is_labelled(run_cli, tmp_path):
    out = tmp_path / "cliff"
    code, stdout, stderr = run_cli(
        "grads", "--env", "CliffWalking-v1", "--horizon", "30", "--agents", "reinforce,reinforce-value",
        "--critic", "untrained", "--samples", "4", "--warmup", "0", "--batch-episodes", "2", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads((out / "grads.json").read_text())
    check_schema(report)
    assert report["horizon"] == 30 and report["reference"]["kind"] == "exact"
    assert [row["critic"] for row in report["estimators"]] == ["none", "untrained"]
    assert "| reinforce-value | untrained |" in stdout and "the time limit H ending the task" in stdout


def test_grads_says_when_two_estimators_coincide_and_why(tmp_path):
    """With the oracle critic Q(s, y) is linear in y: gumbel-softmax and gumbel-st give the same gradient."""
    report = run_grads(
        GradsConfig(
            env="pglab/DelayedChain-v0",
            agents=("gumbel-softmax", "gumbel-st", "gumbel-rao"),
            samples=5,
            warmup=0,
            critic="oracle",
            out=str(tmp_path / "out"),
        )
    )
    assert [pair["agents"] for pair in report["coincidences"]] == [["gumbel-softmax", "gumbel-st"]]
    assert "linear in the action" in report["coincidences"][0]["why"]
    assert "gumbel-softmax and gumbel-st gave identical estimates" in (tmp_path / "out" / "grads.md").read_text()


def test_discount_weighting_reaches_the_relaxed_and_all_action_agents(tmp_path):
    """The gamma^t weights also multiply the critic-based actor values: all-action with the exact Q is
    biased for the discounted J without them and unbiased with them."""
    common = {"env": "pglab/DelayedChain-v0", "agents": ("all-action",), "samples": 100, "critic": "oracle"}
    plain = grads(tmp_path / "plain", **common, overrides={"gamma": 0.8})["all-action"]
    weighted = grads(tmp_path / "weighted", **common, overrides={"gamma": 0.8, "discount_weighting": True})
    assert plain["bias_norm"] > 3.0 * plain["bias_noise_norm"] and not plain["targets_reference"]
    assert_unbiased(weighted["all-action"])
