"""Evaluating a trained policy: the return's mean, spread and confidence interval, and a video.

Episodes run one after another in a single environment, each seeded from ``seed + i``, so the
returns are independent draws and the confidence interval (Student's t) is honest.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from pglab.core import estimators as est
from pglab.core.environment import make_env, refuse_unnamed_module, resolve_env_id
from pglab.core.limits import available_memory, check_seed, fits_type, gigabytes, network_bytes, type_name
from pglab.core.policy import PolicyNetwork
from pglab.errors import CheckpointError, ConfigError, EnvironmentSetupError, PglabError
from pglab.io.checkpoint import CHECKPOINT, load_checkpoint
from pglab.io.rundir import DirectoryLock, is_pglab_run
from pglab.io.runlog import write_json
from pglab.io.video import finish_recording, record_first_episode, video_unavailable
from pglab.lab import stats


def locate_checkpoint(path: str | Path) -> Path:
    """A run directory or a checkpoint file -> the checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; give a run directory or a checkpoint.pt file")
    return path


# What evaluate reads from a checkpoint's config_json, and the type each must have.
_CHECKPOINT_CONFIG = {
    "env": str,
    "env_kwargs": dict[str, Any],
    "observation_space": str,
    "action_space": str,
    "hyperparameters": dict[str, Any],
}


def checkpoint_config(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """The run configuration a checkpoint carries, checked to hold what evaluation reads from it."""
    try:
        config = json.loads(checkpoint["config_json"])
        hyper = config["hyperparameters"]
        fields = {**_CHECKPOINT_CONFIG, "hidden_sizes": tuple[int, ...], "activation": str}
        values = {**{k: config[k] for k in _CHECKPOINT_CONFIG}, **{k: hyper[k] for k in ("hidden_sizes", "activation")}}
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path} lacks its run configuration ({exc!r}); it is not a checkpoint pglab wrote"
        ) from exc
    for name, value in values.items():
        if not fits_type(value, fields[name]):
            raise CheckpointError(f"{path}: its {name} must be {type_name(fields[name])}; got {value!r:.80}")
    return config


def load_policy(checkpoint: dict[str, Any], env: gym.Env) -> PolicyNetwork:
    """The checkpoint's policy, checked against ``env``'s spaces."""
    config = json.loads(checkpoint["config_json"])
    if str(env.observation_space) != config["observation_space"] or str(env.action_space) != config["action_space"]:
        raise CheckpointError(
            f"the checkpoint was trained on {config['env']} (observations {config['observation_space']}, actions "
            f"{config['action_space']}), which does not match {env.spec.id if env.spec else env} "
            f"({env.observation_space}, {env.action_space})"
        )
    hyper = config["hyperparameters"]
    need = network_bytes(gym.spaces.flatdim(env.observation_space), hyper["hidden_sizes"], env.action_space.n, 1)
    if need > available_memory():
        raise CheckpointError(
            f"the checkpoint's policy (hidden_sizes {tuple(hyper['hidden_sizes'])}) needs {gigabytes(need)} of memory, "
            f"more than the {gigabytes(available_memory())} available; not loaded"
        )
    policy = PolicyNetwork(env.observation_space, int(env.action_space.n), hyper["hidden_sizes"], hyper["activation"])
    try:
        policy.load_state_dict(checkpoint["agent"]["policy"])
    except (KeyError, TypeError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"the checkpoint's policy weights do not fit its own configuration ({detail})") from exc
    policy.eval()
    return policy


def _make_env(env_id: str, env_kwargs: dict[str, Any], render: bool) -> gym.Env:
    """One environment; ``render_mode`` is passed only for a video, since plug-ins need not accept it."""
    kwargs = {**env_kwargs, **({"render_mode": "rgb_array"} if render else {})}
    try:
        with warnings.catch_warnings():  # the one line below says it better than Gymnasium's warning
            warnings.filterwarnings("ignore", message=".*render_mode")
            return make_env(env_id, env_kwargs=kwargs)
    except TypeError as exc:
        if render and "render_mode" in str(exc):
            raise EnvironmentSetupError(
                f"{env_id} cannot render (its constructor takes no render_mode); drop --video"
            ) from exc
        raise EnvironmentSetupError(f"{env_id} rejected its arguments {env_kwargs}: {exc}") from exc


def evaluate(
    source: str | Path,
    episodes: int = 100,
    greedy: bool = False,
    env_id: str | None = None,
    seed: int = 10_000,
    video: str | Path | None = None,
    trusted_modules: Collection[str] = (),
) -> dict[str, Any]:
    """Run ``episodes`` episodes of the saved policy; returns mean, std and a 95% confidence interval.

    ``env_id`` (the user's) replaces the checkpoint's environment. The checkpoint's own
    ``module:EnvId`` is made only if ``module`` is in ``trusted_modules`` or already imported: a
    checkpoint never makes pglab import (run) a module.
    """
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1; got {episodes}")
    check_seed(seed)
    check_seed(seed + episodes - 1, "--seed + --episodes - 1")
    path = locate_checkpoint(source)
    checkpoint = load_checkpoint(path)
    config = checkpoint_config(checkpoint, path)
    if env_id is None:
        refuse_unnamed_module(config["env"], str(path), trusted_modules)
    env_name = env_id or config["env"]
    env = _make_env(resolve_env_id(env_name), config.get("env_kwargs", {}), video is not None)
    if video:
        if reason := video_unavailable():
            raise PglabError(f"--video: {reason}")
        env = record_first_episode(env, Path(video))
    policy = load_policy(checkpoint, env)
    generator = torch.Generator().manual_seed(seed)
    returns = []
    try:
        for i in range(episodes):
            returns.append(_episode(env, policy, greedy, seed + i, generator))
    finally:
        env.close()
    if video:
        finish_recording(Path(video))
    mean, std, low, high = stats.t_interval(returns)
    return {
        "checkpoint": str(path),
        "env": env_name,
        "episodes": episodes,
        "greedy": greedy,
        "mean": mean,
        "std": std,
        "ci95": [low, high],
        "returns": returns,
        "video": str(video) if video else None,
    }


def default_result_path(checkpoint: Path, greedy: bool, env_id: str | None) -> Path:
    """``eval-sampled.json``, ``eval-greedy.json``, ``eval-greedy-<other env>.json``... beside the checkpoint.

    One file per mode, so evaluating greedily never overwrites the sampled evaluation (or another env's).
    """
    other_env = "-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", env_id) if env_id else ""
    return checkpoint.parent / f"eval-{'greedy' if greedy else 'sampled'}{other_env}.json"


def evaluate_and_save(source: str | Path, json_path: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """:func:`evaluate`, then write the result as JSON (default: :func:`default_result_path`).

    Writing into a run directory takes its lock (:mod:`pglab.io.rundir`) for the whole evaluation:
    never beside a training or another writer that is still writing there.
    """
    path = (
        Path(json_path)
        if json_path
        else default_result_path(locate_checkpoint(source), bool(options.get("greedy")), options.get("env_id"))
    )
    into_a_run = path.parent.is_dir() and is_pglab_run(path.parent)
    with DirectoryLock(path.parent, "eval") if into_a_run else contextlib.nullcontext():
        result = evaluate(source, **options)
        result["json"] = str(path)
        write_json(path, result)
    return result


def _episode(env: gym.Env, policy: PolicyNetwork, greedy: bool, seed: int, generator: torch.Generator) -> float:
    observation, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        with torch.inference_mode():
            logits = policy.logits([observation])
            action = logits.argmax(-1) if greedy else est.gumbel_max_sample(logits, generator)
        observation, reward, terminated, truncated, _ = env.step(int(action.item()))
        total += float(reward)
        done = terminated or truncated
    return total
