"""Recording an episode as an MP4, with Gymnasium's RecordVideo.

RecordVideo encodes with moviepy (``pip install 'pglab[video]'``; moviepy brings its own ffmpeg
through imageio-ffmpeg, so no system package is needed) and renders with the environment's
``rgb_array`` mode (pygame for the classic-control environments, installed with pglab). A missing
piece is reported in one line by :func:`video_unavailable`, before a run starts, rather than as a
traceback after it ends.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import gymnasium as gym

VIDEO_HINT = "pip install 'pglab[video]'"


def video_unavailable() -> str | None:
    """Why no video can be recorded here (one line), or None when it can."""
    if importlib.util.find_spec("moviepy") is None:
        return f"recording a video needs moviepy, which is not installed ({VIDEO_HINT})"
    return None


def record_first_episode(env: gym.Env, path: Path) -> gym.Env:
    """Wrap ``env`` (made with ``render_mode="rgb_array"``) so its first episode is recorded for ``path``.

    Gymnasium writes the file when the episode ends; :func:`finish_recording` then moves it to ``path``.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # Headless: rgb_array rendering needs no window, and SDL would print an error line looking for one.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    path.parent.mkdir(parents=True, exist_ok=True)
    return gym.wrappers.RecordVideo(
        env, str(_scratch(path)), episode_trigger=lambda i: i == 0, name_prefix=path.stem, disable_logger=True
    )


def _scratch(path: Path) -> Path:
    """A folder of its own for RecordVideo (which warns about any folder that already exists)."""
    return path.parent / f".{path.name}.recording-{os.getpid()}"


def finish_recording(path: Path) -> Path:
    """Move the recorded first episode (after the env is closed) to ``path``."""
    scratch = _scratch(path)
    (scratch / f"{path.stem}-episode-0.mp4").replace(path)
    scratch.rmdir()
    return path
