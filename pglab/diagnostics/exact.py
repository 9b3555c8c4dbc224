"""Exact objectives and policy gradients for environments that expose their model.

Gymnasium's toy-text environments (FrozenLake-v1, Taxi-v4, CliffWalking-v1) and pglab's own envs/
publish their model: ``env.unwrapped.P[s][a]`` lists ``(probability, next_state, reward, terminated)``
and ``env.unwrapped.initial_state_distrib`` is the distribution of the first state. Any environment,
plug-ins included, that exposes the same two attributes on a ``Discrete`` observation space gets an
exact gradient here.

J(theta) = E[sum_{t < H} gamma^t r_t] is computed by differentiable policy evaluation: the state
distribution of the episodes still running is pushed forward through the policy's pi over *all*
states for H steps (H = the environment's time limit), and ``torch.autograd`` differentiates the
result. Without a time limit the occupancy solves a linear system instead (gamma < 1, or a policy that
terminates surely). Everything runs in float64 so that finite differences can check it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pglab.core.policy import PolicyNetwork
from pglab.errors import EnvironmentSetupError


@dataclass(frozen=True)
class TabularModel:
    """An environment's model as dense tensors (float64)."""

    transitions: torch.Tensor  # (S, A, S): probability of reaching s' *without* terminating
    rewards: torch.Tensor  # (S, A): expected immediate reward
    initial: torch.Tensor  # (S,): distribution of the first state
    observations: np.ndarray  # (S,): the observation the environment emits in each state
    horizon: int | None  # the time limit, None when episodes are not truncated

    @property
    def n_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_actions(self) -> int:
        return self.rewards.shape[1]


def has_model(env: gym.Env) -> bool:
    """Whether ``env`` exposes a toy-text model that :func:`tabular_model` can read."""
    inner = env.unwrapped
    return (
        hasattr(inner, "P")
        and hasattr(inner, "initial_state_distrib")
        and isinstance(inner.observation_space, gym.spaces.Discrete)
        and isinstance(inner.action_space, gym.spaces.Discrete)
    )


def tabular_model(env: gym.Env, horizon: int | None = None) -> TabularModel:
    """Read ``env.unwrapped.P`` into dense tensors; ``horizon`` defaults to the env's time limit."""
    if not has_model(env):
        raise EnvironmentSetupError(
            f"{env.spec.id if env.spec else env} exposes no model: an exact gradient needs env.unwrapped.P, "
            "env.unwrapped.initial_state_distrib and Discrete observation and action spaces"
        )
    inner = env.unwrapped
    n_states, n_actions = int(inner.observation_space.n), int(inner.action_space.n)
    transitions = np.zeros((n_states, n_actions, n_states))
    rewards = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            for probability, next_state, reward, terminated in inner.P[s][a]:
                rewards[s, a] += probability * reward
                if not terminated:
                    transitions[s, a, int(next_state)] += probability
    if horizon is None and env.spec is not None:
        horizon = env.spec.max_episode_steps
    return TabularModel(
        transitions=torch.from_numpy(transitions),
        rewards=torch.from_numpy(rewards),
        initial=torch.as_tensor(np.asarray(inner.initial_state_distrib, dtype=np.float64)),
        observations=np.arange(n_states) + int(inner.observation_space.start),
        horizon=horizon,
    )


def policy_table(policy: PolicyNetwork, model: TabularModel) -> torch.Tensor:
    """pi(a|s) for every state, (S, A), float64 and differentiable in the policy's parameters."""
    if policy.n_actions != model.n_actions:
        raise EnvironmentSetupError(f"the policy has {policy.n_actions} actions, the model {model.n_actions}")
    dtype = next(policy.parameters()).dtype
    features = policy.encoder(model.observations).to(dtype)
    return torch.softmax(policy(features).double(), dim=-1)


def objective(pi: torch.Tensor, model: TabularModel, gamma: float) -> torch.Tensor:
    """J = E[sum_{t < H} gamma^t r_t] for the policy table ``pi`` (S, A); differentiable in ``pi``."""
    step_rewards = (pi * model.rewards).sum(-1)  # r_pi(s)
    step_transitions = torch.einsum("sa,sax->sx", pi, model.transitions)  # P_pi(s -> s'), no terminals
    if model.horizon is None:
        # occupancy d = mu + gamma P_pi^T d, summed over all time
        eye = torch.eye(model.n_states, dtype=pi.dtype)
        occupancy = torch.linalg.solve(eye - gamma * step_transitions.T, model.initial)
        return occupancy @ step_rewards
    running = model.initial  # probability of being in s at step t with the episode still running
    total = torch.zeros((), dtype=pi.dtype)
    for t in range(model.horizon):
        total = total + gamma**t * (running @ step_rewards)
        running = running @ step_transitions
    return total


def exact_gradient(policy: PolicyNetwork, model: TabularModel, gamma: float) -> tuple[float, torch.Tensor]:
    """(J(theta), grad J(theta) flattened over ``policy.parameters()`` in their order), by autograd."""
    value = objective(policy_table(policy, model), model, gamma)
    grads = torch.autograd.grad(value, list(policy.parameters()))
    return float(value.detach()), torch.cat([g.reshape(-1) for g in grads]).double()


def weight_one_gradient(policy: PolicyNetwork, model: TabularModel, gamma: float) -> torch.Tensor:
    """E[sum_{t<H} grad log pi(a_t|s_t) G_t], the expectation of the common weight-1 score-function
    estimate (any state baseline leaves it unchanged), flattened over ``policy.parameters()``.

    By the tower rule it is sum_t sum_s d_t(s) sum_a grad pi(a|s) Q_{H-t}(s, a), with d_t the state
    distribution of the episodes still running at step t (undiscounted) and Q indexed by the steps left:
    the gradient of J only when gamma = 1. Compared with :func:`exact_gradient` it gives the exact bias
    of that estimator (Nota & Thomas 2020), with no sampling noise. Needs a time limit.
    """
    if model.horizon is None:
        raise EnvironmentSetupError("the weight-1 expectation is computed over a time limit; give the model one")
    pi = policy_table(policy, model)
    q = action_values(pi, model, gamma)
    step_transitions = torch.einsum("sa,sax->sx", pi.detach(), model.transitions)
    running, total = model.initial, torch.zeros((), dtype=pi.dtype)
    for t in range(model.horizon):
        total = total + running @ (pi * q[model.horizon - t]).sum(-1)
        running = running @ step_transitions
    grads = torch.autograd.grad(total, list(policy.parameters()))
    return torch.cat([g.reshape(-1) for g in grads]).double()


def action_values(pi: torch.Tensor, model: TabularModel, gamma: float) -> torch.Tensor:
    """Q_k(s, a) indexed by the steps to go k, shape (H + 1, S, A); (1, S, A) without a time limit.

    In a task with time limit H the true Q of step t is Q_{H-t}: Q_0 = 0 (nothing is left), and
    Q_k = r + gamma P V_{k-1} with V_k(s) = sum_a pi(a|s) Q_k(s, a). Without a time limit the single
    table is the stationary Q = r + gamma P V, V solving the linear system (gamma < 1, or a policy that
    terminates surely).
    """
    pi = pi.detach()
    step_transitions = torch.einsum("sa,sax->sx", pi, model.transitions)
    step_rewards = (pi * model.rewards).sum(-1)
    if model.horizon is None:
        eye = torch.eye(model.n_states, dtype=pi.dtype)
        values = torch.linalg.solve(eye - gamma * step_transitions, step_rewards)
        return (model.rewards + gamma * model.transitions @ values).unsqueeze(0)
    tables = [torch.zeros_like(model.rewards)]
    values = torch.zeros(model.n_states, dtype=pi.dtype)
    for _ in range(model.horizon):
        tables.append(model.rewards + gamma * model.transitions @ values)
        values = (pi * tables[-1]).sum(-1)
    return torch.stack(tables)


class OracleCritic(nn.Module):
    """The exact V and Q of a frozen policy, as a critic reading one-hot state features and the time.

    ``forward(features, timesteps)`` gives V_{H-t}(s) with a trailing axis of 1, the shape of a learned
    value network's output, so an agent can swap it in for its own critic; ``q_values(features,
    timesteps)`` gives Q_{H-t}(s, .). ``timesteps`` are the steps since the episode start (a rollout
    buffer's ``timesteps``/``all_timesteps()``): in a time-limited task the value depends on the steps
    left, and at the limit (t = H) it is 0, so bootstrapping a time-limit cut with the oracle adds
    nothing. Use it to separate an estimator's own bias from its critic's.
    """

    def __init__(self, q: torch.Tensor, pi: torch.Tensor, horizon: int | None):
        super().__init__()
        self.horizon = horizon
        self.register_buffer("q", q.float())  # (K, S, A), K = H + 1 steps-to-go tables (1 without a limit)
        self.register_buffer("v", (pi.detach() * q).sum(-1).float())  # (K, S)

    def _index(self, features: torch.Tensor, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(steps to go, state) per row of ``features``."""
        if features.shape[-1] != self.v.shape[-1]:
            raise ValueError(f"the oracle reads one-hot states of width {self.v.shape[-1]}; got {features.shape[-1]}")
        if timesteps.shape != features.shape[:-1]:
            raise ValueError(f"timesteps {tuple(timesteps.shape)} do not match features {tuple(features.shape)}")
        if self.horizon is None:
            to_go = torch.zeros_like(timesteps)
        else:
            to_go = (self.horizon - timesteps).clamp(0, self.horizon)
        return to_go.long(), features.argmax(-1)

    def forward(self, features: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        to_go, state = self._index(features, timesteps)
        return self.v[to_go, state].unsqueeze(-1)

    def q_values(self, features: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        to_go, state = self._index(features, timesteps)
        return self.q[to_go, state]


def oracle_critic(policy: PolicyNetwork, model: TabularModel, gamma: float) -> OracleCritic:
    """The :class:`OracleCritic` of ``policy`` on ``model``."""
    with torch.no_grad():
        pi = policy_table(policy, model)
        return OracleCritic(action_values(pi, model, gamma), pi, model.horizon)
