"""A corridor to walk to its right end: the example environment of a pglab plug-in."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right along a corridor of ``length`` cells to its end.

    ## Description
    What it tests: the simplest multi-step credit assignment, and the plug-in path itself.

    ## Action Space
    ``Discrete(2)``: 0 steps left (a wall stops it at cell 0), 1 steps right.

    ## Observation Space
    ``Discrete(length)``: the cell.

    ## Rewards
    1.0 for reaching the last cell, -0.01 for every other step.

    ## Starting State
    Cell 0.

    ## Episode End
    Terminates at the last cell; the registered id truncates after 50 steps.

    ## Model
    ``P[s][a] = [(probability, next_state, reward, terminated)]`` and ``initial_state_distrib``, as in
    Gymnasium's toy-text environments: ``pglab grads`` then measures estimators against the exact gradient.
    """

    def __init__(self, length: int = 8):
        self.length = length
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Discrete(length)
        self.initial_state_distrib = np.eye(length)[0]
        self.P = {s: {a: [(1.0, *self._move(s, a))] for a in (0, 1)} for s in range(length)}
        self._cell = 0

    def _move(self, cell: int, action: int) -> tuple[int, float, bool]:
        cell = min(cell + 1, self.length - 1) if action == 1 else max(cell - 1, 0)
        done = cell == self.length - 1
        return cell, 1.0 if done else -0.01, done

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._cell = 0
        return self._cell, {}

    def step(self, action):
        self._cell, reward, terminated = self._move(self._cell, int(action))
        return self._cell, reward, terminated, False, {}
