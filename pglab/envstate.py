"""Saving and restoring the state of (vector) environments inside a weights-only checkpoint.

A resumed run must continue the episodes in flight exactly where they were, or its numbers would
differ from the uninterrupted run's. Gymnasium has no state API, so this module walks the
environment's object graph (the vector env, its wrappers and sub-environments) and records every
instance attribute as plain data that ``torch.load(..., weights_only=True)`` accepts: numbers,
strings, tensors (for numpy arrays), numpy Generator states, lists, tuples, dicts and deques.

Attributes that are rebuilt identically from the configuration (spaces, specs, metadata, callables)
are skipped. If any other attribute holds something this module cannot represent (a physics-engine
handle, a renderer surface), the environment is declared not restorable: :func:`capture` returns
None and the resumed run restarts its episodes, saying so in one line.
"""

from __future__ import annotations

import enum
import types
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch

ENV_TYPES = (gym.Env, gym.Wrapper, gym.vector.VectorEnv, gym.vector.VectorWrapper)
# Rebuilt from the configuration when the run is rebuilt; never part of the state.
STATIC_TYPES = (gym.Space, gym.envs.registration.EnvSpec, enum.Enum, type, types.ModuleType)
STATIC_NAMES = frozenset({"_saved_kwargs", "metadata", "_metadata", "spec", "_cached_spec", "env_fns"})


class NotCapturable(Exception):
    """An attribute holds a value with no plain-data form."""


def _encode(value: Any) -> Any:
    if isinstance(value, np.generic):  # before the primitives: np.float64 is a float subclass
        return ("npscalar", value.dtype.str, value.item())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise NotCapturable(f"array of dtype {value.dtype}")
        return ("ndarray", torch.from_numpy(np.array(value, copy=True)))
    if isinstance(value, np.random.Generator):
        return ("generator", value.bit_generator.state)
    if isinstance(value, torch.Tensor):
        return ("tensor", value.detach().clone())
    if isinstance(value, deque):
        return ("deque", [_encode(v) for v in value], value.maxlen)
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_encode(v) for v in value])
    if isinstance(value, dict) and all(isinstance(k, str | int) for k in value):
        return ("dict", {k: _encode(v) for k, v in value.items()})
    raise NotCapturable(type(value).__name__)


def _decode(value: Any) -> Any:
    if not isinstance(value, tuple):
        return value
    tag = value[0]
    if tag == "ndarray":
        return value[1].numpy().copy()
    if tag == "npscalar":
        return np.dtype(value[1]).type(value[2])
    if tag == "generator":
        generator = np.random.Generator(getattr(np.random, value[1]["bit_generator"])())
        generator.bit_generator.state = value[1]
        return generator
    if tag == "tensor":
        return value[1].clone()
    if tag == "deque":
        return deque((_decode(v) for v in value[1]), maxlen=value[2])
    if tag == "list":
        return [_decode(v) for v in value[1]]
    if tag == "tuple":
        return tuple(_decode(v) for v in value[1])
    if tag == "dict":
        return {k: _decode(v) for k, v in value[1].items()}
    raise ValueError(f"unknown tag {tag!r} in a saved environment state")


def _is_static(name: str, value: Any) -> bool:
    return (
        name in STATIC_NAMES
        or isinstance(value, STATIC_TYPES)
        or (callable(value) and not isinstance(value, ENV_TYPES))
    )


def _children(value: Any) -> list[Any] | None:
    """The environments an attribute holds (itself, or a list of them), or None."""
    if isinstance(value, ENV_TYPES):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, ENV_TYPES) for v in value):
        return value
    return None


def _capture(obj: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if _is_static(name, value):
            continue
        children = _children(value)
        if children is not None:
            state[name] = ("envs", [_capture(child) for child in children])
        else:
            try:
                state[name] = _encode(value)
            except NotCapturable as exc:
                raise NotCapturable(f"{type(obj).__name__}.{name}: {exc}") from None
    return state


def capture(envs: Any) -> dict[str, Any] | None:
    """The full state of ``envs`` as plain data, or None if some part cannot be represented."""
    try:
        return _capture(envs)
    except NotCapturable:
        return None


def restore(envs: Any, state: dict[str, Any]) -> None:
    """Put a state from :func:`capture` back into an environment built from the same configuration."""
    for name, value in state.items():
        if isinstance(value, tuple) and value and value[0] == "envs":
            current = getattr(envs, name)
            targets = current if isinstance(current, list) else [current]
            if len(targets) != len(value[1]):
                raise ValueError(f"saved state has {len(value[1])} environments in {name!r}, this run {len(targets)}")
            for target, child in zip(targets, value[1], strict=True):
                restore(target, child)
        else:
            setattr(envs, name, _decode(value))
