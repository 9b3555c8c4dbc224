"""What an agent is to the training loop, and what agents share at run time: optimiser steps and
the reading of the objective fields (episode ends, step weights).

An agent is a small object: ``act(features) -> actions`` while collecting and
``update(batch) -> metrics`` once per batch. It is built by an :class:`AgentSpec` (what an entry point
of the ``pglab.agents`` group names) from the shared :class:`~pglab.core.policy.PolicyNetwork`, the
environment's spaces and a resolved preset. The preset machinery lives in :mod:`pglab.core.preset`
(no torch there); it is re-exported here, where agents have always imported it from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import nn

from pglab.core import estimators as est
from pglab.core.optim import Adam
from pglab.core.policy import PolicyNetwork
from pglab.core.preset import (
    CRITIC_UPDATES,
    MATCHED_SETTINGS,
    NORMALIZATION_MODES,
    PROTOCOLS,
    TRUNCATION_MODES,
    AgentSpec,
    CriticPreset,
    Preset,
    knob,
    matched_values,
    parse_assignments,
    require,
    resolve_preset,
    shared_fields,
)
from pglab.core.rollout import RolloutBuffer
from pglab.errors import NonFiniteLossError

__all__ = [
    "CRITIC_UPDATES",
    "MATCHED_SETTINGS",
    "NORMALIZATION_MODES",
    "OBJECTIVE_FINITE_HORIZON",
    "PROTOCOLS",
    "TRUNCATION_MODES",
    "Agent",
    "AgentSpec",
    "CriticPreset",
    "Preset",
    "episode_ends",
    "gradient_step",
    "knob",
    "matched_values",
    "objective_of",
    "optimizer_step",
    "parse_assignments",
    "require",
    "resolve_preset",
    "shared_fields",
    "step_weights",
]


def episode_ends(batch: RolloutBuffer, preset: Preset) -> tuple[torch.Tensor, torch.Tensor]:
    """(terminated, truncated) as the preset's ``truncation`` reads them.

    ``terminal``: a time limit ends the task, so a truncation counts as a termination and nothing is
    bootstrapped through it (the end of a rollout window stays a cut: it is no end of the task).
    """
    if preset.truncation == "terminal":
        return batch.terminated | batch.truncated, torch.zeros_like(batch.truncated)
    return batch.terminated, batch.truncated


def step_weights(batch: RolloutBuffer, preset: Preset) -> torch.Tensor | None:
    """gamma^t per step (t from the episode start) under ``discount_weighting``, else None (weight 1)."""
    if not preset.discount_weighting or preset.gamma == 1.0:
        return None
    return est.discount_weights(batch.timesteps, preset.gamma)


def objective_of(preset: Preset, critic: bool) -> str:
    """In words, the objective whose gradient a score-function estimate under ``preset`` is unbiased for.

    ``critic``: whether the agent bootstraps with a learned critic (a state-only critic does not know
    the steps left, so bootstrapping a time limit with it targets no finite-horizon objective).
    """
    if preset.batch_episodes == 0:
        return (
            "none exactly: a return cut where a rollout window ends is a shorter-horizon return, its bias myopic "
            "and action-dependent (set batch_episodes)"
        )
    if preset.gamma < 1.0 and not preset.discount_weighting:
        return (
            "none: weight-1 scores at gamma < 1 are not the gradient of any objective (Nota & Thomas 2020); "
            "set discount_weighting=true"
        )
    if critic and preset.truncation == "bootstrap":
        return (
            "none exactly where time limits cut episodes: they are bootstrapped with V(s), reward beyond the "
            "horizon (set truncation=terminal)"
        )
    return OBJECTIVE_FINITE_HORIZON


OBJECTIVE_FINITE_HORIZON = "E[sum_{t<H} gamma^t r_t] from the start state, the time limit H ending the task"


class Agent(Protocol):
    """What the training loop needs from an agent."""

    policy: PolicyNetwork

    def act(self, features: torch.Tensor) -> torch.Tensor:
        """Sample integer actions (N,) for encoded observations (N, D); called in inference mode."""
        ...

    def update(self, batch: RolloutBuffer) -> dict[str, float]:
        """One learning step on a batch; returns metrics named ``losses/*``, ``grads/*``, ``charts/*``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Every tensor and number needed to continue training (networks, optimisers, baselines)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def optimizer_step(
    optimizer: torch.optim.Optimizer | Adam,
    loss: torch.Tensor,
    parameters: Iterable[nn.Parameter],
    max_grad_norm: float,
) -> float:
    """Backpropagate ``loss``, clip, step; returns the gradient norm before clipping.

    A NaN or infinite loss raises NonFiniteLossError *before* any parameter changes, so the agent
    still holds its last good weights and the run can save them.
    """
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"the loss became {loss.item()}")
    params = list(parameters)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    return _clip_and_step(optimizer, params, max_grad_norm)


def adam(parameters: Iterable[nn.Parameter], lr: float) -> Adam:
    """Every agent's Adam: torch.optim.Adam's ``foreach=True`` steps (torch's default on GPUs, not on CPU: all
    parameters in a few multi-tensor operations instead of about ten per parameter, the same numbers bit for
    bit, a quarter less time per step on CPU), without the second torch.optim.Optimizer costs every run's
    process to import torch._dynamo (:mod:`pglab.core.optim`; tests/test_speed_equivalence.py)."""
    return Adam(parameters, lr=lr, eps=1e-5)


def gradient_step(
    optimizer: torch.optim.Optimizer | Adam,
    parameters: Iterable[nn.Parameter],
    gradients: Iterable[torch.Tensor],
    max_grad_norm: float,
) -> float:
    """Step along given ``gradients`` (one per parameter, a loss's gradient), clipped as in
    :func:`optimizer_step`; for estimators whose step is not the gradient of one scalar loss that can
    be backpropagated once (RELAX: its control variate's loss is the policy gradient's own norm)."""
    params = list(parameters)
    optimizer.zero_grad(set_to_none=True)
    for param, gradient in zip(params, gradients, strict=True):
        param.grad = gradient.detach().clone()
    return _clip_and_step(optimizer, params, max_grad_norm)


def _clip_and_step(optimizer: torch.optim.Optimizer | Adam, params: list[nn.Parameter], max_grad_norm: float) -> float:
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    norm = float(nn.utils.clip_grad_norm_(params, limit))
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLossError(f"the gradient norm became {norm}")
    optimizer.step()
    return norm
