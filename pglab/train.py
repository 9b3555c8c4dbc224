"""The one training loop: collect a batch, update the agent, log, repeat.

Read :func:`train` top to bottom; everything an agent does differently lives in the agent. The
run directory it writes is a contract (DESIGN.md, "Contracts"): config.json, metrics.jsonl,
summary.json, checkpoint.pt and, unless disabled, wandb/.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import random
import re
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from pglab.agent import Agent, resolve_preset
from pglab.checkpoint import save_checkpoint
from pglab.environment import VECTORIZATION_MODES, make_vector_env
from pglab.errors import ConfigError, NonFiniteLossError
from pglab.plugins import get_agent
from pglab.policy import PolicyNetwork
from pglab.rollout import Collector
from pglab.runlog import WANDB_MODES, RunLog, write_json

SOLVED_WINDOW = 100  # episodes in the "last 100" mean that --target-return is checked against


@dataclass
class TrainConfig:
    """Everything that defines a run besides the agent's preset (which ``overrides`` adjusts)."""

    agent: str = "reinforce-value"
    env: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 500_000
    num_envs: int | None = None  # None keeps the preset's
    overrides: dict[str, Any] = field(default_factory=dict)  # --set key=value, any preset field
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gym.make
    target_return: float | None = None
    run_dir: str | None = None
    wandb_mode: str = "offline"
    wandb_project: str = "pglab"
    wandb_entity: str | None = None
    wandb_group: str | None = None
    wandb_tags: tuple[str, ...] = ()
    vectorization: str = "auto"
    checkpoint_every: int = 0  # environment steps between checkpoints; 0: only at the end
    torch_threads: int = 1  # small MLPs run fastest on one thread; grids run one process per core
    progress: bool = True

    def validate(self) -> None:
        if self.total_steps <= 0:
            raise ConfigError(f"--total-steps must be positive; got {self.total_steps}")
        if self.num_envs is not None and self.num_envs < 1:
            raise ConfigError(f"--num-envs must be at least 1; got {self.num_envs}")
        if self.wandb_mode not in WANDB_MODES:
            raise ConfigError(f"--wandb-mode must be one of {', '.join(WANDB_MODES)}; got {self.wandb_mode!r}")
        if self.vectorization not in VECTORIZATION_MODES:
            raise ConfigError(f"--vectorization must be one of {', '.join(VECTORIZATION_MODES)}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint-every must be >= 0; got {self.checkpoint_every}")
        if self.target_return is not None and not math.isfinite(self.target_return):
            raise ConfigError(f"--target-return must be a finite number; got {self.target_return}")


def versions() -> dict[str, str]:
    return {
        "pglab": version("pglab"),
        "torch": str(torch.__version__),  # a TorchVersion object would not load with weights_only=True
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def default_run_dir(config: TrainConfig) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.env)
    return Path("runs") / f"{env}__{config.agent}__{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_run_dir(config: TrainConfig) -> Path:
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    if (run_dir / "metrics.jsonl").exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --run-dir (nothing was overwritten)")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def train(config: TrainConfig | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train one agent on one environment; returns the summary (also written to summary.json).

    ``pglab.train(agent="reinforce-rloo", env="CartPole-v1", total_steps=50_000)`` is the same as
    ``pglab train --agent reinforce-rloo --env CartPole-v1 --total-steps 50000``.
    """
    config = config or TrainConfig(**kwargs)
    config.validate()
    spec = get_agent(config.agent)
    overrides = dict(config.overrides)
    if config.num_envs is not None:
        overrides["num_envs"] = config.num_envs
    preset = resolve_preset(spec.preset, config.env.rpartition(":")[2], overrides)

    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    envs = make_vector_env(config.env, preset.num_envs, config.vectorization, config.env_kwargs)
    # The policy is the first thing built from the seeded RNG: the same seed gives every agent the
    # same initial policy weights, whatever critic it builds afterwards.
    policy = PolicyNetwork(
        envs.single_observation_space,
        int(envs.single_action_space.n),
        preset.hidden_sizes,
        preset.activation,
    )
    agent = spec.build(policy, envs.single_observation_space, envs.single_action_space, preset)
    collector = Collector(envs, policy.encoder, preset.num_steps)

    run_dir = prepare_run_dir(config)
    resolved = {
        **dataclasses.asdict(config),
        "run_dir": str(run_dir),
        "hyperparameters": preset.to_dict(),
        "versions": versions(),
    }
    write_json(run_dir / "config.json", resolved)
    wandb_settings = {
        "project": config.wandb_project,
        "entity": config.wandb_entity,
        "group": config.wandb_group,
        "tags": config.wandb_tags,
    }
    log = RunLog(run_dir, resolved, config.wandb_mode, wandb_settings)

    steps_per_update = preset.num_envs * preset.num_steps
    num_updates = math.ceil(config.total_steps / steps_per_update)
    global_step, solved_at_step, solved_at_wall_s, status = 0, None, None, "running"
    bar = tqdm(
        total=num_updates * steps_per_update,
        unit="step",
        disable=not config.progress,
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    collector.reset(config.seed)
    try:
        for _ in range(num_updates):
            batch = collector.collect(agent)
            global_step += steps_per_update
            metrics = agent.update(batch)
            sps = global_step / (time.perf_counter() - start)
            log.log(
                {
                    "global_step": global_step,
                    **collector.stats.drain(),
                    **metrics,
                    "charts/SPS": sps,
                }
            )
            mean100 = collector.stats.mean_last100()
            bar.update(steps_per_update)
            bar.set_postfix(ret100=f"{mean100:.1f}" if mean100 is not None else "-", sps=f"{sps:,.0f}")
            if config.checkpoint_every and global_step % config.checkpoint_every < steps_per_update:
                save_checkpoint(run_dir / "checkpoint.pt", _checkpoint(agent, config, global_step))
            if (
                config.target_return is not None
                and len(collector.stats.last100) == SOLVED_WINDOW
                and mean100 is not None
                and mean100 >= config.target_return
            ):
                solved_at_step, solved_at_wall_s = global_step, time.perf_counter() - start
                break
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except NonFiniteLossError:
        status = "diverged"  # the agent still holds its last good weights: they are saved below
        raise
    except BaseException:
        status = "failed"  # e.g. the environment raised: keep the last checkpoint as it is
        raise
    finally:
        bar.close()
        if status != "failed":
            save_checkpoint(run_dir / "checkpoint.pt", _checkpoint(agent, config, global_step))
        wall_s = time.perf_counter() - start
        summary = {
            "agent": config.agent,
            "env": config.env,
            "seed": config.seed,
            "status": status,
            "global_step": global_step,
            "wall_s": wall_s,
            "sps": global_step / wall_s if wall_s > 0 else 0.0,
            "episodes": collector.stats.count,
            "return_mean_last100": collector.stats.mean_last100(),
            "solved_at_step": solved_at_step,
            "solved_at_wall_s": solved_at_wall_s,
            "target_return": config.target_return,
        }
        write_json(run_dir / "summary.json", summary)
        log.close(summary, exit_code=0 if status == "finished" else 1)
        envs.close()
    return summary


def _checkpoint(agent: Agent, config: TrainConfig, global_step: int) -> dict[str, Any]:
    return {
        "agent": agent.state_dict(),
        "agent_name": config.agent,
        "env": config.env,
        "seed": config.seed,
        "global_step": global_step,
        "torch_rng": torch.get_rng_state(),
        "versions": versions(),
    }
