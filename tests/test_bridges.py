"""RELAX, the all-action gradient and the optimal baseline: against exact gradients and exact variances."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from torch import nn

import pglab
from pglab.core import estimators as est
from pglab.core.agent import resolve_preset
from pglab.core.environment import make_vector_env
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from pglab.core.rollout import Collector, RolloutBuffer
from pglab.diagnostics import exact
from pglab.diagnostics.grads import GradsConfig, estimate_gradient, gradient_statistics, run_grads, sample_estimates
from tests.helpers import read_metrics
from tests.test_estimators import LOGITS, REWARDS, exact_gradient, within_standard_errors
from tests.test_grads import assert_unbiased

BRIDGES = ("relax", "all-action", "reinforce-optimal")


def relax_surrogate(control: nn.Module, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits with one copy per sample, the mean RELAX surrogate of ``samples`` draws for E[REWARDS[a]])."""
    torch.manual_seed(seed)
    theta = LOGITS.expand(samples, -1).clone().requires_grad_(True)
    actions = est.gumbel_max_sample(theta.detach())
    perturbed = est.conditional_gumbel_logits(theta, actions, num_samples=2)
    z = theta + (perturbed[0] - theta).detach()
    advantages = REWARDS[actions] - control(perturbed[1].detach())
    surrogate = est.relax_surrogate(
        est.categorical_log_prob(theta, actions), advantages, control(z), control(perturbed[1])
    )
    return theta, surrogate


def relax_estimates(control: nn.Module, samples: int, seed: int = 0) -> torch.Tensor:
    """One single-sample RELAX estimate of grad_logits E[REWARDS[a]] per row, (samples, K): every sample
    has its own copy of the logits, so one backward pass of the mean surrogate gives all of them."""
    theta, surrogate = relax_surrogate(control, samples, seed)
    (-surrogate).backward()
    return theta.grad * samples


class SoftControl(nn.Module):
    """A nonlinear control variate of the relaxed sample, c(z) = mlp(softmax(z)); not fitted to anything."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)).double()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 10.5 + self.net(torch.softmax(z, -1)).squeeze(-1)


def test_relax_is_unbiased_for_any_control_variate_and_the_check_can_fail():
    exact = exact_gradient(LOGITS, REWARDS)
    assert within_standard_errors(relax_estimates(SoftControl(), 20_000), exact)
    # Dropping the correction term grad c(z) - grad c(z~) leaves a biased estimator: the check sees it.
    control = SoftControl()

    class NoCorrection(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return control(z.detach())

    assert not within_standard_errors(relax_estimates(NoCorrection(), 20_000), exact)


def test_conditional_logits_are_a_differentiable_sample_given_the_action():
    torch.manual_seed(0)
    logits = LOGITS.clone().requires_grad_(True)
    actions = torch.full((4000,), 2)
    z = est.conditional_gumbel_logits(logits.expand(4000, -1), actions)[0]
    assert torch.equal(z.argmax(-1), actions)
    z.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def score_function_variance(logits: torch.Tensor, rewards: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """trace Cov of the single-sample estimate grad log pi(a) (r_a - b) over the logits, exactly."""
    probs = torch.softmax(logits, -1)
    scores = torch.eye(len(logits), dtype=logits.dtype) - probs  # row a: grad_logits log pi(a)
    second_moment = (probs * (scores**2).sum(-1) * (rewards - baseline) ** 2).sum()
    return second_moment - (exact_gradient(logits, rewards) ** 2).sum()


def test_score_norms_by_torch_func_and_in_closed_form_match_autograd():
    torch.manual_seed(0)
    policy = PolicyNetwork(make_vector_env("CartPole-v1", 1).single_observation_space, 2, (8, 8))
    features, actions = torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0])
    full, output = [], []
    for x, a in zip(features, actions, strict=True):
        grads = torch.autograd.grad(est.categorical_log_prob(policy(x), a), list(policy.parameters()))
        full.append(sum((g**2).sum() for g in grads))
        output.append(sum((g**2).sum() for g in grads[-2:]))  # the output layer's weight and bias
    torch.testing.assert_close(est.score_sq_norms(policy, features, actions), torch.stack(full))
    hidden = policy.net[:-1](features)
    torch.testing.assert_close(
        est.output_layer_score_sq_norms(hidden, policy.net[-1](hidden), actions), torch.stack(output)
    )


def test_the_optimal_baseline_has_the_least_exact_variance():
    """With exact per-action quantities b* beats the value baseline, and every other constant."""
    torch.manual_seed(1)
    policy = PolicyNetwork(make_vector_env("pglab/CategoricalBandit-v0", 1).single_observation_space, 5, (8,))
    with torch.no_grad():
        policy.net[-1].weight.mul_(100.0)  # a policy far from uniform: b* and V then differ clearly
    features = policy.encoder([0]).double()
    policy.double()
    rewards = REWARDS - 10.0
    probs = torch.softmax(policy(features), -1)[0].detach()
    scores = [
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(torch.log(torch.softmax(policy(features), -1)[0, a]),
                                                              list(policy.parameters()))])
        for a in range(5)
    ]  # fmt: skip
    norms = est.score_sq_norms(policy, features.expand(5, -1), torch.arange(5))
    torch.testing.assert_close(norms, torch.stack([(s**2).sum() for s in scores]))
    gradient = sum(p * s * r for p, s, r in zip(probs, scores, rewards, strict=True))

    def variance(b: torch.Tensor) -> float:
        return float(sum(p * (s**2).sum() * (r - b) ** 2 for p, s, r in zip(probs, scores, rewards, strict=True))
                     - (gradient**2).sum())  # fmt: skip

    best = est.optimal_baseline(probs, norms, rewards)
    value = (probs * rewards).sum()
    assert variance(best) < variance(value) - 1e-6, (variance(best), variance(value))
    for shift in (-0.5, -0.01, 0.01, 0.5):
        assert variance(best) <= variance(best + shift)


def grads(tmp_path: Path, env: str, agents: tuple[str, ...], **kwargs) -> dict[str, dict]:
    report = run_grads(GradsConfig(env=env, agents=agents, out=str(tmp_path / "out"), **kwargs))
    return {row["agent"]: {**row, "reference_norm": report["reference"]["norm"]} for row in report["estimators"]}


def test_on_the_bandit_all_three_are_unbiased_and_all_action_with_the_exact_q_is_exact(tmp_path):
    rows = grads(tmp_path, "pglab/CategoricalBandit-v0", ("reinforce", *BRIDGES), samples=150, critic="oracle")
    for name in ("relax", "reinforce-optimal"):
        assert rows[name]["critic"] == "oracle"
        assert_unbiased(rows[name])
        assert rows[name]["variance_vs_reinforce"] < 0.5, name
    exact = rows["all-action"]
    assert exact["total_variance"] < 1e-12 and exact["bias_norm"] < 1e-6 * exact["reference_norm"]


def test_relax_variance_falls_below_reinforce_on_the_relax_toy_as_its_control_variate_trains():
    """Training pushes the policy to the better arm too; the comparison is at the trained policy, where the
    trained control variate's estimates are still unbiased against the exact gradient."""
    envs = make_vector_env("pglab/RelaxToy-v0", 8)
    spec = get_agent("relax")
    preset = resolve_preset(spec.preset, "RelaxToy-v0", {"normalize_advantages": "off", "lr": 1e-4})
    torch.manual_seed(0)
    policy = PolicyNetwork(envs.single_observation_space, 2, preset.hidden_sizes)
    agent = spec.build(policy, envs.single_observation_space, envs.single_action_space, preset)
    reinforce_spec = get_agent("reinforce")
    reinforce = reinforce_spec.build(
        policy,
        envs.single_observation_space,
        envs.single_action_space,
        resolve_preset(reinforce_spec.preset, "RelaxToy-v0", {"normalize_advantages": "off"}),
    )
    before = sample_estimates(envs, 1, agent, 100, first_seed=10**6)[0].var(0).sum()
    collector = Collector(envs, policy.encoder, 1, batch_episodes=envs.num_envs)  # one episode per env
    for i in range(200):
        collector.reset(seed=8 * i)
        agent.update(collector.collect(agent))
    trained = sample_estimates(envs, 1, agent, 100, first_seed=10**6)[0]
    after = trained.var(0).sum()
    plain = sample_estimates(envs, 1, reinforce, 100, first_seed=10**6)[0].var(0).sum()
    model = exact.tabular_model(gym.make("pglab/RelaxToy-v0"))
    stats = gradient_statistics(trained, exact.exact_gradient(policy, model, preset.gamma)[1], exact_reference=True)
    envs.close()
    assert after < 0.1 * before and after < 0.1 * plain, (before, after, plain)
    assert stats["bias_norm"] < 3.0 * stats["bias_noise_norm"] and stats["cosine_of_mean"] > 0.95, stats


def build_on(name: str, env_id: str, overrides: dict, policy: PolicyNetwork | None = None) -> object:
    """Agent ``name`` with ``overrides`` (advantage normalisation off) on ``policy``, or on a new one from seed 0."""
    envs = make_vector_env(env_id, 1)
    spec = get_agent(name)
    preset = resolve_preset(spec.preset, env_id, {"normalize_advantages": "off", **overrides})
    torch.manual_seed(0)
    policy = policy or PolicyNetwork(envs.single_observation_space, 2, preset.hidden_sizes)
    agent = spec.build(policy, envs.single_observation_space, envs.single_action_space, preset)
    envs.close()
    return agent


def first_batch(agent: object, env_id: str, horizon: int) -> RolloutBuffer:
    """One complete episode in each of 8 environments, from reset(seed=5)."""
    envs = make_vector_env(env_id, 8)
    collector = Collector(envs, agent.policy.encoder, horizon, batch_episodes=8)
    collector.reset(seed=5)
    batch = collector.collect(agent)
    envs.close()
    return batch


def test_relax_starts_as_the_value_baseline_with_its_state_term():
    """The action term of c starts at zero: before any training RELAX's estimate is reinforce-value's with
    v(s) as its baseline (a random action term would add the correction's noise from the first batch)."""
    shared = {"truncation": "terminal", "critic_hidden_sizes": "16"}
    relax = build_on("relax", "CartPole-v1", shared)
    value = build_on("reinforce-value", "CartPole-v1", shared, relax.policy)
    value.critic.load_state_dict(relax.control.critic.state_value.state_dict())
    batch = first_batch(relax, "CartPole-v1", 500)
    torch.testing.assert_close(estimate_gradient(relax, batch), estimate_gradient(value, batch))
    assert estimate_gradient(relax, batch).norm() > 0


@pytest.mark.parametrize("state_term", ["regression", "variance"])
def test_relax_regresses_its_state_term_on_the_returns_where_asked(state_term):
    """With state_term=regression v(s) is fitted to the returns (on the RELAX toy's one state: their mean);
    the variance objective still trains the rest of c (tau moves). With state_term=variance it trains all
    of c, where only v + the action term matters to the estimate: v alone drifts far from the returns."""
    overrides = {"lr": 1e-6, "critic_lr": 0.02, "ent_coef": 0.0, "state_term": state_term}
    relax = build_on("relax", "pglab/RelaxToy-v0", overrides)
    batch = first_batch(relax, "pglab/RelaxToy-v0", 1)
    for _ in range(150):
        metrics = relax.update(batch)
    fitted = relax.control.state_value(batch.features[0, 0]).item()
    mean_return = float(batch.rewards[batch.valid].mean())
    assert metrics["charts/tau"] != 1.0
    if state_term == "regression":
        assert abs(fitted - mean_return) < 0.01 * abs(mean_return), (fitted, mean_return)
        assert metrics["losses/value_loss"] >= 0
    else:
        assert abs(fitted - mean_return) > 0.01 * abs(mean_return), (fitted, mean_return)
        assert "losses/value_loss" not in metrics


@pytest.mark.parametrize("agent", BRIDGES)
def test_resumed_run_matches_the_uninterrupted_run_and_diagnostics_change_nothing(agent, tmp_path):
    common = {"agent": agent, "env": "pglab/DelayedChain-v0", "seed": 3, "num_envs": 2, "wandb_mode": "disabled",
              "progress": False, "overrides": {"num_steps": 32}}  # fmt: skip
    pglab.train(total_steps=8 * 64, run_dir=str(tmp_path / "full"), **common)
    pglab.train(total_steps=3 * 64, run_dir=str(tmp_path / "cut"), **common)
    pglab.resume(tmp_path / "cut", total_steps=8 * 64, progress=False)
    measured = tmp_path / "measured"
    pglab.train(
        total_steps=8 * 64, run_dir=str(measured), grad_diagnostics_every=3, grad_diagnostics_samples=4, **common
    )

    def rows(run: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "charts/SPS" and not k.startswith("grads/estimator")}
                for r in read_metrics(run)]  # fmt: skip

    assert len(rows(tmp_path / "full")) == 8
    assert rows(tmp_path / "cut") == rows(tmp_path / "full") == rows(measured)
    assert "grads/estimator_bias_norm" in read_metrics(measured)[0]
    hyperparameters = json.loads((measured / "config.json").read_text())["hyperparameters"]
    assert hyperparameters["hidden_sizes"] == [64, 64]  # the shared PolicyNetwork's defaults


def test_every_agent_starts_from_the_same_policy_weights(tmp_path):
    starts = {}
    for agent in ("reinforce", *BRIDGES):
        run = tmp_path / agent
        pglab.train(agent=agent, env="CartPole-v1", seed=7, total_steps=1, run_dir=str(run), wandb_mode="disabled",
                    progress=False, overrides={"lr": 1e-30, "num_steps": 1, "num_envs": 1})  # fmt: skip
        state = torch.load(run / "checkpoint.pt", weights_only=True)["agent"]["policy"]
        starts[agent] = torch.cat([v.reshape(-1) for v in state.values()])
    for agent in BRIDGES:
        torch.testing.assert_close(starts[agent], starts["reinforce"], rtol=0, atol=1e-20)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--agent", "relax", "--set", "normalize_advantages=standardize"), "normalize_advantages='standardize'"),
        (("--agent", "relax", "--set", "tau=0"), "tau=0.0 must be a positive number"),
        (("--agent", "reinforce-optimal", "--set", "score_norm=half"), "score_norm='half' must be one of"),
    ],
)
def test_bad_presets_give_one_line_and_exit_2(run_cli, tmp_path, args, message):
    code, _, err = run_cli("train", *args, "--env", "CartPole-v1", "--run-dir", str(tmp_path / "r"), "--no-progress")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_list_shows_the_new_agents_and_their_estimator_fields(run_cli):
    code, out, _ = run_cli("list")
    assert code == 0 and all(name in out for name in BRIDGES)
    code, out, _ = run_cli("list", "--agent", "relax")
    assert code == 0 and "learn_tau" in out and "critic_epochs" in out
