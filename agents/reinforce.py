"""Presets and registrations of the REINFORCE agents; the agents are in pglab.agents.reinforce_agent.

This module imports no torch (the specs name their builder as a string), so ``pglab list`` and the
command line's help read every preset without it. What each baseline is, and why these values:
see pglab.agents.reinforce_agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pglab.core.preset import MINATAR_IDS, MINATAR_SETTINGS, AgentSpec, CriticPreset, Preset, knob, require
from pglab.errors import ConfigError


@dataclass
class ReinforcePreset(Preset):
    """REINFORCE with no baseline, an EMA baseline or leave-one-out; tuned on CartPole-v1.

    No Acrobot-v1 values: without a critic, every failed episode of the initial policy scores -500
    alike, and neither an entropy bonus (0.01) nor longer windows got reinforce-rloo off the ground
    within 500k steps (seed 0): Acrobot is where the critic earns its keep.
    """


@dataclass
class EmaPreset(ReinforcePreset):
    ema_decay: float = knob(0.9, "decay of the running mean of returns, in [0, 1)")

    estimator_fields: ClassVar[tuple[str, ...]] = ("ema_decay",)

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay={self.ema_decay!r} must lie in [0, 1); fix it with --set ema_decay=...")


@dataclass
class RlooPreset(ReinforcePreset):
    def validate(self) -> None:
        super().validate()
        if self.num_envs < 2:
            raise ConfigError(
                f"num_envs={self.num_envs} is too few for a leave-one-out baseline; use --num-envs 2 or more"
            )


@dataclass
class ValuePreset(CriticPreset):
    """Tuned on CartPole-v1: 16 x 64 steps per update, both learning rates 3e-3, the value network
    fitted with 4 passes after the actor step."""

    num_envs: int = knob(16, "parallel environments (the batch holds num_envs * num_steps steps)")
    num_steps: int = knob(64, "steps per environment per update; cut tails are bootstrapped with V")
    lr: float = knob(3e-3, "policy learning rate (Adam)")
    critic_lr: float = knob(3e-3, "learning rate of the value network (Adam)")
    critic_epochs: int = knob(4, "regression passes of the value network over each batch")
    gae_lambda: float = knob(1.0, "GAE lambda in [0, 1]: 1 is return minus V (REINFORCE), < 1 trades bias for variance")
    normalize_advantages: str = knob(
        "standardize",
        "'off', 'scale' or 'standardize'; V already centres, standardising only adds a batch-mean shift",
    )

    # Acrobot: every episode of the initial policy fails alike (-500), so Monte-Carlo returns carry no
    # signal until a lucky success; TD(lambda) advantages and an entropy bonus keep it exploring
    # (seeds 0-3 solve within 111k-152k steps, against 1 seed in 2 with lambda = 1).
    # MinAtar: the shared MinAtar settings (pglab.core.preset.MINATAR_SETTINGS: the paper's network, 16 x 16
    # steps, unnormalised advantages, entropy 0.05) with TD(lambda) advantages; README "MinAtar".
    env_overrides: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "Acrobot-v1": {"num_steps": 256, "ent_coef": 0.01, "gae_lambda": 0.95},
        **{env_id: {**MINATAR_SETTINGS, "gae_lambda": 0.95} for env_id in MINATAR_IDS},
    }
    estimator_fields: ClassVar[tuple[str, ...]] = ("gae_lambda",)

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda={self.gae_lambda!r} must lie in [0, 1]")


SCORE_NORMS = ("full", "output")


@dataclass
class OptimalPreset(CriticPreset):
    """The variance-minimising baseline; reinforce-value's batch (16 x 64) and learning rates, returns not
    bootstrapped (b*(s) is not V), the baseline network fitted with 4 passes after the actor step."""

    num_envs: int = knob(16, "parallel environments (the batch holds num_envs * num_steps steps)")
    num_steps: int = knob(64, "steps per environment per update; cut tails count only the rewards seen")
    lr: float = knob(3e-3, "policy learning rate (Adam)")
    critic_lr: float = knob(3e-3, "learning rate of the baseline network (Adam)")
    critic_epochs: int = knob(4, "weighted regression passes of the baseline network over each batch")
    score_norm: str = knob(
        "full",
        "the weights |grad log pi(a|s)|^2 of the baseline's regression: 'full' (every policy parameter, by "
        "torch.func) or 'output' (the softmax output layer alone, in closed form: cheaper, approximate)",
    )

    estimator_fields: ClassVar[tuple[str, ...]] = ("score_norm",)

    def validate(self) -> None:
        super().validate()
        require(
            self.score_norm in SCORE_NORMS, "score_norm", self.score_norm, f"must be one of {', '.join(SCORE_NORMS)}"
        )


def _spec(name: str, description: str, preset: type[Preset], baseline: str) -> AgentSpec:
    return AgentSpec(name, description, preset, "pglab.agents.reinforce_agent:build_agent", {"baseline": baseline})


REINFORCE = _spec("reinforce", "REINFORCE, no baseline", ReinforcePreset, "none")
REINFORCE_EMA = _spec("reinforce-ema", "REINFORCE, running-mean (EMA) baseline", EmaPreset, "ema")
REINFORCE_VALUE = _spec(
    "reinforce-value", "REINFORCE, learned state-value baseline (GAE(lambda) option)", ValuePreset, "value"
)
REINFORCE_OPTIMAL = _spec(
    "reinforce-optimal",
    "REINFORCE, the variance-minimising baseline b*(s) = E[|grad log pi|^2 G | s] / E[|grad log pi|^2 | s], learned",
    OptimalPreset,
    "optimal",
)
REINFORCE_RLOO = _spec(
    "reinforce-rloo", "REINFORCE, leave-one-out baseline across parallel environments", RlooPreset, "rloo"
)
