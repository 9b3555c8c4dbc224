"""Recording one episode of a policy as an MP4, with Gymnasium's RecordVideo.

RecordVideo encodes with moviepy (``pip install 'pglab[video]'``; moviepy brings its own ffmpeg
through imageio-ffmpeg, so no system package is needed) and renders with the environment's
``rgb_array`` mode (pygame for the classic-control environments, installed with pglab). A missing
piece is reported in one line by :func:`video_unavailable`, before a run starts, rather than as a
traceback after it ends.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pglab.environment import resolve_env_id
from pglab.policy import ObservationEncoder

VIDEO_HINT = "pip install 'pglab[video]'"


def video_unavailable() -> str | None:
    """Why no video can be recorded here (one line), or None when it can."""
    if importlib.util.find_spec("moviepy") is None:
        return f"recording a video needs moviepy, which is not installed ({VIDEO_HINT})"
    return None


def record_episode(
    env_id: str,
    act: Callable[[torch.Tensor], torch.Tensor],
    folder: Path,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    name: str = "eval",
) -> Path:
    """Play one episode with ``act`` (encoded observations -> actions) and write ``folder/<name>.mp4``.

    The environment is wrapped in a one-copy vector env so that ``act`` sees the same batched,
    encoded observations as in training, whatever the observation space.
    """
    bare_id = resolve_env_id(env_id)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Headless: rgb_array rendering needs no window, and SDL would print an error line looking for one.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

    def make() -> gym.Env:
        env = gym.make(bare_id, render_mode="rgb_array", **dict(env_kwargs or {}))
        return gym.wrappers.RecordVideo(env, str(folder), episode_trigger=lambda _: True, name_prefix=name)

    envs = gym.vector.SyncVectorEnv([make])
    try:
        encoder = ObservationEncoder(envs.single_observation_space)
        obs, _ = envs.reset(seed=seed)
        done = False
        with torch.inference_mode():
            while not done:
                actions = act(encoder(obs)).cpu().numpy()
                obs, _, terminated, truncated, _ = envs.step(actions.astype(envs.single_action_space.dtype))
                done = bool(np.any(terminated | truncated))
    finally:
        envs.close()  # RecordVideo writes the file when it is closed
    path = folder / f"{name}-episode-0.mp4"
    target = folder / f"{name}.mp4"
    path.replace(target)
    return target
