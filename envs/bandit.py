"""A K-armed bandit with known rewards: the smallest problem whose policy gradient is exact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np


class CategoricalBandit(gym.Env[np.int64, np.int64]):
    """One decision among K arms, each with a known mean reward.

    ## Description
    What it tests: the score-function estimator at its purest. The objective is
    J(theta) = sum_a pi_theta(a) r_a, so grad J = sum_a grad pi_theta(a) r_a is known in closed form,
    and an estimator's bias and variance can be measured against it exactly.

    ## Action Space
    ``Discrete(K)``: the arm pulled.

    ## Observation Space
    ``Discrete(1)``: a single state (always 0).

    ## Rewards
    ``rewards[a]``, plus Gaussian noise of standard deviation ``noise_std`` (0 by default).

    ## Starting State
    The single state 0.

    ## Episode End
    Every episode is one step long and terminates.

    ## Model
    ``P[0][a] = [(1.0, 0, rewards[a], True)]`` and ``initial_state_distrib = [1.0]``, Gymnasium's
    toy-text format (the noise has mean zero, so the expected reward is ``rewards[a]``).

    ## Arguments
    ``rewards``: the mean reward of each arm (default ``(0.0, 0.2, 0.5, 1.0)``);
    ``noise_std``: standard deviation of the reward noise.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, rewards: Sequence[float] = (0.0, 0.2, 0.5, 1.0), noise_std: float = 0.0):
        if len(rewards) < 2:
            raise ValueError("a bandit needs at least two arms")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0; got {noise_std}")
        self.rewards = np.asarray(rewards, dtype=np.float64)
        self.noise_std = float(noise_std)
        self.action_space = gym.spaces.Discrete(len(self.rewards))
        self.observation_space = gym.spaces.Discrete(1)
        self.P = {0: {a: [(1.0, 0, float(r), True)] for a, r in enumerate(self.rewards)}}
        self.initial_state_distrib = np.ones(1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.int64(0), {}

    def step(self, action: np.int64):
        reward = float(self.rewards[int(action)])
        if self.noise_std:
            reward += float(self.np_random.normal(0.0, self.noise_std))
        return np.int64(0), reward, True, False, {}
