"""The objective-consistent estimator fields against exact gradients, by enumerating every trajectory.

On a short chain every trajectory of an H-step episode can be listed with its probability, so the
*expectation* of an agent's estimate is computed exactly (no sampling noise): the sum over trajectories
of probability times the estimate ``pglab grads`` reads from the agent (``policy_loss`` through
``estimate_gradient``, per episode). With ``discount_weighting`` and ``truncation=terminal`` it must equal
grad J of J = E[sum_{t<H} gamma^t r_t] (pglab.diagnostics.exact) for any gamma, slip and state baseline; with the
defaults it must not.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pglab.core.agent import resolve_preset
from pglab.core.environment import load_env_plugins
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from pglab.core.rollout import RolloutBuffer
from pglab.diagnostics import exact
from pglab.diagnostics.grads import estimate_gradient

load_env_plugins()
HORIZON = 3


def chain(slip: float) -> gym.Env:
    return gym.make("pglab/DelayedChain-v0", n=2, slip=slip, max_episode_steps=HORIZON)


def trajectories(env: gym.Env, pi: np.ndarray):
    """Every trajectory of one episode: (probability, states, actions, rewards, terminated, final state)."""
    model = env.unwrapped.P
    stack = [(1.0, [0], [], [], False)]
    while stack:
        probability, states, actions, rewards, terminated = stack.pop()
        if terminated or len(actions) == HORIZON:
            yield probability, states, actions, rewards, terminated
            continue
        s = states[-1]
        for a in (0, 1):
            for p, s_next, r, term in model[s][a]:
                if p * pi[s, a] > 0:
                    stack.append((probability * p * pi[s, a], [*states, s_next], [*actions, a], [*rewards, r], term))


def episode_batch(encoder, states, actions, rewards, terminated) -> RolloutBuffer:
    length = len(actions)
    last = torch.zeros(length, 1, dtype=torch.bool)
    last[-1] = True
    return RolloutBuffer(
        features=encoder(np.asarray(states[:-1])).unsqueeze(1),
        actions=torch.tensor(actions).unsqueeze(1),
        rewards=torch.tensor(rewards, dtype=torch.float32).unsqueeze(1),
        terminated=last & terminated,
        truncated=last & (not terminated),
        valid=torch.ones(length, 1, dtype=torch.bool),
        timesteps=torch.arange(length).unsqueeze(1),
        next_features=encoder(np.asarray(states[-1:])),
        next_timesteps=torch.tensor([length]),
    )


def expected_estimate(
    agent_name: str, gamma: float, slip: float, seed: int, oracle: bool = False, **fields
) -> tuple[torch.Tensor, ...]:
    """(E[estimate] over every trajectory, exact grad J, exact E[weight-1 estimate]) for ``agent_name`` on
    the chain; ``oracle``: with the exact critic in place of the agent's own."""
    env = chain(slip)
    spec = get_agent(agent_name)
    overrides = {"gamma": gamma, "num_envs": 1, "normalize_advantages": "off", **fields}
    preset = resolve_preset(spec.preset, "pglab/DelayedChain-v0", overrides)
    torch.manual_seed(seed)
    policy = PolicyNetwork(env.observation_space, 2, (8,))
    with torch.no_grad():
        policy.net[-1].weight.mul_(20.0)  # a policy far from uniform, different in every state
    agent = spec.build(policy, env.observation_space, env.action_space, preset)
    model = exact.tabular_model(env)
    if oracle:
        agent.use_oracle_critic(exact.oracle_critic(policy, model, gamma))
    _, gradient = exact.exact_gradient(policy, model, gamma)
    pi = exact.policy_table(policy, model).detach().numpy()
    expected = torch.zeros_like(gradient)
    for probability, states, actions, rewards, terminated in trajectories(env, pi):
        batch = episode_batch(policy.encoder, states, actions, rewards, terminated)
        expected += probability * estimate_gradient(agent, batch) * len(actions)
    return expected, gradient, exact.weight_one_gradient(policy, model, gamma)


CONSISTENT = {"discount_weighting": True, "truncation": "terminal", "batch_episodes": 1}


def assert_equal_gradients(expected: torch.Tensor, gradient: torch.Tensor, *_: torch.Tensor) -> None:
    torch.testing.assert_close(expected, gradient, rtol=0, atol=2e-5 * float(gradient.norm()) + 1e-7)


@settings(max_examples=6, deadline=None)
@given(
    gamma=st.floats(0.3, 1.0),
    slip=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 1000),
    agent=st.sampled_from(["reinforce", "reinforce-value"]),
)
def test_consistent_fields_make_the_score_function_exact_in_expectation(gamma, slip, seed, agent):
    """reinforce-value's critic here was never trained: any state baseline keeps the estimate unbiased."""
    assert_equal_gradients(*expected_estimate(agent, gamma, slip, seed, **CONSISTENT))


def test_weight_one_scores_miss_the_discounted_gradient_by_what_exact_says():
    """The default weight 1 at gamma < 1: its expectation is not grad J, and pglab.diagnostics.exact.weight_one_gradient
    (which the bias benchmark tables) computes it exactly."""
    fields = {**CONSISTENT, "discount_weighting": False}
    expected, gradient, weight_one = expected_estimate("reinforce", 0.7, 0.2, 0, **fields)
    assert float((expected - gradient).norm()) > 0.05 * float(gradient.norm())
    assert_equal_gradients(expected, weight_one)


def test_bootstrapping_a_time_limit_with_a_state_critic_misses_the_finite_horizon_gradient():
    """The untrained critic's V(s) added at the time limit is reward beyond the horizon, and whether an
    episode reaches the limit depends on its actions: a bias that terminal removes (test above)."""
    fields = {**CONSISTENT, "truncation": "bootstrap"}
    expected, gradient, _ = expected_estimate("reinforce-value", 1.0, 0.2, 0, **fields)
    assert float((expected - gradient).norm()) > 0.05 * float(gradient.norm())


@pytest.mark.parametrize("truncation", ["bootstrap", "terminal"])
def test_the_exact_oracle_critic_knows_the_steps_left(truncation):
    """With V indexed by steps to go, V = 0 at the limit: bootstrap and terminal agree, both exact; with
    the exact V even GAE(lambda < 1) advantages are unbiased."""
    fields = {**CONSISTENT, "truncation": truncation, "gae_lambda": 0.5}
    assert_equal_gradients(*expected_estimate("reinforce-value", 0.9, 0.2, 0, oracle=True, **fields))


# ---------------------------------------------------------------------------------------------
# Exact J of the lab's envs against closed forms and independent Monte Carlo
# ---------------------------------------------------------------------------------------------


def random_policy_table(n_states: int, n_actions: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(n_states, n_actions, generator=generator, dtype=torch.float64), -1)


def monte_carlo_return(env: gym.Env, pi: np.ndarray, gamma: float, episodes: int, seed: int) -> tuple[float, float]:
    """(mean, standard error) of sum_t gamma^t r_t over ``episodes`` episodes played in ``env`` itself."""
    rng = np.random.default_rng(seed)
    totals = np.empty(episodes)
    for i in range(episodes):
        state, _ = env.reset(seed=int(rng.integers(2**31)))
        total, discount, done = 0.0, 1.0, False
        while not done:
            state, reward, terminated, truncated, _ = env.step(int(rng.choice(pi.shape[1], p=pi[int(state)])))
            total += discount * reward
            discount *= gamma
            done = terminated or truncated
        totals[i] = total
    return float(totals.mean()), float(totals.std(ddof=1)) / episodes**0.5


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_chain_objective_matches_monte_carlo(gamma):
    env = gym.make("pglab/DelayedChain-v0")  # n = 5, slip 0.1, time limit 20
    pi = random_policy_table(5, 2, seed=3)
    value = float(exact.objective(pi, exact.tabular_model(env), gamma))
    mean, se = monte_carlo_return(env, pi.numpy(), gamma, episodes=3000, seed=0)
    assert abs(value - mean) < 4 * se, (value, mean, se)


def test_bandit_objective_matches_monte_carlo_with_reward_noise():
    env = gym.make("pglab/CategoricalBandit-v0", noise_std=0.5)
    pi = random_policy_table(1, 4, seed=0)
    value = float(exact.objective(pi, exact.tabular_model(env), 0.5))
    assert value == pytest.approx(float(pi[0] @ torch.tensor([0.0, 0.2, 0.5, 1.0], dtype=torch.float64)))
    mean, se = monte_carlo_return(env, pi.numpy(), 0.5, episodes=4000, seed=1)
    assert abs(value - mean) < 4 * se, (value, mean, se)


@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_untimed_objective_and_values_are_the_limit_of_long_horizons(gamma):
    """Without a time limit J solves a linear system in gamma: it must equal the H-step sum as H grows
    (gamma^400 is far below float64's resolution), and the stationary Q the H-steps-to-go table."""
    env = gym.make("pglab/DelayedChain-v0")
    timed = dataclasses.replace(exact.tabular_model(env), horizon=400)
    untimed = dataclasses.replace(timed, horizon=None)
    pi = random_policy_table(5, 2, seed=1)
    assert float(exact.objective(pi, untimed, gamma)) == pytest.approx(float(exact.objective(pi, timed, gamma)))
    q_timed, q_untimed = exact.action_values(pi, timed, gamma), exact.action_values(pi, untimed, gamma)
    assert q_timed.shape == (401, 5, 2) and q_untimed.shape == (1, 5, 2)
    torch.testing.assert_close(q_untimed[0], q_timed[-1])
    torch.testing.assert_close(q_timed[0], torch.zeros(5, 2, dtype=torch.float64))  # nothing left at the limit
