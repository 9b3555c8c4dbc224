"""Where the learner runs: ``--device auto|cpu|cuda``.

Agents are always built on the CPU from the seeded RNG, so a seed gives the same initial weights
whatever the device; then every network of the agent moves to the device, and each batch follows
it for the update. Acting happens on the learner's device too: one forward pass per vector step
for ``num_envs`` observations, moved there and the actions back. On a CPU-only machine ``auto`` is
the CPU and nothing is copied at all.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pglab.core.config import DEVICES
from pglab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when torch sees one, else the CPU; ``cuda`` without a GPU is a ConfigError."""
    if name not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        cuda = torch.version.cuda
        build = "built without CUDA" if cuda is None else f"CUDA {cuda}, but no GPU is visible"
        raise ConfigError(f"--device cuda: torch {torch.__version__} ({build}); use --device cpu or auto")
    return torch.device("cuda")


def move_agent(agent: Any, device: torch.device) -> None:
    """Move every network an agent holds (policy, critics, target networks) to ``device``, in place.

    ``Module.to`` keeps the Parameter objects, so optimisers built on them stay valid.
    """
    for value in vars(agent).values():
        if isinstance(value, nn.Module):
            value.to(device)


class DeviceActor:
    """Acts for the collector with an agent that lives on another device: CPU features in, CPU actions out."""

    def __init__(self, agent: Any, device: torch.device):
        self.agent = agent
        self.device = device

    def act(self, features: torch.Tensor) -> torch.Tensor:
        return self.agent.act(features.to(self.device, non_blocking=True)).cpu()
