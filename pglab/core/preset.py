"""Presets (the hyperparameters of agents) and AgentSpec, without torch.

Everything here is plain dataclasses and parsing, so ``pglab list``, ``pglab CMD --help`` and the
checks of a grid's settings run without importing torch; the agents themselves (pglab.core.agent and
the agents' own modules) import it when a run builds them.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pglab.core.limits import fits_type, type_name
from pglab.errors import ConfigError

# The names of pglab.core.policy.ACTIVATIONS (a test keeps the two in step).
ACTIVATION_NAMES = ("tanh", "relu", "elu", "gelu")
NORMALIZATION_MODES = ("off", "scale", "standardize")
PROTOCOLS = ("matched", "presets")
CRITIC_UPDATES = ("after", "before")
TRUNCATION_MODES = ("bootstrap", "terminal")

FLOAT32_MAX = 3.4028234663852886e38  # the networks compute in float32: a larger hyperparameter overflows there
MAX_EPOCHS = 10_000  # critic passes over one batch: an upper bound, so that no value stalls a run for good


def knob(default: Any, help: str) -> Any:
    """A preset field with its one-line help (shown by ``pglab list --agent NAME``)."""
    return field(default=default, metadata={"help": help})


@dataclass
class Preset:
    """Hyperparameters every agent has. Agents subclass this with their own fields.

    ``env_overrides`` maps an environment id to the fields whose tuned value differs there; they
    are applied before the user's ``--set`` values.

    ``estimator_fields`` names the fields that belong to the agent's estimator (a temperature, a
    baseline's decay, ...). Under the matched protocol (:func:`matched_values`) every other field is
    shared: it takes the value of the matched table, the same for every agent. A field an agent adds
    must be one of its estimator fields, so adding an agent to a matched comparison is a matter of
    declaring them.

    Three fields choose the objective an estimator targets (README, "How the estimators handle
    episodes"); their defaults keep the common practice. Every agent honours them the same way:

    * ``batch_episodes``: the training loop collects B complete episodes per update (pglab.core.rollout);
      the agent needs to do nothing, its batch simply has no cut tail.
    * ``truncation``: the agent reads episode ends through :func:`pglab.core.agent.episode_ends`, which turns time-limit
      truncations into terminations under ``terminal`` (nothing is bootstrapped through them).
    * ``discount_weighting``: the agent multiplies each step's term of its actor loss (score times
      advantage, or a critic's value of the relaxed action) by :func:`pglab.core.agent.step_weights`, gamma^t with t
      counted from the episode start (``batch.timesteps``), after any advantage normalisation.
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
    batch_episodes: int = knob(
        0,
        "0: windows of num_steps steps per environment (a return is cut where a window ends); B > 0: B complete "
        "episodes per update from a reset of every environment (num_steps is then only the initial buffer size)",
    )
    truncation: str = knob(
        "bootstrap",
        "what a time-limit cut means: 'bootstrap' (the task goes on: a critic's V(s) stands in for the rest, "
        "critic-free agents count nothing) or 'terminal' (the limit ends a finite-horizon task: nothing follows)",
    )
    discount_weighting: bool = knob(
        False,
        "weight step t's term by gamma^t, t counted from the episode start: unbiased for the discounted return "
        "from the start state; off (weight 1, the common practice) is not the gradient of any objective if gamma < 1",
    )
    hidden_sizes: tuple[int, ...] = knob(
        (64, 64),
        "hidden layers of the policy network, after the convolutional torso for images; () puts the "
        "output layer right on the torso (the MinAtar and Nature-CNN papers' networks)",
    )
    activation: str = knob(
        "tanh",
        "activation of every hidden layer: tanh, relu, elu or gelu",
    )

    env_overrides: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    estimator_fields: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        """Raise ConfigError naming the first impossible value."""
        for f in dataclasses.fields(self):  # inf, NaN or past float32 in a float field: refused before training
            value = getattr(self, f.name)
            finite = not isinstance(value, float) or (math.isfinite(value) and abs(value) <= FLOAT32_MAX)
            require(finite, f.name, value, f"must be a finite number (within float32's +-{FLOAT32_MAX:.3g})")
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
        require(self.batch_episodes >= 0, "batch_episodes", self.batch_episodes, "must be >= 0 (0: windows)")
        require(
            self.batch_episodes == 0 or self.batch_episodes >= self.num_envs,
            "batch_episodes",
            self.batch_episodes,
            f"is fewer than num_envs={self.num_envs}, leaving environments idle (lower num_envs or raise it)",
        )
        require(
            self.truncation in TRUNCATION_MODES,
            "truncation",
            self.truncation,
            f"must be one of {', '.join(TRUNCATION_MODES)}",
        )
        require(
            all(h >= 1 for h in self.hidden_sizes),
            "hidden_sizes",
            self.hidden_sizes,
            "must be positive layer widths, e.g. 64,64 (or () for none)",
        )
        require(
            self.activation in ACTIVATION_NAMES,
            "activation",
            self.activation,
            f"must be one of {sorted(ACTIVATION_NAMES)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class CriticPreset(Preset):
    """The fields of an agent with a learned critic; shared between such agents under the matched protocol.

    The order of the critic's fit relative to the actor step matters: ``after`` (the actor reads a
    critic fitted on earlier batches only) keeps a state-value baseline independent of the actions
    it judges; ``before`` lets the actor read a critic already fitted to this batch (fresher, but a
    baseline fitted to the batch's own returns depends on its actions, and a tighter fit cancels
    more of the signal).
    """

    critic_lr: float = knob(1e-3, "learning rate of the critic (Adam)")
    critic_epochs: int = knob(10, "regression passes of the critic over each batch")
    critic_hidden_sizes: tuple[int, ...] = knob(
        (64, 64), "hidden layers of the critic, after its own convolutional torso for images; () for none"
    )
    critic_update: str = knob(
        "after",
        "when the critic is fitted to a batch: 'after' the actor step (the actor reads the earlier "
        "critic) or 'before' it",
    )

    def validate(self) -> None:
        super().validate()
        require(self.critic_lr > 0 and math.isfinite(self.critic_lr), "critic_lr", self.critic_lr, "must be positive")
        require(
            1 <= self.critic_epochs <= MAX_EPOCHS,
            "critic_epochs",
            self.critic_epochs,
            f"must lie in [1, {MAX_EPOCHS}] (passes over one batch; more would stall training)",
        )
        require(
            all(h >= 1 for h in self.critic_hidden_sizes),
            "critic_hidden_sizes",
            self.critic_hidden_sizes,
            "must be positive layer widths, e.g. 64,64 (or () for none)",
        )
        require(
            self.critic_update in CRITIC_UPDATES,
            "critic_update",
            self.critic_update,
            f"must be one of {', '.join(CRITIC_UPDATES)}",
        )


MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
MINATAR_IDS = tuple(f"MinAtar/{game}-v{version}" for game in MINATAR_GAMES for version in (0, 1))

# MinAtar's shared settings, under both protocols (reinforce-value's preset adds its lambda). The network
# is the MinAtar paper's: the output layer right on the conv torso, for the policy and every critic (an
# agent without a critic simply has no critic_hidden_sizes). Small batches (16 envs x 16 steps: four
# updates per 1,024 steps), one regression pass of each critic per batch, advantages not normalised
# and an entropy bonus of 0.05. Why (reinforce-value, Breakout-v1, seed 0, README "MinAtar"): on
# 1,024-step batches with advantages divided by their std, every entropy bonus tried let the policy
# turn nearly deterministic (entropy 0.03-0.2 of ln 3) within 200k steps and the return stalled near 5
# up to 3M steps; smaller batches alone or unnormalised advantages alone stalled alike. Together with
# entropy 0.03-0.05 the entropy stays near 0.5 and the return climbs past the plateau.
MINATAR_SETTINGS: Mapping[str, Any] = {
    "num_envs": 16,
    "num_steps": 16,
    "lr": 1e-3,
    "ent_coef": 0.05,
    "normalize_advantages": "off",
    "hidden_sizes": (),
    "critic_lr": 1e-3,
    "critic_epochs": 1,
    "critic_hidden_sizes": (),
}

# The matched protocol's values of the shared fields: one table for every agent, then one per
# environment (its entries replace the defaults for every agent alike). These are not tuned for any
# agent; an equal tuning budget (`pglab compare --sweep`) is the fair place to tune them. A shared
# field missing here takes the default of the class that declares it (Preset or CriticPreset).
# ent_coef 0.01: the relaxed-action agents need every action visited to train their critic; the
# advantage normalisation is 'scale', which never adds a baseline of its own.
MATCHED_SETTINGS: Mapping[str, Mapping[str, Any]] = {
    "*": {
        "num_envs": 8,
        "num_steps": 128,
        "gamma": 0.99,
        "lr": 1e-3,
        "ent_coef": 0.01,
        "max_grad_norm": 0.5,
        "normalize_advantages": "scale",
        # the objective every agent is trained for: the same for all; today's defaults (see Preset)
        "batch_episodes": 0,
        "truncation": "bootstrap",
        "discount_weighting": False,
        "hidden_sizes": (64, 64),
        "activation": "tanh",
        "critic_lr": 1e-3,
        "critic_epochs": 10,
        "critic_hidden_sizes": (64, 64),
        "critic_update": "after",
    },
    "Acrobot-v1": {"num_steps": 256},
    **{env_id: MINATAR_SETTINGS for env_id in MINATAR_IDS},
}


def shared_fields() -> dict[str, Any]:
    """Every field shared under the matched protocol, with the default of the class declaring it."""
    return {f.name: f.default for f in dataclasses.fields(CriticPreset)}


def matched_values(preset_cls: type[Preset], env_id: str) -> dict[str, Any]:
    """The values of every shared field of ``preset_cls`` on ``env_id`` under the matched protocol.

    Raises ConfigError for a field that is neither shared nor declared an estimator field, and for
    a declared estimator field that is not a field of the preset's own.
    """
    shared = shared_fields()
    table = {**shared, **MATCHED_SETTINGS["*"], **MATCHED_SETTINGS.get(env_id, {})}
    estimator = set(preset_cls.estimator_fields)
    names = {f.name for f in dataclasses.fields(preset_cls)}
    for name in sorted(estimator - (names - shared.keys())):
        raise ConfigError(
            f"{preset_cls.__name__}.estimator_fields names {name!r}, which is "
            + ("shared by every agent (Preset, CriticPreset)" if name in shared else "not one of its fields")
        )
    values = {}
    for f in dataclasses.fields(preset_cls):
        if f.name in estimator:
            continue
        if f.name not in shared:
            raise ConfigError(
                f"{preset_cls.__name__}.{f.name} is neither shared (a field of Preset or CriticPreset) nor one "
                "of its estimator_fields; declare it in estimator_fields, or compare with --protocol presets"
            )
        values[f.name] = table[f.name]
    return values


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


def resolve_preset(
    preset_cls: type[Preset], env_id: str, overrides: Mapping[str, Any], protocol: str = "presets"
) -> Preset:
    """The preset of one run: its values for ``env_id`` under ``protocol``, then ``overrides``; validated.

    ``presets``: the class defaults, then the agent's tuned values for ``env_id``. ``matched``: every
    shared field from the matched table (:func:`matched_values`), the estimator fields from the class
    and the agent's tuned values for them on ``env_id``. ``overrides`` values may be strings (from
    ``--set key=value``) or already typed values.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    hints = typing.get_type_hints(preset_cls)
    fields = {f.name for f in dataclasses.fields(preset_cls)}
    values: dict[str, Any] = dict(preset_cls.env_overrides.get(env_id, {}))
    if protocol == "matched":
        values = {k: v for k, v in values.items() if k in preset_cls.estimator_fields}
        values.update(matched_values(preset_cls, env_id))
    for name, raw in overrides.items():
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"unknown --set key {name!r} for this agent; {hint}")
        if isinstance(raw, str):
            values[name] = _parse_value(name, raw, hints[name])
        elif fits_type(raw, hints[name]):  # typed already (Python, a config file): of the field's type
            values[name] = tuple(raw) if isinstance(raw, list) else raw
        else:
            raise ConfigError(f"{name}={raw!r}: expected a value of type {type_name(hints[name])}")
    preset = preset_cls(**values)
    preset.validate()
    if protocol == "matched" and preset.normalize_advantages == "standardize":
        raise ConfigError(
            "normalize_advantages='standardize' adds a batch-mean baseline to every agent, so under --protocol "
            "matched the estimators would not differ alone; use scale or off, or --protocol presets"
        )
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


@dataclass(frozen=True)
class AgentSpec:
    """An agent as the ``pglab.agents`` entry-point group exposes it.

    ``build(policy, observation_space, action_space, preset)`` makes the agent. It may be given as a
    string ``"module:function"``, imported on the first build and called with ``extra`` as keyword
    arguments: then the module that defines the spec (and its preset) need not import torch, and
    ``pglab list`` and every ``--help`` stay instant.
    """

    name: str
    description: str
    preset: type[Preset]
    build: Callable[..., Any] | str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.build, str):
            object.__setattr__(self, "build", _ImportedBuilder(self.build, dict(self.extra)))


class _ImportedBuilder:
    """``module:function`` imported when first called, then called with ``extra`` keyword arguments."""

    def __init__(self, reference: str, extra: dict[str, Any]):
        module, sep, name = reference.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"an agent's builder reference must read 'module:function'; got {reference!r}")
        self.module, self.name, self.extra = module, name, extra

    def __call__(self, *args: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(*args, **self.extra)

    def __repr__(self) -> str:
        return f"{self.module}:{self.name}"
