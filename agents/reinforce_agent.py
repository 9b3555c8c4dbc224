"""REINFORCE (score-function) agents with five baselines.

All five share one update: the score-function surrogate of pglab.core.estimators on advantages
``A_t = G_t - b_t``; they differ only in the baseline b_t:

* ``reinforce``        b = 0.
* ``reinforce-ema``    b = a running (EMA) mean of past batches' returns; updated after use, so it
                       never depends on the actions it judges.
* ``reinforce-value``  b = V(s_t), a separate value network regressed on the returns. With a critic,
                       cut episode tails (time limits, the end of a rollout) are bootstrapped with V,
                       and ``gae_lambda < 1`` turns the advantages into GAE(lambda).
* ``reinforce-optimal`` b = b*(s) = E[|grad log pi|^2 G | s] / E[|grad log pi|^2 | s], the baseline of s
                       that minimises the estimate's variance (Weaver & Tao 2001; Greensmith, Bartlett &
                       Baxter 2004), learned by regressing a network on the returns with the weights
                       |grad log pi(a|s)|^2 (per-sample score norms by torch.func, or in closed form
                       for the output layer alone); returns are not bootstrapped (b is not V).
* ``reinforce-rloo``   b = the mean return-to-go of the *other* environments at the same rollout step
                       (leave-one-out over the batch's parallel trajectories): independent of the
                       action judged, hence unbiased for whatever the returns target. It does not
                       undo a window cut: a return cut at the window's end is a shorter-horizon
                       return whose bias depends on the action, and subtracting other trajectories'
                       returns leaves it in place. Needs num_envs >= 2.

Without a critic (the other three) a cut tail counts only the rewards seen (see pglab.core.estimators).

The objective each targets (``objective()``, from pglab.core.agent.objective_of): with the shared preset
fields ``batch_episodes = B`` (complete episodes), ``discount_weighting = true`` (or gamma = 1) and
``truncation = terminal``, every one of the five is unbiased for J = E[sum_{t<H} gamma^t r_t] from
the start state, whatever state baseline it has learned (reinforce-value with ``gae_lambda = 1``).
The defaults (windows, weight 1, bootstrap) keep the common practice, which is unbiased for no
objective when gamma < 1 or windows cut episodes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from pglab.core import estimators as est
from pglab.core.agent import (
    CriticPreset,
    Preset,
    adam,
    episode_ends,
    objective_of,
    optimizer_step,
    step_weights,
)
from pglab.core.policy import PolicyNetwork, network
from pglab.core.rollout import RolloutBuffer
from pglab.errors import ConfigError


class ReinforceAgent:
    """The score-function agent; ``baseline`` is one of none, ema, value, rloo, optimal."""

    def __init__(self, policy: PolicyNetwork, preset: Preset, baseline: str):
        self.policy = policy
        self.preset = preset
        self.baseline = baseline
        self.optimizer = adam(policy.parameters(), preset.lr)
        self.running_return: float | None = None
        self._next_running_return: float | None = None  # the EMA after the batch being judged, until committed
        self.critic: torch.nn.Module | None = None
        self.critic_reads_time = False  # an oracle critic knows the steps left: it reads batch.timesteps
        if baseline in ("value", "optimal"):
            assert isinstance(preset, CriticPreset)
            self.critic = network(policy.encoder.space, preset.critic_hidden_sizes, 1, preset.activation)
            self.critic_optimizer = adam(self.critic.parameters(), preset.critic_lr)

    def act(self, features: torch.Tensor) -> torch.Tensor:
        return est.gumbel_max_sample(self.policy.fast_logits(features))

    def objective(self) -> str:
        """The objective this agent's estimate is unbiased for, in words (shown by ``pglab grads``).

        An oracle critic knows the steps left (V = 0 at the time limit), so bootstrapping with it adds
        nothing beyond the horizon and GAE(lambda) with it stays unbiased; a learned V does neither. The
        optimal baseline never bootstraps.
        """
        learned = self.baseline == "value" and not self.critic_reads_time
        if learned and self.preset.gae_lambda < 1.0:
            return "none: GAE(lambda < 1) advantages are biased unless V is exact (set gae_lambda=1)"
        return objective_of(self.preset, critic=learned)

    def _critic_values(self, features: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The critic's values of ``features`` (the oracle also reads the steps since the episode start)."""
        assert self.critic is not None
        with torch.no_grad():
            values = self.critic(features, timesteps) if self.critic_reads_time else self.critic(features)
        return values.squeeze(-1)

    def _first_critic_pass(self, batch: RolloutBuffer) -> torch.Tensor | None:
        """The learned V(s)'s pass over the batch, with its graph, when ``update`` can use it twice, else None.

        Fitted after the actor step, the critic is the same network when it judges the actions and when
        its first regression pass starts (the actor step leaves it alone): one forward pass serves both,
        its values detached for the advantages. On MinAtar that pass is a tenth of an update.
        """
        learned = self.baseline == "value" and not self.critic_reads_time
        if not learned or self.preset.critic_update != "after":
            return None
        assert self.critic is not None
        return self.critic(batch.features).squeeze(-1)

    def _advantages(
        self, batch: RolloutBuffer, first_pass: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(advantages, value targets or None); ``first_pass``: :meth:`_first_critic_pass`'s values of the batch."""
        p = self.preset
        terminated, truncated = episode_ends(batch, p)
        if self.baseline == "value":
            if first_pass is None:
                v = self._critic_values(batch.all_features(), batch.all_timesteps())
            else:
                last = self._critic_values(batch.next_features, batch.next_timesteps).unsqueeze(0)
                v = torch.cat([first_pass.detach(), last])
            adv = est.gae_advantages(batch.rewards, v[:-1], v[1:], terminated, truncated, p.gamma, p.gae_lambda)
            return adv, adv + v[:-1]
        returns = est.discounted_returns(batch.rewards, terminated, truncated, torch.zeros_like(batch.rewards), p.gamma)
        if self.baseline == "ema":
            baseline = 0.0 if self.running_return is None else self.running_return
            self._next_running_return = est.ema(
                self.running_return, float(est.masked_mean(returns, batch.valid)), p.ema_decay
            )
            return returns - baseline, None
        if self.baseline == "rloo":
            return returns - est.leave_one_out_baseline(returns, dim=1, mask=batch.valid), None
        if self.baseline == "optimal":
            return returns - self._critic_values(batch.features, batch.timesteps), returns
        return returns, None

    def _surrogate(
        self, batch: RolloutBuffer, first_pass: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(score-function loss, logits, value targets or None) for one batch."""
        p = self.preset
        advantages, value_targets = self._advantages(batch, first_pass)
        if p.normalize_advantages != "off":
            advantages = est.normalize_advantages(
                advantages, batch.valid, center=p.normalize_advantages == "standardize"
            )
        logits = self.policy(batch.features)
        log_probs = est.categorical_log_prob(logits, batch.actions)
        loss = est.score_function_loss(log_probs, advantages, batch.valid, step_weights(batch, p))
        return loss, logits, value_targets

    def policy_loss(self, batch: RolloutBuffer) -> torch.Tensor:
        """The surrogate ``update`` minimises, without the entropy bonus: minus its gradient is the
        agent's estimate of grad J. ``pglab grads`` differentiates it (pglab.diagnostics.grads.estimate_gradient);
        it fits no critic and steps no optimiser, but advances the EMA baseline as training would."""
        loss = self._surrogate(batch)[0]
        self._advance_baseline()
        return loss

    def _advance_baseline(self) -> None:
        """The EMA baseline takes in the judged batch's returns: only once the update is known to be finite."""
        if self.baseline == "ema":
            self.running_return = self._next_running_return

    def use_oracle_critic(self, critic: torch.nn.Module) -> None:
        """Judge with ``critic(features, timesteps)`` (pglab.diagnostics.exact.OracleCritic: the exact V with the steps
        left) instead of the learned one; the optimal baseline reads its exact Q into b*(s) (see
        :class:`OptimalBaselineOracle`)."""
        if self.critic is None:
            raise ConfigError(f"REINFORCE with baseline {self.baseline!r} has no critic to replace")
        self.critic = OptimalBaselineOracle(critic, self) if self.baseline == "optimal" else critic
        self.critic_reads_time = True

    def score_norms(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """|grad log pi(a|s)|^2 per step, over the parameters the preset's ``score_norm`` names."""
        if self.preset.score_norm == "full":
            return est.score_sq_norms(self.policy, features, actions)
        with torch.no_grad():
            hidden = self.policy.net[:-1](features)
            return est.output_layer_score_sq_norms(hidden, self.policy.net[-1](hidden), actions)

    def update(self, batch: RolloutBuffer) -> dict[str, float]:
        p = self.preset
        metrics: dict[str, float] = {}
        # the optimal baseline's regression weights belong to the policy that collected the batch
        weights = self.score_norms(batch.features, batch.actions) if self.baseline == "optimal" else None
        if self.critic is not None and p.critic_update == "before":  # the advantages then read the fitted V
            metrics.update(self._fit_critic(batch, self._advantages(batch)[1], weights))
        first_pass = self._first_critic_pass(batch)
        policy_loss, logits, value_targets = self._surrogate(batch, first_pass)
        entropy = est.masked_mean(est.categorical_entropy(logits), batch.valid)
        grad_norm = optimizer_step(
            self.optimizer,
            policy_loss - p.ent_coef * entropy,
            self.policy.parameters(),
            p.max_grad_norm,
        )
        self._advance_baseline()  # after optimizer_step, which raises on a non-finite loss with nothing changed
        metrics.update(
            {
                "losses/policy_loss": policy_loss.item(),
                "losses/entropy": entropy.item(),
                "grads/policy_grad_norm": grad_norm,
            }
        )
        if self.running_return is not None:
            metrics["charts/baseline"] = self.running_return
        if self.critic is not None and value_targets is not None and p.critic_update == "after":
            metrics.update(self._fit_critic(batch, value_targets, weights, first_pass))
        return metrics

    def _fit_critic(
        self,
        batch: RolloutBuffer,
        targets: torch.Tensor,
        weights: torch.Tensor | None = None,
        first_pass: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Regress the critic on ``targets``; with ``weights`` (the optimal baseline) weighted by them.
        ``first_pass`` (:meth:`_first_critic_pass`) is the first pass's predictions, already computed."""
        assert self.critic is not None
        for epoch in range(self.preset.critic_epochs):
            fresh = first_pass is None or epoch > 0
            predictions = self.critic(batch.features).squeeze(-1) if fresh else first_pass
            if weights is None:
                value_loss = est.masked_mean((predictions - targets) ** 2, batch.valid)
            else:
                value_loss = est.weighted_mse(predictions, targets, weights, batch.valid)
            grad_norm = optimizer_step(
                self.critic_optimizer,
                value_loss,
                self.critic.parameters(),
                self.preset.max_grad_norm,
            )
        return {"losses/value_loss": value_loss.item(), "grads/value_grad_norm": grad_norm}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "running_return": self.running_return,
        }
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
            state["critic_optimizer"] = self.critic_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.running_return = state["running_return"]
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])


class OptimalBaselineOracle(torch.nn.Module):
    """The exact optimal baseline b*(s) of the agent's current policy, from an exact critic's Q(s, .).

    b*(s) = sum_a pi(a|s) w(s, a) Q(s, a) / sum_a pi(a|s) w(s, a) with w = |grad log pi(a|s)|^2
    (pglab.core.estimators.optimal_baseline) and Q = Q_{H-t} with the steps left; ``forward(features,
    timesteps)`` has the value network's shape (..., 1).
    """

    def __init__(self, oracle: torch.nn.Module, agent: ReinforceAgent):
        super().__init__()
        self.oracle = oracle
        self.agent = agent

    def forward(self, features: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            probs = torch.softmax(self.agent.policy(features), dim=-1)
            q = self.oracle.q_values(features, timesteps).to(probs.dtype)
        n_actions = probs.shape[-1]
        every_action = torch.arange(n_actions).expand(*features.shape[:-1], n_actions)  # one batched pass
        norms = self.agent.score_norms(features.unsqueeze(-2).expand(*every_action.shape, -1), every_action)
        return est.optimal_baseline(probs, norms, q).unsqueeze(-1)


def build_agent(
    policy: PolicyNetwork,
    observation_space: gym.Space,
    action_space: gym.spaces.Discrete,
    preset: Preset,
    *,
    baseline: str,
) -> ReinforceAgent:
    """The builder every REINFORCE AgentSpec names (pglab.agents.reinforce); ``baseline`` comes from the spec."""
    return ReinforceAgent(policy, preset, baseline)
