"""Vectorised data collection into preallocated tensors.

The buffer is time-major, ``(num_steps, num_envs, ...)`` as in CleanRL, and allocated once. Per step
the collector does nothing but one batched forward pass (in ``torch.inference_mode``) and one
vector-environment step.

Two collection modes (the preset field ``batch_episodes`` picks one):

* **windows** (``batch_episodes = 0``, the default): ``num_steps`` steps of every environment per
  update; episodes run on across updates, so a window usually ends inside an episode (a *cut*).
* **whole episodes** (``batch_episodes = B``): every update resets all environments and runs until
  B complete episodes are in, environment i owing B // N episodes (one more for the first B % N).
  Each environment's share is fixed *before* any episode is seen, so a batch does not favour short
  episodes (taking "the first B episodes to finish" would); an environment that has delivered its
  share keeps stepping with its steps masked out until the others are done. No return is cut by the
  end of a batch, so a critic-free estimator is unbiased for the episodic objective. The buffer
  grows (doubling) when an update needs more than its rows, and a batch is a view of its first rows.

Gymnasium's vector environments reset finished sub-environments on the *next* step
(``AutoresetMode.NEXT_STEP``): the step after an episode end ignores its action and returns the first
observation of the next episode with reward 0. Such reset steps are stored with ``valid = False`` and
every loss masks them out. Their stored observation is the *final* observation of the finished
episode, so ``features[t + 1]`` is always the true next state of step t, which is what a critic needs
to bootstrap a truncated episode. ``timesteps[t]`` counts the steps since the episode's start (0 at
its first step): the ``t`` of gamma^t weighting and of a critic that knows the steps left.

The collector keeps each environment's episode return (float64, summed in step order) and length
itself, as Gymnasium's ``RecordEpisodeStatistics`` did for pglab before (the same numbers, without its
dozen array operations per vector step): an episode's length is its last step's ``timesteps`` + 1.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from pglab.core.policy import ObservationEncoder
from pglab.errors import EnvironmentStepError, StepTimeoutError


class Actor(Protocol):
    def act(self, features: torch.Tensor) -> torch.Tensor:
        """Integer actions (num_envs,) for encoded observations (num_envs, width)."""
        ...


@dataclass
class RolloutBuffer:
    """One batch of experience: T steps of N environments, plus the state after the last step."""

    features: torch.Tensor  # (T, N, *F) encoded observations s_t: float (T, N, D), or images in their own dtype
    actions: torch.Tensor  # (T, N) int64
    rewards: torch.Tensor  # (T, N) float32
    terminated: torch.Tensor  # (T, N) bool
    truncated: torch.Tensor  # (T, N) bool
    valid: torch.Tensor  # (T, N) bool, False on autoreset steps (and, whole episodes, after an env's share)
    timesteps: torch.Tensor  # (T, N) int64, steps since the start of s_t's episode
    next_features: torch.Tensor  # (N, *F) encoded observation after the last step
    next_timesteps: torch.Tensor  # (N,) int64, steps since the episode start of that observation

    @classmethod
    def allocate(
        cls, num_steps: int, num_envs: int, feature_shape: tuple[int, ...], dtype: torch.dtype = torch.float32
    ) -> RolloutBuffer:
        """Zeroed storage for features of one observation's ``feature_shape`` and ``dtype``: float vectors
        (``ObservationEncoder.shape`` is (width,)), or images kept in their own dtype (uint8, bool)."""

        # Per-step flags and rewards are tensors sharing memory with numpy arrays (torch.from_numpy),
        # so the collector writes the environment's numpy output with a plain numpy assignment.
        def shared(dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.zeros((num_steps, num_envs), dtype=dtype))

        return cls(
            features=torch.zeros(num_steps, num_envs, *feature_shape, dtype=dtype),
            actions=shared(np.int64),
            rewards=shared(np.float32),
            terminated=shared(np.bool_),
            truncated=shared(np.bool_),
            valid=shared(np.bool_),
            timesteps=shared(np.int64),
            next_features=torch.zeros(num_envs, *feature_shape, dtype=dtype),
            next_timesteps=torch.zeros(num_envs, dtype=torch.int64),
        )

    @property
    def num_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_envs(self) -> int:
        return self.rewards.shape[1]

    def all_features(self) -> torch.Tensor:
        """s_0 .. s_T for every environment, (T + 1, N, *F): the input of a critic's V(s) pass."""
        return torch.cat([self.features, self.next_features.unsqueeze(0)], dim=0)

    def all_timesteps(self) -> torch.Tensor:
        """The steps since the episode start of s_0 .. s_T, (T + 1, N), aligned with :meth:`all_features`."""
        return torch.cat([self.timesteps, self.next_timesteps.unsqueeze(0)], dim=0)

    def prefix(self, steps: int) -> RolloutBuffer:
        """The first ``steps`` rows as views (the per-step fields), with the state after them."""
        per_step = {f.name: getattr(self, f.name)[:steps] for f in fields(self) if not f.name.startswith("next_")}
        return RolloutBuffer(**per_step, next_features=self.next_features, next_timesteps=self.next_timesteps)

    def to(self, device: torch.device) -> RolloutBuffer:
        """This batch on ``device`` (itself when it is there already: the CPU learner copies nothing)."""
        if self.features.device == device:
            return self
        return RolloutBuffer(**{f.name: getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)})

    def grown(self, num_steps: int) -> RolloutBuffer:
        """A buffer of ``num_steps`` rows holding this one's rows at its start."""
        bigger = RolloutBuffer.allocate(num_steps, self.num_envs, tuple(self.features.shape[2:]), self.features.dtype)
        for f in fields(self):
            if not f.name.startswith("next_"):
                getattr(bigger, f.name)[: self.num_steps] = getattr(self, f.name)
        return bigger


@dataclass
class EpisodeStats:
    """Episodes finished since the last log row, and the last 100 for the stopping rule."""

    recent_returns: list[float] = field(default_factory=list)
    recent_lengths: list[int] = field(default_factory=list)
    last100: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    count: int = 0

    def record(self, returns: np.ndarray, lengths: np.ndarray) -> None:
        # One conversion per array, not one Python call per episode (float64 holds every float32 exactly).
        returns_list = np.asarray(returns, dtype=np.float64).tolist()
        self.recent_returns.extend(returns_list)
        self.recent_lengths.extend(np.asarray(lengths, dtype=np.int64).tolist())
        self.last100.extend(returns_list)
        self.count += len(returns_list)

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


def episode_shares(batch_episodes: int, num_envs: int) -> np.ndarray:
    """Episodes each environment owes per update: B // N each, one more for the first B % N."""
    shares = np.full(num_envs, batch_episodes // num_envs, dtype=np.int64)
    shares[: batch_episodes % num_envs] += 1
    return shares


class Collector:
    """Steps a vector environment with an actor and fills a :class:`RolloutBuffer`.

    ``batch_episodes = 0`` collects windows of ``num_steps`` steps; ``batch_episodes = B`` collects B
    complete episodes per call, from a reset of every environment (see the module docstring).
    """

    def __init__(
        self, envs: gym.vector.VectorEnv, encoder: ObservationEncoder, num_steps: int, batch_episodes: int = 0
    ):
        self.envs = envs
        self.encoder = encoder
        self._use(RolloutBuffer.allocate(num_steps, envs.num_envs, encoder.shape, encoder.dtype))
        self.stats = EpisodeStats()
        self.batch_episodes = batch_episodes
        self._features: torch.Tensor | None = None
        self._resetting = np.zeros(envs.num_envs, dtype=bool)
        self._timesteps = np.zeros(envs.num_envs, dtype=np.int64)
        self._returns = np.zeros(envs.num_envs, dtype=np.float64)  # of the episodes in flight
        self._ended = False  # whether an episode ended at the last step (self._resetting.any())
        self._fresh = False  # whole episodes: the environments were just reset, no need to reset again
        self.step_started: float | None = None  # time.monotonic() while an environment step runs, else None

    def reset(self, seed: int) -> None:
        observations, _ = self.envs.reset(seed=seed)
        self._restart_episodes(observations)
        self._fresh = True

    def _restart_episodes(self, observations: Any) -> None:
        """Every environment was just reset: these are the first observations of new episodes."""
        self._features = self.encoder(observations)
        self._resetting[:] = False
        self._ended = False
        self._timesteps[:] = 0
        self._returns[:] = 0.0

    def state_dict(self) -> dict[str, Any]:
        """What continues the collection exactly: the current observation and the episode stats."""
        return {
            "features": None if self._features is None else self._features.clone(),
            "resetting": torch.from_numpy(self._resetting.copy()),
            "timesteps": torch.from_numpy(self._timesteps.copy()),
            "returns": torch.from_numpy(self._returns.copy()),
            "fresh": self._fresh,
            "stats": self.stats.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._features = state["features"]
        self._resetting = state["resetting"].numpy().copy()
        self._ended = bool(self._resetting.any())
        # checkpoints from before timesteps were tracked: the counters restart (windows, no weighting then)
        self._timesteps = state["timesteps"].numpy().copy() if "timesteps" in state else np.zeros_like(self._timesteps)
        # checkpoints from before the collector kept the returns: the wrapper that kept them hands them over
        # (pglab.io.envstate.without_episode_statistics), or the episodes restart
        self._returns = state["returns"].numpy().copy() if "returns" in state else np.zeros_like(self._returns)
        self._fresh = bool(state.get("fresh", False))
        self.stats.load_state_dict(state["stats"])

    def collect(self, actor: Actor) -> RolloutBuffer:
        """One batch: ``num_steps`` vector steps, or ``batch_episodes`` complete episodes.

        The returned buffer (or view of it) is reused by the next call.
        """
        if self._features is None:
            raise RuntimeError("call reset(seed) before collect()")
        if self.batch_episodes:
            return self._collect_episodes(actor)
        buf = self.buffer
        # One inference-mode block for the whole window (entering it costs as much as a small op).
        with torch.inference_mode():
            for t in range(buf.num_steps):
                self._step(t, actor, counted=None)
        buf.next_features.copy_(self._features)
        buf.next_timesteps.copy_(torch.from_numpy(self._timesteps))
        return buf

    def _collect_episodes(self, actor: Actor) -> RolloutBuffer:
        if not self._fresh:  # every batch starts every episode under the policy that collects it
            observations, _ = self.envs.reset()
            self._restart_episodes(observations)
        self._fresh = False
        owed = episode_shares(self.batch_episodes, self.envs.num_envs)
        t = 0
        with torch.inference_mode():
            while owed.any():
                if t == self.buffer.num_steps:
                    with torch.inference_mode(False):  # the buffer outlives this block: normal tensors
                        self._use(self.buffer.grown(2 * t))
                valid = self._step(t, actor, counted=owed > 0)
                owed -= valid & self._resetting  # the counted episodes that ended at this step
                t += 1
        batch = self.buffer.prefix(t)
        batch.next_features.copy_(self._features)
        batch.next_timesteps.copy_(torch.from_numpy(self._timesteps))
        return batch

    def _use(self, buffer: RolloutBuffer) -> None:
        """Collect into ``buffer`` from now on; its numpy views are taken once, not per step."""
        self.buffer = buffer
        self._rows = tuple(
            getattr(buffer, name).numpy() for name in ("rewards", "terminated", "truncated", "valid", "timesteps")
        )
        self._actions = buffer.actions.numpy()
        self._feature_rows = buffer.features.numpy()

    def _step(self, t: int, actor: Actor, counted: np.ndarray | None) -> np.ndarray:
        """Row ``t`` of the buffer: act, step, store; returns the row's ``valid`` (a view). Call it in
        inference mode. Afterwards ``self._resetting`` says which episodes ended at this step.

        ``counted`` (whole episodes) marks the environments whose episodes still belong to the batch:
        the others' steps are stored as invalid and their finished episodes are not recorded.
        """
        rewards_np, terminated_np, truncated_np, valid_np, timesteps_np = self._rows
        self._feature_rows[t] = self._features.numpy()
        valid = np.logical_not(self._resetting, out=valid_np[t])
        if counted is not None:
            valid &= counted
        timesteps_np[t] = self._timesteps
        actions = actor.act(self._features).numpy()
        self._actions[t] = actions
        self.step_started = time.monotonic()  # read by train's --step-timeout watchdog
        try:
            observations, rewards, terminated, truncated, _ = self.envs.step(actions)
        except StepTimeoutError:
            raise
        except Exception as exc:
            raise EnvironmentStepError(f"the environment raised {type(exc).__name__}: {exc}") from exc
        finally:
            self.step_started = None
        rewards_np[t], terminated_np[t], truncated_np[t] = rewards, terminated, truncated
        # After an autoreset step the next episode's first step comes, at timestep 0 and return 0 (the reset
        # step's reward, 0, is no part of either episode). The return is summed in float64, step by step.
        # In place, the few array operations a step needs: the counters of the reset environments are zeroed
        # only at a step that follows an episode's end.
        np.add(self._returns, rewards, out=self._returns)
        self._timesteps += 1
        if self._ended:
            self._returns[self._resetting] = 0.0
            self._timesteps[self._resetting] = 0
        np.logical_or(terminated, truncated, out=self._resetting)
        self._ended = bool(self._resetting.any())
        self._features = self.encoder(observations)
        if self._ended:
            done = self._resetting if counted is None else self._resetting & counted
            self.stats.record(self._returns[done], self._timesteps[done])  # a finished episode's length: timesteps
        return valid
