"""pglab.diagnostics.exact: the exact objective and gradient of environments that expose their model."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from pglab.core.environment import load_env_plugins
from pglab.core.policy import PolicyNetwork
from pglab.diagnostics import exact
from pglab.errors import EnvironmentSetupError

load_env_plugins()  # registers the pglab/ environments through their entry point


def double_policy(env: gym.Env, seed: int = 0, hidden: tuple[int, ...] = (8,)) -> PolicyNetwork:
    torch.manual_seed(seed)
    policy = PolicyNetwork(env.observation_space, int(env.action_space.n), hidden).double()
    with torch.no_grad():  # sharpen the near-uniform initial policy so that the gradient is not tiny
        policy.net[-1].weight.mul_(100.0)
    return policy


def directional_check(env_id: str, gamma: float, directions: int = 3, **kwargs) -> None:
    """grad J . v against the central difference (J(theta + eps v) - J(theta - eps v)) / (2 eps)."""
    env = gym.make(env_id, **kwargs)
    model = exact.tabular_model(env)
    policy = double_policy(env)
    _, gradient = exact.exact_gradient(policy, model, gamma)
    theta = torch.nn.utils.parameters_to_vector(policy.parameters()).detach()
    generator = torch.Generator().manual_seed(1)
    eps = 1e-5
    for _ in range(directions):
        v = torch.randn(theta.shape, generator=generator, dtype=torch.float64)
        values = []
        for sign in (1.0, -1.0):
            torch.nn.utils.vector_to_parameters(theta + sign * eps * v, policy.parameters())
            with torch.no_grad():
                values.append(float(exact.objective(exact.policy_table(policy, model), model, gamma)))
        torch.nn.utils.vector_to_parameters(theta, policy.parameters())
        numeric = (values[0] - values[1]) / (2 * eps)
        assert float(gradient @ v) == pytest.approx(numeric, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize(
    ("env_id", "gamma", "kwargs"),
    [
        ("FrozenLake-v1", 0.99, {}),
        ("FrozenLake-v1", 1.0, {"map_name": "8x8"}),
        ("pglab/DelayedChain-v0", 0.9, {}),
        ("pglab/RelaxToy-v0", 1.0, {"n_values": 3}),
        ("CliffWalking-v1", 0.9, {}),  # no time limit: the linear-solve path
        ("CliffWalking-v1", 1.0, {"max_episode_steps": 30}),
    ],
)
def test_exact_gradient_matches_central_finite_differences(env_id, gamma, kwargs):
    directional_check(env_id, gamma, **kwargs)


def test_exact_gradient_matches_finite_differences_on_taxi():
    directional_check("Taxi-v4", 0.99, directions=1)


def test_bandit_gradient_is_the_closed_form():
    """dJ/db_a = pi_a (r_a - J) for the bias b of the policy's output layer; J = sum_a pi_a r_a."""
    env = gym.make("pglab/CategoricalBandit-v0")
    model = exact.tabular_model(env)
    policy = double_policy(env)
    value, gradient = exact.exact_gradient(policy, model, gamma=0.5)
    pi = exact.policy_table(policy, model)[0].detach()
    rewards = torch.tensor(env.unwrapped.rewards)
    assert value == pytest.approx(float(pi @ rewards), rel=1e-12)
    bias_gradient = gradient[-policy.n_actions :]  # the output bias is the last parameter
    torch.testing.assert_close(bias_gradient, pi * (rewards - pi @ rewards))


def test_objective_of_known_policies_on_the_chain():
    """Always forward on a slip-free chain of 5: the goal after 5 steps, then again after 5 more, ..."""
    env = gym.make("pglab/DelayedChain-v0", slip=0.0)
    model = exact.tabular_model(env)
    forward = torch.tensor([[0.0, 1.0]] * 5, dtype=torch.float64)
    back = torch.tensor([[1.0, 0.0]] * 5, dtype=torch.float64)
    assert float(exact.objective(forward, model, 1.0)) == pytest.approx(1.0)  # one goal within 20 steps
    assert float(exact.objective(forward, model, 0.9)) == pytest.approx(0.9**4)
    assert float(exact.objective(back, model, 1.0)) == pytest.approx(20 * 0.01)


def test_oracle_values_agree_with_the_objective():
    env = gym.make("FrozenLake-v1")
    model = exact.tabular_model(env)
    policy = double_policy(env)
    oracle = exact.oracle_critic(policy, model, 0.95)
    value, _ = exact.exact_gradient(policy, model, 0.95)
    start = torch.nn.functional.one_hot(torch.tensor([0]), 16).float()
    t0 = torch.zeros(1, dtype=torch.int64)
    assert float(oracle(start, t0)) == pytest.approx(value, rel=1e-5)
    pi = exact.policy_table(policy, model).detach()
    torch.testing.assert_close(oracle.q_values(start, t0)[0] @ pi[0].float(), oracle(start, t0)[0, 0])


def test_environment_without_a_model_is_refused():
    env = gym.make("CartPole-v1")
    assert not exact.has_model(env)
    with pytest.raises(EnvironmentSetupError, match=r"exposes no model"):
        exact.tabular_model(env)
