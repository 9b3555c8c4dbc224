"""Saving and restoring the state of (vector) environments inside a weights-only checkpoint.

A resumed run must continue the episodes in flight exactly where they were, or its numbers would
differ from the uninterrupted run's. Gymnasium has no state API, so this module walks the
environment's object graph (the vector env, its wrappers and sub-environments) and records every
instance attribute as plain data that ``torch.load(..., weights_only=True)`` accepts: numbers,
strings, tensors (for numpy arrays), numpy Generator states, lists, tuples, dicts and deques.

Attributes that are rebuilt identically from the configuration (spaces, specs, metadata, callables)
are skipped. Environments with a state API of their own are saved through it:

* the Arcade Learning Environment (``ale_py.ALEInterface``): ``cloneState(include_rng=True)``
  serialised to bytes, put back with ``restoreState`` (the sticky-action RNG included);
* games whose state is plain Python and numpy (MinAtar, :data:`PLAIN_STATE_MODULES`): their objects
  are walked like the environments themselves, numpy ``RandomState``s included.

An RNG or emulator reached twice (MinAtar's game and its wrapper share one RandomState) is restored
as one object again. If any other attribute holds something this module cannot represent (a
physics-engine handle, a renderer surface), the environment is declared not restorable:
:func:`capture` returns None and the resumed run restarts its episodes, saying so in one line.
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
# Game objects (not Gymnasium environments) whose whole state is plain Python and numpy attributes.
PLAIN_STATE_MODULES = ("minatar.",)
# Values restored into the object already there rather than replaced: plain game objects, emulators.
IN_PLACE = ("object", "ale")


def _is_ale(value: Any) -> bool:
    return type(value).__name__ == "ALEInterface" and type(value).__module__.startswith("ale_py")


def _is_plain_object(value: Any) -> bool:
    return hasattr(value, "__dict__") and type(value).__module__.startswith(PLAIN_STATE_MODULES)


class NotCapturable(Exception):
    """An attribute holds a value with no plain-data form."""


def _encode(value: Any, memo: dict[int, int], attribute: bool = False) -> Any:
    """Plain data for ``value``; ``memo`` numbers the shared objects (RNGs, emulators, games) seen so far.

    Emulators and game objects are restored into the object already there, so they are captured only
    as an ``attribute`` of an environment or a game object, not inside a container.
    """
    if isinstance(value, np.generic):  # before the primitives: np.float64 is a float subclass
        return ("npscalar", value.dtype.str, value.item())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise NotCapturable(f"array of dtype {value.dtype}")
        return ("ndarray", torch.from_numpy(np.array(value, copy=True)))
    if isinstance(value, torch.Tensor):
        return ("tensor", value.detach().clone())
    if isinstance(value, deque):
        return ("deque", [_encode(v, memo) for v in value], value.maxlen)
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_encode(v, memo) for v in value])
    if isinstance(value, dict) and all(isinstance(k, str | int) for k in value):
        return ("dict", {k: _encode(v, memo) for k, v in value.items()})
    if id(value) in memo:
        return ("alias", memo[id(value)])
    if isinstance(value, np.random.Generator):
        encoded: Any = ("generator", value.bit_generator.state)
    elif isinstance(value, np.random.RandomState):
        kind, keys, pos, has_gauss, gauss = value.get_state()
        encoded = ("randomstate", kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)
    elif _is_ale(value) and attribute:
        data = value.cloneState(include_rng=True).serialize()
        encoded = ("ale", torch.frombuffer(bytearray(data), dtype=torch.uint8))
    elif _is_plain_object(value) and attribute:
        encoded = ("object", _capture(value, memo))
    else:
        raise NotCapturable(type(value).__name__)
    memo[id(value)] = len(memo)
    return encoded


def _decode(value: Any, memo: list[Any]) -> Any:
    """The value :func:`_encode` saved (not for :data:`IN_PLACE` tags); shared objects go into ``memo``."""
    if not isinstance(value, tuple):
        return value
    tag = value[0]
    if tag == "ndarray":
        return value[1].numpy().copy()
    if tag == "npscalar":
        return np.dtype(value[1]).type(value[2])
    if tag == "tensor":
        return value[1].clone()
    if tag == "deque":
        return deque((_decode(v, memo) for v in value[1]), maxlen=value[2])
    if tag == "list":
        return [_decode(v, memo) for v in value[1]]
    if tag == "tuple":
        return tuple(_decode(v, memo) for v in value[1])
    if tag == "dict":
        return {k: _decode(v, memo) for k, v in value[1].items()}
    if tag == "alias":
        return memo[value[1]]
    if tag == "generator":
        shared: Any = np.random.Generator(getattr(np.random, value[1]["bit_generator"])())
        shared.bit_generator.state = value[1]
    elif tag == "randomstate":
        shared = np.random.RandomState()
        shared.set_state((value[1], value[2].numpy().astype(np.uint32), value[3], value[4], value[5]))
    else:
        raise ValueError(f"unknown tag {tag!r} in a saved environment state")
    memo.append(shared)
    return shared


def _is_static(name: str, value: Any) -> bool:
    return (
        name in STATIC_NAMES
        or isinstance(value, STATIC_TYPES)
        or (callable(value) and not isinstance(value, ENV_TYPES))
        # e.g. ALE's action set, a list of Action enum members fixed by the configuration
        or (isinstance(value, list | tuple) and bool(value) and all(isinstance(v, enum.Enum) for v in value))
    )


def _children(value: Any) -> list[Any] | None:
    """The environments an attribute holds (itself, or a list of them), or None."""
    if isinstance(value, ENV_TYPES):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, ENV_TYPES) for v in value):
        return value
    return None


def _capture(obj: Any, memo: dict[int, int]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if _is_static(name, value):
            continue
        children = _children(value)
        if children is not None:
            state[name] = ("envs", [_capture(child, memo) for child in children])
        else:
            try:
                state[name] = _encode(value, memo, attribute=True)
            except NotCapturable as exc:
                raise NotCapturable(f"{type(obj).__name__}.{name}: {exc}") from None
    return state


def capture(envs: Any) -> dict[str, Any] | None:
    """The full state of ``envs`` as plain data, or None if some part cannot be represented."""
    try:
        return _capture(envs, {})
    except NotCapturable:
        return None


def without_episode_statistics(state: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray | None]:
    """(the vector env's state, the returns of the episodes in flight or None) from a captured state.

    Until pglab's collector kept the episode returns itself, Gymnasium's ``RecordEpisodeStatistics``
    wrapped every vector env, so a checkpoint written then holds that wrapper's state around the vector
    env's: its ``episode_returns`` are the collector's returns in flight (its lengths were the collector's
    timesteps, saved with the collector). A state without the wrapper comes back as it is, with None.
    """
    if "_stats_key" not in state or "episode_returns" not in state:
        return state, None
    return state["env"][1][0], _decode(state["episode_returns"], [])


def restore(envs: Any, state: dict[str, Any]) -> None:
    """Put a state from :func:`capture` back into an environment built from the same configuration."""
    _restore(envs, state, [])


def _restore(obj: Any, state: dict[str, Any], memo: list[Any]) -> None:
    for name, value in state.items():
        tag = value[0] if isinstance(value, tuple) and value else None
        if tag == "envs":
            current = getattr(obj, name)
            targets = current if isinstance(current, list) else [current]
            if len(targets) != len(value[1]):
                raise ValueError(f"saved state has {len(value[1])} environments in {name!r}, this run {len(targets)}")
            for target, child in zip(targets, value[1], strict=True):
                _restore(target, child, memo)
        elif tag in IN_PLACE:
            target = getattr(obj, name)
            if tag == "ale":
                target.restoreState(type(target.cloneState())(value[1].numpy().tobytes()))
            else:
                _restore(target, value[1], memo)
            memo.append(target)
        else:
            setattr(obj, name, _decode(value, memo))
