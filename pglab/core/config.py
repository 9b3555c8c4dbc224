"""A run's configuration, without torch: what a grid's own process needs to plan its runs.

:class:`TrainConfig` and :func:`run_name` live here rather than in :mod:`pglab.core.train` (which
re-exports them) so that ``pglab compare`` plans, validates and skips finished runs without importing
torch: torch is imported by the workers (the local engine's fork server, once), never by the grid's
process, whose start and exit it would lengthen by seconds on a loaded machine, and a rerun of a
finished grid ends in a fraction of a second.
"""

from __future__ import annotations

import math
import re
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglab.core.limits import check_seed, fits_type, type_name
from pglab.core.preset import PROTOCOLS
from pglab.errors import ConfigError
from pglab.io.checkpoint import DEFAULT_CHECKPOINT_EVERY
from pglab.io.runlog import WANDB_MODES, default_wandb_mode

DEVICES = ("auto", "cpu", "cuda")  # where the update runs (pglab.core.device resolves them)
VECTORIZATION_MODES = ("auto", "sync", "async")  # how a run's environments step (pglab.core.environment)


@dataclass
class TrainConfig:
    """Everything that defines a run besides the agent's preset (which ``overrides`` adjusts)."""

    agent: str = "reinforce-value"
    env: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 500_000
    num_envs: int | None = None  # None keeps the preset's
    overrides: dict[str, Any] = field(default_factory=dict)  # --set key=value, any preset field
    protocol: str = "presets"  # presets: the agent's tuned values; matched: only the estimator fields differ
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gym.make
    target_return: float | None = None
    run_dir: str | None = None
    wandb_mode: str = field(default_factory=default_wandb_mode)  # offline unless $WANDB_MODE says otherwise
    wandb_project: str = "pglab"
    wandb_entity: str | None = None
    wandb_group: str | None = None
    wandb_tags: tuple[str, ...] = ()
    wandb_run_id: str | None = None  # chosen when the run starts; a resumed run continues the same W&B run
    vectorization: str = "auto"
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY  # environment steps between checkpoints; 0: only at the end
    torch_threads: int = 1  # small MLPs run fastest on one thread; grids run one process per core
    device: str = "auto"  # where the update runs (pglab.core.device): auto (a GPU if there is one), cpu, cuda
    progress: bool = True
    grad_diagnostics_every: int = 0  # updates between estimator diagnostics (pglab.diagnostics.grads); 0: never
    step_timeout: float | None = None  # seconds one environment step may take before the run fails; None: no limit
    grad_diagnostics_samples: int = 16  # estimates per diagnostic (the reference uses 4x as many)
    tensorboard: bool = True  # every metrics row also as TensorBoard scalars in the run directory (pglab.io.tblog)
    capture_video: bool = False  # record one episode of the trained policy into videos/ (and W&B)

    def validate(self) -> None:
        check_seed(self.seed)
        if self.total_steps <= 0:
            raise ConfigError(f"--total-steps must be positive; got {self.total_steps}")
        if self.num_envs is not None and self.num_envs < 1:
            raise ConfigError(f"--num-envs must be at least 1; got {self.num_envs}")
        if self.wandb_mode not in WANDB_MODES:
            raise ConfigError(f"--wandb-mode must be one of {', '.join(WANDB_MODES)}; got {self.wandb_mode!r}")
        if self.vectorization not in VECTORIZATION_MODES:
            raise ConfigError(f"--vectorization must be one of {', '.join(VECTORIZATION_MODES)}")
        if self.step_timeout is not None and not (math.isfinite(self.step_timeout) and self.step_timeout > 0):
            raise ConfigError(f"--step-timeout must be a positive number of seconds; got {self.step_timeout}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint-every must be >= 0; got {self.checkpoint_every}")
        if self.grad_diagnostics_every < 0:
            raise ConfigError(f"--grad-diagnostics-every must be >= 0; got {self.grad_diagnostics_every}")
        if self.target_return is not None and not math.isfinite(self.target_return):
            raise ConfigError(f"--target-return must be a finite number; got {self.target_return}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}; got {self.protocol!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}; got {self.device!r}")

    @classmethod
    def from_resolved(cls, resolved: dict[str, Any], source: str = "config.json") -> TrainConfig:
        """The config back from a run's config.json (which also holds hyperparameters and versions).

        A value of the wrong type (a seed of "abc", num_envs of 1e9) is a ConfigError naming ``source``.
        """
        hints = typing.get_type_hints(cls)
        values = {k: v for k, v in resolved.items() if k in hints}
        for name, value in values.items():
            if not fits_type(value, hints[name]):
                raise ConfigError(
                    f"{source}: {name} must be {type_name(hints[name])}; got {value!r}; "
                    "this file was not written by pglab or was edited"
                )
        values["wandb_tags"] = tuple(values.get("wandb_tags") or ())
        return cls(**values)


def run_name(config: TrainConfig) -> str:
    """``<env>__<agent>__<seed>``, safe as a directory name (``module:Env/Id-v0`` -> ``module-Env-Id-v0``)."""
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.env)
    return f"{env}__{config.agent}__{config.seed}"


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{run_name(config)}__{time.strftime('%Y%m%d-%H%M%S')}"
