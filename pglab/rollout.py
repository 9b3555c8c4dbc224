"""Vectorised data collection into preallocated tensors.

The buffer is time-major, ``(num_steps, num_envs, ...)`` as in CleanRL, and allocated once. Per step
the collector does nothing but one batched forward pass (in ``torch.inference_mode``) and one
vector-environment step.

Gymnasium's vector environments reset finished sub-environments on the *next* step
(``AutoresetMode.NEXT_STEP``): the step after an episode end ignores its action and returns the first
observation of the next episode with reward 0. Such reset steps are stored with ``valid = False`` and
every loss masks them out. Their stored observation is the *final* observation of the finished
episode, so ``features[t + 1]`` is always the true next state of step t, which is what a critic needs
to bootstrap a truncated episode.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from pglab.errors import EnvironmentStepError
from pglab.policy import ObservationEncoder


class Actor(Protocol):
    def act(self, features: torch.Tensor) -> torch.Tensor:
        """Integer actions (num_envs,) for encoded observations (num_envs, width)."""
        ...


@dataclass
class RolloutBuffer:
    """One batch of experience: T steps of N environments, plus the state after the last step."""

    features: torch.Tensor  # (T, N, D) encoded observations s_t
    actions: torch.Tensor  # (T, N) int64
    rewards: torch.Tensor  # (T, N) float32
    terminated: torch.Tensor  # (T, N) bool
    truncated: torch.Tensor  # (T, N) bool
    valid: torch.Tensor  # (T, N) bool, False on autoreset steps
    next_features: torch.Tensor  # (N, D) encoded observation after the last step

    @classmethod
    def allocate(cls, num_steps: int, num_envs: int, feature_width: int) -> RolloutBuffer:
        # Per-step flags and rewards are tensors sharing memory with numpy arrays (torch.from_numpy),
        # so the collector writes the environment's numpy output with a plain numpy assignment.
        def shared(dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.zeros((num_steps, num_envs), dtype=dtype))

        return cls(
            features=torch.zeros(num_steps, num_envs, feature_width),
            actions=shared(np.int64),
            rewards=shared(np.float32),
            terminated=shared(np.bool_),
            truncated=shared(np.bool_),
            valid=shared(np.bool_),
            next_features=torch.zeros(num_envs, feature_width),
        )

    @property
    def num_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_envs(self) -> int:
        return self.rewards.shape[1]

    def all_features(self) -> torch.Tensor:
        """s_0 .. s_T for every environment, (T + 1, N, D): the input of a critic's V(s) pass."""
        return torch.cat([self.features, self.next_features.unsqueeze(0)], dim=0)


@dataclass
class EpisodeStats:
    """Episodes finished since the last log row, and the last 100 for the stopping rule."""

    recent_returns: list[float] = field(default_factory=list)
    recent_lengths: list[int] = field(default_factory=list)
    last100: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    count: int = 0

    def record(self, returns: np.ndarray, lengths: np.ndarray) -> None:
        self.recent_returns.extend(float(r) for r in returns)
        self.recent_lengths.extend(int(n) for n in lengths)
        self.last100.extend(float(r) for r in returns)
        self.count += len(returns)

    def drain(self) -> dict[str, float]:
        """Mean return and length of the episodes finished since the last call (empty if none)."""
        if not self.recent_returns:
            return {}
        row = {
            "charts/episodic_return": float(np.mean(self.recent_returns)),
            "charts/episodic_length": float(np.mean(self.recent_lengths)),
        }
        self.recent_returns.clear()
        self.recent_lengths.clear()
        return row

    def mean_last100(self) -> float | None:
        return float(np.mean(self.last100)) if self.last100 else None

    def std_last100(self) -> float | None:
        return float(np.std(self.last100, ddof=1)) if len(self.last100) > 1 else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "last100": list(self.last100),
            "count": self.count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent_returns = list(state["recent_returns"])
        self.recent_lengths = list(state["recent_lengths"])
        self.last100 = deque(state["last100"], maxlen=100)
        self.count = int(state["count"])


class Collector:
    """Steps a vector environment with an actor and fills a :class:`RolloutBuffer`."""

    def __init__(self, envs: gym.vector.VectorEnv, encoder: ObservationEncoder, num_steps: int):
        self.envs = envs
        self.encoder = encoder
        self.buffer = RolloutBuffer.allocate(num_steps, envs.num_envs, encoder.width)
        self.stats = EpisodeStats()
        self._features: torch.Tensor | None = None
        self._resetting = np.zeros(envs.num_envs, dtype=bool)

    def reset(self, seed: int) -> None:
        observations, _ = self.envs.reset(seed=seed)
        self._features = self.encoder(observations)
        self._resetting[:] = False

    def state_dict(self) -> dict[str, Any]:
        """What continues the collection exactly: the current observation and the episode stats."""
        return {
            "features": None if self._features is None else self._features.clone(),
            "resetting": torch.from_numpy(self._resetting.copy()),
            "stats": self.stats.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._features = state["features"]
        self._resetting = state["resetting"].numpy().copy()
        self.stats.load_state_dict(state["stats"])

    def collect(self, actor: Actor) -> RolloutBuffer:
        """Run ``num_steps`` vector steps; returns the (reused) buffer."""
        if self._features is None:
            raise RuntimeError("call reset(seed) before collect()")
        buf = self.buffer
        rewards_np, terminated_np = buf.rewards.numpy(), buf.terminated.numpy()
        truncated_np, valid_np = buf.truncated.numpy(), buf.valid.numpy()
        actions_np = buf.actions.numpy()
        features = self._features
        # One inference-mode block for the whole window (entering it costs as much as a small op).
        with torch.inference_mode():
            for t in range(buf.num_steps):
                buf.features[t] = features
                np.logical_not(self._resetting, out=valid_np[t])
                actions = actor.act(features).numpy()
                actions_np[t] = actions
                try:
                    observations, rewards, terminated, truncated, info = self.envs.step(actions)
                except Exception as exc:
                    raise EnvironmentStepError(f"the environment raised {type(exc).__name__}: {exc}") from exc
                rewards_np[t], terminated_np[t], truncated_np[t] = rewards, terminated, truncated
                np.logical_or(terminated, truncated, out=self._resetting)
                features = self.encoder(observations)
                self._record_episodes(info)
            buf.next_features.copy_(features)
        self._features = features
        return buf

    def _record_episodes(self, info: dict[str, Any]) -> None:
        done = info.get("_episode")
        if done is not None and done.any():
            episode = info["episode"]
            self.stats.record(episode["r"][done], episode["l"][done])
