"""What pglab accepts before it starts anything: seeds, the types of values read from files, memory.

Every check here turns a value that would end in a traceback or a hang deep inside numpy, torch or
Gymnasium into one ConfigError line naming the value and the way to fix it, raised before anything
is allocated or written.
"""

from __future__ import annotations

import itertools
import os
import types
import typing
from typing import Any

from pglab.errors import ConfigError

MAX_SEED = 2**32 - 1  # numpy's global seeding (np.random.seed) takes no larger seed


def check_seed(seed: Any, name: str = "--seed") -> int:
    """``seed`` if it is an integer in [0, 2**32 - 1], else a ConfigError naming ``name``."""
    if not fits_type(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{name} must be an integer from 0 to {MAX_SEED}; got {seed!r}")
    return seed


def fits_type(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON or TOML fits the annotation ``hint`` of a config field.

    An int is no float's impostor (JSON writes 1.0 as 1), but a bool is no number and a float is no
    int: ``num_steps = 1e30`` must not reach ``torch.empty``.
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits_type(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple)) and all(fits_type(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return True  # a type this check does not know: the field's own validation decides


def type_name(hint: Any) -> str:
    """``int | None`` -> 'int or null'; for the one line that says what was expected."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple:
        return f"a list of {type_name(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def available_memory() -> int:
    """Bytes of memory this machine can give a new allocation now (Linux: MemAvailable), else all of it."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63  # unknown: no limit rather than a false refusal


def gigabytes(size: float) -> str:
    return f"{size / 2**30:,.1f} GB"


FLOAT_BYTES = 4  # pglab's networks and rollout tensors are float32
ENV_BYTES = 4096  # a lower bound on one environment copy (a classic-control env object and its wrappers)


def network_bytes(in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int, batch: int) -> int:
    """Memory of one MLP in training: weights, gradients and Adam's two moments, plus one batch's activations
    (kept for the backward pass, and their gradients)."""
    sizes = [in_dim, *hidden_sizes, out_dim]
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    return FLOAT_BYTES * (4 * params + 2 * batch * sum(sizes[1:]))


def run_memory(preset: Any, obs_dim: int, n_actions: int) -> int:
    """A lower estimate of the memory a run of ``preset`` takes: networks, one batch through them, the rollout.

    The policy has ``hidden_sizes``; every other ``*hidden_sizes`` field is a critic on (observation,
    one-hot action), run once per Gumbel draw where the preset has ``rao_samples``.
    """
    batch = max(preset.num_envs * preset.num_steps, getattr(preset, "batch_episodes", 0))  # an episode: >= 1 step
    total = network_bytes(obs_dim, preset.hidden_sizes, n_actions, batch)
    draws = getattr(preset, "rao_samples", 1)
    for name, value in preset.to_dict().items():
        if name != "hidden_sizes" and name.endswith("hidden_sizes"):
            total += network_bytes(obs_dim + n_actions, tuple(value), 1, batch * draws)
    rollout = batch * (obs_dim + n_actions + 8) * FLOAT_BYTES  # observations, logits, actions, rewards, flags...
    return total + 2 * rollout + preset.num_envs * ENV_BYTES


def check_run_memory(preset: Any, obs_dim: int, n_actions: int) -> None:
    """ConfigError if the run cannot fit in the memory available now, before anything is allocated."""
    need, have = run_memory(preset, obs_dim, n_actions), available_memory()
    draws = f", rao_samples {preset.rao_samples:,}" if hasattr(preset, "rao_samples") else ""
    lower = "num_envs, num_steps or the hidden sizes"
    if need > have:
        raise ConfigError(
            f"this run needs at least {gigabytes(need)} of memory (num_envs {preset.num_envs:,} x num_steps "
            f"{preset.num_steps:,}, hidden_sizes {tuple(preset.hidden_sizes)}{draws}) but {gigabytes(have)} is "
            f"available; lower {'num_envs, num_steps, the hidden sizes or rao_samples' if draws else lower}"
        )
