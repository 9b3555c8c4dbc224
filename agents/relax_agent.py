"""RELAX (Grathwohl, Choi, Wu, Roeder & Duvenaud, ICLR 2018, "Backpropagation through the Void").

The score-function estimate with a learned control variate on the relaxed action, per step:

    grad log pi(a|s) [G - c_phi(s, z~)] + grad c_phi(s, z) - grad c_phi(s, z~)

(pglab.core.estimators.relax_surrogate), where z are the Gumbel-perturbed logits whose argmax is the action
taken, z~ ~ p(z | a) a second draw given that action, and G the discounted return-to-go (the paper's
choice for its discrete tasks: Monte-Carlo returns, no bootstrapping, no state-value function).
Unbiased for any c_phi; c_phi is trained to minimise the estimate's variance, by descending the
gradient of its squared norm (E|g|^2 = Var + |E g|^2 and E g does not depend on phi), as in the paper.

The control variate c_phi(s, z) = Q(s, softmax(z / tau)) is the Gumbel agents' critic architecture
(agents.gumbel_agent.QCritic: v(s) plus an MLP of the state and the relaxed action) read at the relaxation
of z; the temperature tau is learned with phi by the same variance objective (the paper's code starts
it at 1). The action term starts at zero, so the first estimates are the value baseline's, and with
``state_term='regression'`` (the default) v(s) is regressed on the returns while the action term and tau
descend the variance: c = V + c-hat, as the paper's code does for its continuous tasks. A state term
trained by the variance objective alone learns the level of the returns slowly (one noisy step per
batch), and every error in it is the baseline's error.

As for the Gumbel agents, no noise is stored in the rollout: z and z~ are drawn at update time
conditioned on the executed action, which has exactly the joint law of (argmax, z) at collection
since the policy has not changed.

Cut episode tails (time limits, the rollout window's end) count only the rewards seen, as for the
critic-less REINFORCE agents; collect complete episodes (``batch_episodes``) where that matters. The
shared objective fields apply as for them (``objective()``): ``discount_weighting`` weights each step's
whole term by gamma^t, and the control variate reads the steps since the episode start, which only
the oracle critic uses.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from pglab.agents.gumbel_agent import OracleQ, QCritic
from pglab.agents.relax import RelaxPreset
from torch import nn

from pglab.core import estimators as est
from pglab.core.agent import adam, episode_ends, gradient_step, objective_of, optimizer_step, step_weights
from pglab.core.policy import PolicyNetwork
from pglab.core.rollout import RolloutBuffer
from pglab.errors import NonFiniteLossError


class ControlVariate(nn.Module):
    """c_phi(s, z) = critic(s, softmax(z / tau)), with tau = exp(log_tau) learned or fixed.

    The critic's action term starts at zero (its output layer zeroed): c starts as its state term v(s),
    where RELAX's estimate is exactly the value baseline's. A randomly initialised action term would
    add noise of its own from the first batch (its part of c(s, z~) in the advantage, and the correction
    grad c(s, z) - grad c(s, z~)) until the variance objective had undone it.
    """

    def __init__(self, critic: QCritic, tau: float, learn_tau: bool):
        super().__init__()
        self.critic = critic
        head = critic.action_value[-1]
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)), requires_grad=learn_tau)

    def forward(self, features: torch.Tensor, perturbed_logits: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.critic(features, torch.softmax(perturbed_logits / self.log_tau.exp(), dim=-1), timesteps)

    def state_value(self, features: torch.Tensor) -> torch.Tensor:
        """The state term v(s) of c, shape (...)."""
        return self.critic.state_value(self.critic.torso(features)).squeeze(-1)

    def state_parameters(self) -> list[nn.Parameter]:
        """The parameters of c that read the state alone (the torso and v)."""
        return [*self.critic.torso.parameters(), *self.critic.state_value.parameters()]


class RelaxAgent:
    """The RELAX agent: the shared PolicyNetwork, and a control variate trained on the estimate's variance."""

    def __init__(self, policy: PolicyNetwork, preset: RelaxPreset):
        self.policy = policy
        self.preset = preset
        self.optimizer = adam(policy.parameters(), preset.lr)
        critic = QCritic(policy.encoder.space, policy.n_actions, preset.critic_hidden_sizes, preset.activation)
        self.control = ControlVariate(critic, preset.tau, preset.learn_tau)
        self.critic_optimizer = adam([p for p in self.control.parameters() if p.requires_grad], preset.critic_lr)

    def _regressed_parameters(self) -> list[nn.Parameter]:
        """The parameters regressed on the returns: v(s)'s with ``state_term='regression'``, else none."""
        return self.control.state_parameters() if self.preset.state_term == "regression" else []

    def _variance_parameters(self) -> list[nn.Parameter]:
        """The parameters that descend the estimate's squared norm: the rest of c, and tau when learned."""
        regressed = {id(p) for p in self._regressed_parameters()}
        return [p for p in self.control.parameters() if p.requires_grad and id(p) not in regressed]

    @property
    def critic(self) -> nn.Module:
        """The control variate's critic (``pglab grads`` reports the agent as having a learned critic)."""
        return self.control.critic

    def act(self, features: torch.Tensor) -> torch.Tensor:
        return est.gumbel_max_sample(self.policy.fast_logits(features))

    def _surrogate(self, batch: RolloutBuffer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the RELAX surrogate, scaled as the preset says; the policy's logits; the returns) with fresh noise."""
        p = self.preset
        terminated, truncated = episode_ends(batch, p)
        returns = est.discounted_returns(batch.rewards, terminated, truncated, torch.zeros_like(batch.rewards), p.gamma)
        logits = self.policy(batch.features)
        perturbed = est.conditional_gumbel_logits(logits, batch.actions, num_samples=2)
        z = logits + (perturbed[0] - logits).detach()  # (a, z) ~ p(a, z): the noise held, the logits live
        z_tilde = perturbed[1]  # z~ ~ p(z | a), conditionally reparameterised
        advantages = returns - self.control(batch.features, z_tilde.detach(), batch.timesteps)
        surrogate = est.relax_surrogate(
            est.categorical_log_prob(logits, batch.actions),
            advantages,
            self.control(batch.features, z, batch.timesteps),
            self.control(batch.features, z_tilde, batch.timesteps),
            batch.valid,
            step_weights(batch, p),
        )
        if p.normalize_advantages == "scale":
            surrogate = surrogate / (float(est.masked_std(returns, batch.valid)) + 1e-8)
        return surrogate, logits, returns

    def policy_loss(self, batch: RolloutBuffer) -> torch.Tensor:
        """The RELAX surrogate without the entropy bonus (``pglab grads``); it steps nothing."""
        return self._surrogate(batch)[0]

    def objective(self) -> str:
        """The objective the estimate is unbiased for, in words: RELAX is unbiased for any control
        variate, so the score-function agents' (``pglab grads`` shows it)."""
        return objective_of(self.preset, critic=False)

    def use_oracle_critic(self, critic: nn.Module) -> None:
        """c(s, z) = sum_a softmax(z / tau)_a Q(s, a) with the exact Q (pglab.diagnostics.exact.OracleCritic)."""
        self.control.critic = OracleQ(critic)

    def _gradients(self, batch: RolloutBuffer) -> dict[str, Any]:
        """One noise draw: the policy's step (the surrogate's gradient minus the entropy bonus's),
        |estimate|^2 with its gradient in the variance parameters, and the returns (v's targets)."""
        params, control_params = list(self.policy.parameters()), self._variance_parameters()
        surrogate, logits, returns = self._surrogate(batch)
        entropy = est.masked_mean(est.categorical_entropy(logits), batch.valid)
        entropy_grads = torch.autograd.grad(entropy, params, retain_graph=True)
        policy_grads = torch.autograd.grad(surrogate, params, create_graph=True)
        variance = sum(g.pow(2).sum() for g in policy_grads)
        control_grads = torch.autograd.grad(variance, control_params, allow_unused=True)
        return {
            "surrogate": surrogate.detach(),
            "returns": returns,
            "entropy": entropy.detach(),
            "policy": [
                (g - self.preset.ent_coef * e).detach() for g, e in zip(policy_grads, entropy_grads, strict=True)
            ],
            "variance": variance.detach(),
            "control": [
                torch.zeros_like(p) if g is None else g for g, p in zip(control_grads, control_params, strict=True)
            ],
        }

    def update(self, batch: RolloutBuffer) -> dict[str, float]:
        p = self.preset
        metrics: dict[str, float] = {}
        if p.critic_update == "before":
            metrics = self._train_control(batch, p.critic_epochs)
        step = self._gradients(batch)
        if not (torch.isfinite(step["surrogate"]) and all(torch.isfinite(g).all() for g in step["control"])):
            raise NonFiniteLossError(
                f"the RELAX surrogate or its variance gradient became non-finite ({step['surrogate']})"
            )
        # 'after': the policy steps along the estimate made with phi as it was before this batch; a
        # control variate already fitted to the very actions it judges would bias the estimate.
        tau = float(self.control.log_tau.detach().exp())
        grad_norm = gradient_step(self.optimizer, self.policy.parameters(), step["policy"], p.max_grad_norm)
        if p.critic_update == "after":
            metrics = self._train_control(batch, p.critic_epochs, first=step)
        return {
            **metrics,
            "losses/policy_loss": float(step["surrogate"]),
            "losses/entropy": float(step["entropy"]),
            "grads/policy_grad_norm": grad_norm,
            "charts/tau": tau,
        }

    def _train_control(
        self, batch: RolloutBuffer, epochs: int, first: dict[str, Any] | None = None
    ) -> dict[str, float]:
        """``epochs`` steps of phi down |estimate|^2, each with fresh noise (``first``: the gradients of
        the first step, already computed), each followed by a regression step of v(s) on the returns
        where ``state_term`` says so."""
        metrics: dict[str, float] = {}
        regressed, clip = self._regressed_parameters(), self.preset.max_grad_norm
        for epoch in range(epochs):
            step = first if epoch == 0 and first is not None else self._gradients(batch)
            norm = gradient_step(self.critic_optimizer, self._variance_parameters(), step["control"], clip)
            metrics = {"losses/cv_variance": float(step["variance"]), "grads/critic_grad_norm": norm}
            if regressed:
                squared_errors = (self.control.state_value(batch.features) - step["returns"]) ** 2
                value_loss = est.masked_mean(squared_errors, batch.valid)
                metrics["grads/value_grad_norm"] = optimizer_step(self.critic_optimizer, value_loss, regressed, clip)
                metrics["losses/value_loss"] = value_loss.item()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "control": self.control.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.control.load_state_dict(state["control"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])


def build(
    policy: PolicyNetwork, observation_space: gym.Space, action_space: gym.spaces.Discrete, preset: RelaxPreset
) -> RelaxAgent:
    return RelaxAgent(policy, preset)
