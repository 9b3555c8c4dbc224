"""What makes a run reproducible: the seeds of every RNG, and the versions of what ran it."""

from __future__ import annotations

import functools
import platform
import random
from importlib.metadata import version

import gymnasium as gym
import numpy as np
import torch


def versions() -> dict[str, str]:
    """The versions config.json and checkpoints record: the same seed reproduces a run only with these."""
    return dict(_versions())  # a copy: the caller may change it


@functools.cache  # they cannot change within a process; reading pglab's package metadata costs ~3 ms a run
def _versions() -> dict[str, str]:
    return {
        "pglab": version("pglab"),
        "torch": str(torch.__version__),  # a TorchVersion object would not load with weights_only=True
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs: whatever a library draws from them repeats too."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
