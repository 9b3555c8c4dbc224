"""What an agent is to the training loop, and the preset (hyperparameter) machinery they share.

An agent is a small object: ``act(features) -> actions`` while collecting and
``update(batch) -> metrics`` once per batch. It is built by an :class:`AgentSpec` (what an entry point
of the ``pglab.agents`` group names) from the shared :class:`~pglab.policy.PolicyNetwork`, the
environment's spaces and a resolved preset.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import torch
from torch import nn

from pglab.errors import ConfigError, NonFiniteLossError
from pglab.policy import ACTIVATIONS, PolicyNetwork
from pglab.rollout import RolloutBuffer

NORMALIZATION_MODES = ("off", "scale", "standardize")


def knob(default: Any, help: str) -> Any:
    """A preset field with its one-line help (shown by ``pglab list --agent NAME``)."""
    return field(default=default, metadata={"help": help})


@dataclass
class Preset:
    """Hyperparameters every agent has. Agents subclass this with their own fields.

    ``env_overrides`` maps an environment id to the fields whose tuned value differs there; they
    are applied before the user's ``--set`` values.
    """

    num_envs: int = knob(
        8,
        "parallel environments (the batch holds num_envs * num_steps steps)",
    )
    num_steps: int = knob(
        128,
        "steps per environment per update",
    )
    gamma: float = knob(
        0.99,
        "discount factor, in (0, 1]",
    )
    lr: float = knob(
        1e-3,
        "policy learning rate (Adam)",
    )
    ent_coef: float = knob(
        0.0,
        "weight of the policy-entropy bonus in the actor loss",
    )
    max_grad_norm: float = knob(
        0.5,
        "global gradient-norm clip for every optimiser step (0 disables clipping)",
    )
    normalize_advantages: str = knob(
        "scale",
        "'off'; 'scale' (divide by the batch std: the estimator's own baseline stays the only centring, "
        "so baselines stay comparable); 'standardize' (also subtract the batch mean)",
    )
    hidden_sizes: tuple[int, ...] = knob(
        (64, 64),
        "hidden layers of the policy network",
    )
    activation: str = knob(
        "tanh",
        "activation of every hidden layer: tanh, relu, elu or gelu",
    )

    env_overrides: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def validate(self) -> None:
        """Raise ConfigError naming the first impossible value."""
        require(self.num_envs >= 1, "num_envs", self.num_envs, "must be at least 1")
        require(self.num_steps >= 1, "num_steps", self.num_steps, "must be at least 1")
        require(0.0 < self.gamma <= 1.0, "gamma", self.gamma, "must lie in (0, 1]")
        require(self.lr > 0 and math.isfinite(self.lr), "lr", self.lr, "must be a positive number")
        require(self.ent_coef >= 0, "ent_coef", self.ent_coef, "must be >= 0")
        require(
            self.max_grad_norm >= 0,
            "max_grad_norm",
            self.max_grad_norm,
            "must be >= 0 (0 disables)",
        )
        require(
            self.normalize_advantages in NORMALIZATION_MODES,
            "normalize_advantages",
            self.normalize_advantages,
            f"must be one of {', '.join(NORMALIZATION_MODES)}",
        )
        require(
            len(self.hidden_sizes) > 0 and all(h >= 1 for h in self.hidden_sizes),
            "hidden_sizes",
            self.hidden_sizes,
            "must be one or more positive layer widths, e.g. 64,64",
        )
        require(
            self.activation in ACTIVATIONS,
            "activation",
            self.activation,
            f"must be one of {sorted(ACTIVATIONS)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def require(ok: bool, name: str, value: Any, why: str) -> None:
    """Raise ConfigError saying which preset field has an impossible value and how to set it."""
    if not ok:
        raise ConfigError(f"{name}={value!r} {why}; fix it with --set {name}=...")


def _parse_value(name: str, text: str, kind: Any) -> Any:
    """Turn the string of a ``--set key=value`` into the field's type, or raise ConfigError."""
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind in (int, float, str):
            return kind(text)
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
            return tuple(item(p.strip()) for p in parts)
    except ValueError:
        pass
    else:
        raise ConfigError(f"--set {name}: fields of type {kind} cannot be set from the command line")
    type_name = getattr(kind, "__name__", str(kind))
    raise ConfigError(f"--set {name}={text!r}: expected a value of type {type_name}")


def resolve_preset(preset_cls: type[Preset], env_id: str, overrides: Mapping[str, Any]) -> Preset:
    """Defaults, then the preset's tuned values for ``env_id``, then ``overrides``; validated.

    ``overrides`` values may be strings (from ``--set key=value``) or already typed values.
    """
    hints = typing.get_type_hints(preset_cls)
    fields = {f.name for f in dataclasses.fields(preset_cls)}
    values: dict[str, Any] = dict(preset_cls.env_overrides.get(env_id, {}))
    for name, raw in overrides.items():
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"unknown --set key {name!r} for this agent; {hint}")
        values[name] = _parse_value(name, raw, hints[name]) if isinstance(raw, str) else raw
    preset = preset_cls(**values)
    preset.validate()
    return preset


def parse_assignments(pairs: Iterable[str], flag: str = "--set") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without '=' is a ConfigError."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {pair!r}: expected key=value")
        result[key.strip()] = value.strip()
    return result


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


@dataclass(frozen=True)
class AgentSpec:
    """An agent as the ``pglab.agents`` entry-point group exposes it."""

    name: str
    description: str
    preset: type[Preset]
    build: Callable[[PolicyNetwork, gym.Space, gym.spaces.Discrete, Any], Agent]
    extra: Mapping[str, Any] = field(default_factory=dict)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
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
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    norm = float(nn.utils.clip_grad_norm_(params, limit))
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLossError(f"the gradient norm became {norm}")
    optimizer.step()
    return norm
