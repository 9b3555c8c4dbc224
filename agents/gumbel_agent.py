"""Gumbel-Softmax (relaxed-action) agents: the actor follows a learned critic's gradient.

The environment is not differentiable, so these agents learn a critic Q(s, a) and train the policy
by back-propagating -Q(s, y(theta, g)) into it, where y is a relaxation of the sampled action
(pglab.core.estimators). Three agents differ only in y:

* ``gumbel-softmax``  y = softmax((logits + g) / tau), the soft Concrete sample, goes into the critic.
* ``gumbel-st``       straight-through: the one-hot action forward, the soft sample's gradient backward.
* ``gumbel-rao``      Gumbel-Rao: straight-through with the soft gradient averaged over K Gumbel draws
                      conditioned on the action (K = ``rao_samples``).

A fourth agent reads the same critic without relaxing anything:

* ``all-action``      the expected policy gradient sum_a grad pi(a|s) Q(s, a) at every visited state
                      (Sutton et al. 2000; Mean Actor-Critic, Allen et al. 2017): no noise from the
                      sampled action given Q; its bias is the critic's alone.

The action executed in the environment is always the hard Gumbel-Max sample. The update draws the
noise g conditioned on that executed action (``conditional_gumbel_noise``): the policy has not changed
since the batch was collected, so (a, g | a) has exactly the joint law of (argmax, g) at collection
time, and y belongs to the action the critic was trained on, without storing noise in the rollout.

Critic (the choice, and why):

* Q(s, a) = v(s) + mlp([encoded s, a]), a one-hot a when trained and a relaxed one when the actor
  queries it; the same encoder, torso and MLP builders as the policy (pglab.core.policy). The state term takes
  the returns' common level so that the action network learns only the differences between actions:
  with a single mlp([s, a]) the actor on Acrobot never left the random policy's -500 in 300k steps
  (the critic's error on the level swamped the action differences); with v(s) it solves at ~200k.
* Trained by regression on the *hard* actions actually taken, towards TD(lambda) targets
  G^lambda_t = r_t + gamma * ((1 - lambda) V(s_{t+1}) + lambda G^lambda_{t+1}), with
  V(s) = sum_a pi(a|s) Q(s, a). These are computed by ``gae_advantages`` with V as the values
  (A_t + V(s_t) is the lambda-return). The first action of each target is the one taken and the rest
  follow the policy, so it is an on-policy target for Q(s_t, a_t) (expected SARSA(lambda)). Why not
  Q-learning's max: the actor needs Q of *its* policy, not of the greedy one. Why lambda = 0.8 rather
  than Monte-Carlo returns (lambda = 1, allowed): the actor follows the critic's *action gradient*,
  which must resolve small differences between actions on top of a large state value; lower-variance
  bootstrapped targets let the critic resolve them sooner (on CartPole, 0.95 -> 0.8 turned a seed whose
  policy collapsed into one that solves). Why not one-step TD: the batches are fresh on-policy
  windows, where longer returns are available and less biased than a young critic.
  The critic must fit each batch closely for the same reason: at lr 1e-3 that took 10 full-batch passes
  (5 lost CartPole seeds and Acrobot seed 2); the Gumbel presets take 3 passes at lr 3e-3, under half
  the cost, with the learning tables kept (4 at 2.5e-3 on 16 x 64 steps, or 3 passes of 4 shuffled
  minibatches at 1e-3, lost CartPole seeds). And
  the entropy bonus keeps every action visited: once the policy is nearly deterministic the critic
  never sees the other action, and the straight-through gradient through a saturated softmax vanishes.
  Cut tails (time limits, the rollout's end) are bootstrapped with V of the true next state, time
  limits only under ``truncation=bootstrap`` (pglab.core.agent.episode_ends). The critic reads the state
  alone: in a time-limited task the true Q depends on the steps left, so it averages over them; the
  oracle critic (``pglab grads --critic oracle``) is indexed by the steps left. Under
  ``discount_weighting`` the actor's per-step values are weighted by gamma^t (pglab.core.agent.step_weights).
* An optional target network (``target_decay`` > 0, Polyak averaging) supplies V for the targets;
  it is off by default because each batch is fresh on-policy data regressed for a few passes only,
  so the critic does not chase its own moving targets the way an off-policy replay learner does.
* The actor's loss is divided by the batch standard deviation of the targets
  (``normalize_advantages``), the analogue of REINFORCE's advantage scaling: the actor's step and
  the entropy bonus then do not depend on the reward scale.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import torch
from pglab.agents.gumbel import RELAXATIONS, GumbelPreset, QCriticPreset
from torch import nn

from pglab.core import estimators as est
from pglab.core.agent import (
    adam,
    episode_ends,
    objective_of,
    optimizer_step,
    step_weights,
)
from pglab.core.policy import PolicyNetwork, make_torso, mlp
from pglab.core.rollout import RolloutBuffer


class QCritic(nn.Module):
    """Q(s, a) = v(e) + mlp([e, action vector]) on the embedding e = torso(s); the action vector is
    one-hot or relaxed.

    Without hidden layers (``hidden_sizes=()``, the MinAtar paper's network) the action term is DQN's
    head instead, one value per action read at the action vector: head(e) . a. A linear function of
    [e, a] would give every state the same differences between actions, so the actor's gradient through
    it would push every state towards one action.

    The torso is the one the observation space calls for (pglab.core.policy.make_torso): nothing for flat
    observations (e = the features), one convolutional torso shared by both terms for images. The
    state term v carries the large common level of the returns, so the action network only has to
    learn the small differences between actions, which is all the actor's gradient reads.
    """

    def __init__(
        self, observation_space: gym.Space, n_actions: int, hidden_sizes: tuple[int, ...], activation: str
    ):
        super().__init__()
        self.n_actions = n_actions
        self.torso, width = make_torso(observation_space)
        self.state_value = mlp(width, hidden_sizes, 1, activation)
        self.per_action_head = not hidden_sizes
        if self.per_action_head:
            self.action_value = mlp(width, (), n_actions, activation)
        else:
            self.action_value = mlp(width + n_actions, hidden_sizes, 1, activation)

    def forward(
        self, features: torch.Tensor, actions: torch.Tensor, timesteps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Q for features (..., *F) and action vectors (..., n_actions); shape (...).

        ``timesteps`` is ignored: this critic reads the state alone, so in a time-limited task it
        averages over the steps left (the oracle, :class:`OracleQ`, reads them)."""
        embedding = self.torso(features)
        if self.per_action_head:
            return self.state_value(embedding).squeeze(-1) + (self.action_value(embedding) * actions).sum(-1)
        together = self.state_value(embedding) + self.action_value(torch.cat([embedding, actions], dim=-1))
        return together.squeeze(-1)

    def all_actions(self, features: torch.Tensor, timesteps: torch.Tensor | None = None) -> torch.Tensor:
        """Q(s, a) for every action a, shape (..., n_actions); ``timesteps`` ignored as in :meth:`forward`.

        The state term is evaluated once per state, not once per (state, action) pair as before: less
        work, and the same numbers bit for bit at the shapes of the presets' runs
        (tests/test_speed_equivalence.py; a matrix product's rounding may depend on its row count).
        """
        embedding = self.torso(features)
        if self.per_action_head:
            return self.state_value(embedding) + self.action_value(embedding)
        eye = torch.eye(self.n_actions, dtype=embedding.dtype, device=embedding.device)
        expanded = embedding.unsqueeze(-2).expand(*embedding.shape[:-1], self.n_actions, embedding.shape[-1])
        per_action = self.action_value(torch.cat([expanded, eye.expand(*embedding.shape[:-1], -1, -1)], dim=-1))
        return (self.state_value(embedding).unsqueeze(-2) + per_action).squeeze(-1)


class OracleQ(nn.Module):
    """An exact Q table behind the critic's interface: Q(s, y) = sum_a y_a Q_{H-t}(s, a), with the steps
    left H - t read from ``timesteps`` (pglab.diagnostics.exact.OracleCritic)."""

    def __init__(self, oracle: nn.Module):
        super().__init__()
        self.oracle = oracle

    def forward(self, features: torch.Tensor, actions: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return (self.oracle.q_values(features, timesteps).to(actions.dtype) * actions).sum(-1)

    def all_actions(self, features: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.oracle.q_values(features, timesteps)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Let gradients flow *through* ``module`` without computing gradients *for* its parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class CriticActor:
    """An actor that follows a learned Q(s, a) (the critic of this module's docstring).

    Subclasses say only how the actor reads the critic: :meth:`actor_values` returns, per step, the
    value whose batch mean the actor ascends, with gradients into the policy only.
    """

    def __init__(self, policy: PolicyNetwork, preset: QCriticPreset):
        self.policy = policy
        self.preset = preset
        self.env_steps = 0
        self.optimizer = adam(policy.parameters(), preset.lr)
        self.critic = QCritic(
            policy.encoder.space, policy.n_actions, preset.critic_hidden_sizes, preset.activation
        )
        self.critic_optimizer = adam(self.critic.parameters(), preset.critic_lr)
        self.target_critic: QCritic | None = None
        if preset.target_decay > 0:
            self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    def act(self, features: torch.Tensor) -> torch.Tensor:
        return est.gumbel_max_sample(self.policy.fast_logits(features))

    def actor_values(self, batch: RolloutBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-step values the actor ascends, with gradients into the policy only; the policy's logits)."""
        raise NotImplementedError

    def charts(self) -> dict[str, float]:
        """Extra ``charts/*`` metrics of the actor, read before the update advances ``env_steps``."""
        return {}

    def objective(self) -> str:
        """The objective the estimate is unbiased for, in words (shown by ``pglab grads``): with the exact
        Q (which knows the steps left) that of the score-function agents; a learned Q adds its error."""
        if isinstance(self.critic, OracleQ):
            return objective_of(self.preset, critic=False)
        return f"none exactly: biased by the learned critic's error; approximates {objective_of(self.preset, True)}"

    def weighted_actor_values(self, batch: RolloutBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`actor_values` times gamma^t under ``discount_weighting`` (pglab.core.agent.step_weights)."""
        values, logits = self.actor_values(batch)
        weights = step_weights(batch, self.preset)
        return (values if weights is None else values * weights), logits

    def _targets(self, batch: RolloutBuffer) -> torch.Tensor:
        """TD(lambda) targets for Q(s_t, a_t) of the taken actions, (T, N)."""
        p = self.preset
        critic = self.critic if self.target_critic is None else self.target_critic
        terminated, truncated = episode_ends(batch, p)
        with torch.no_grad():
            features = batch.all_features()
            probs = torch.softmax(self.policy(features), dim=-1)
            v = (probs * critic.all_actions(features, batch.all_timesteps())).sum(-1)
            advantages = est.gae_advantages(
                batch.rewards, v[:-1], v[1:], terminated, truncated, p.gamma, p.critic_lambda
            )
        return advantages + v[:-1]

    def policy_loss(self, batch: RolloutBuffer) -> torch.Tensor:
        """-mean of :meth:`actor_values` over valid steps, without the entropy bonus or the scaling: minus
        its gradient is this agent's estimate of grad J (read by ``pglab grads``); it fits no critic."""
        q, _ = self.weighted_actor_values(batch)
        return -est.masked_mean(q, batch.valid)

    def use_oracle_critic(self, critic: nn.Module) -> None:
        """Judge with an exact critic (pglab.diagnostics.exact.OracleCritic): Q(s, y) = sum_a y_a Q(s, a), linear in
        y and exact at one-hot y, so what remains of the bias is the actor's own."""
        self.critic = OracleQ(critic)

    def update(self, batch: RolloutBuffer) -> dict[str, float]:
        p = self.preset
        charts = self.charts()
        targets = self._targets(batch)
        metrics = self._fit_critic(batch, targets) if p.critic_update == "before" else {}
        q, logits = self.weighted_actor_values(batch)
        scale = 1.0
        if p.normalize_advantages != "off":
            scale = float(est.masked_std(targets, batch.valid)) + 1e-8
        actor_loss = -est.masked_mean(q, batch.valid) / scale
        entropy = est.masked_mean(est.categorical_entropy(logits), batch.valid)
        grad_norm = optimizer_step(
            self.optimizer, actor_loss - p.ent_coef * entropy, self.policy.parameters(), p.max_grad_norm
        )

        if p.critic_update == "after":  # targets of the policy that collected the batch
            metrics = self._fit_critic(batch, targets)
        if self.target_critic is not None:
            with torch.no_grad():
                for target, source in zip(self.target_critic.parameters(), self.critic.parameters(), strict=True):
                    target.lerp_(source, 1.0 - p.target_decay)
        self.env_steps += batch.num_steps * batch.num_envs
        return {
            **metrics,
            "losses/policy_loss": actor_loss.item(),
            "losses/entropy": entropy.item(),
            "grads/policy_grad_norm": grad_norm,
            **charts,
        }

    def _fit_critic(self, batch: RolloutBuffer, targets: torch.Tensor) -> dict[str, float]:
        dtype = batch.features.dtype if batch.features.is_floating_point() else torch.float32  # images: uint8/bool
        taken = nn.functional.one_hot(batch.actions, self.policy.n_actions).to(dtype)
        for _ in range(self.preset.critic_epochs):
            q = self.critic(batch.features, taken, batch.timesteps)
            q_loss = est.masked_mean((q - targets) ** 2, batch.valid)
            grad_norm = optimizer_step(
                self.critic_optimizer, q_loss, self.critic.parameters(), self.preset.max_grad_norm
            )
        return {"losses/q_loss": q_loss.item(), "grads/critic_grad_norm": grad_norm}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "env_steps": self.env_steps,
        }
        if self.target_critic is not None:
            state["target_critic"] = self.target_critic.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.critic.load_state_dict(state["critic"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.env_steps = int(state["env_steps"])
        if self.target_critic is not None:
            self.target_critic.load_state_dict(state["target_critic"])


class GumbelAgent(CriticActor):
    """The relaxed-action actor-critic; ``relaxation`` is one of soft, st, rao."""

    def __init__(self, policy: PolicyNetwork, preset: GumbelPreset, relaxation: str):
        if relaxation not in RELAXATIONS:
            raise ValueError(f"unknown relaxation {relaxation!r}; choose one of {RELAXATIONS}")
        super().__init__(policy, preset)
        self.relaxation = relaxation
        self.schedule = preset.schedule()

    def relaxed_actions(self, logits: torch.Tensor, actions: torch.Tensor, tau: float) -> torch.Tensor:
        """The relaxation y(theta, g) of the taken ``actions``, with g drawn given those actions."""
        if self.relaxation == "soft":
            return est.relaxed_sample(logits, est.conditional_gumbel_noise(logits, actions)[0], tau)
        draws = self.preset.rao_samples if self.relaxation == "rao" else 1
        return est.gumbel_rao_sample(logits, actions, tau, draws)

    def actor_values(self, batch: RolloutBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s, y(theta, g)) per step at the current temperature."""
        logits = self.policy(batch.features)
        y = self.relaxed_actions(logits, batch.actions, self.schedule(self.env_steps))
        with frozen(self.critic):
            return self.critic(batch.features, y, batch.timesteps), logits

    def charts(self) -> dict[str, float]:
        return {"charts/tau": self.schedule(self.env_steps)}

    def objective(self) -> str:
        """Biased for every objective: the relaxation (tau > 0), and a learned critic's error."""
        return f"none: the relaxation is biased at tau > 0; approximates {objective_of(self.preset, critic=False)}"


class AllActionAgent(CriticActor):
    """The all-action (expected) policy gradient: sum_a grad pi(a|s) Q(s, a) at every visited state."""

    def actor_values(self, batch: RolloutBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        """sum_a pi(a|s) Q(s, a) per step, Q held constant."""
        logits = self.policy(batch.features)
        with torch.no_grad():
            q = self.critic.all_actions(batch.features, batch.timesteps)
        return est.all_action_values(logits, q), logits


def build_agent(
    policy: PolicyNetwork,
    observation_space: gym.Space,
    action_space: gym.spaces.Discrete,
    preset: GumbelPreset,
    *,
    relaxation: str,
) -> GumbelAgent:
    """The builder of the Gumbel AgentSpecs (pglab.agents.gumbel); ``relaxation`` comes from the spec."""
    return GumbelAgent(policy, preset, relaxation)


def build_all_action(
    policy: PolicyNetwork, observation_space: gym.Space, action_space: gym.spaces.Discrete, preset: QCriticPreset
) -> AllActionAgent:
    return AllActionAgent(policy, preset)
