"""A chain MDP whose only real reward comes at the far end: credit assignment over many steps."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

FORWARD, BACK = 1, 0


class DelayedChain(gym.Env[np.int64, np.int64]):
    """Walk forward along a chain of n states to a reward at its end; stepping back pays a pittance.

    ## Description
    What it tests: credit assignment over a delay. Every early action influences the return only
    through the reward that arrives ``n - 1`` steps later, while the immediate reward (a small
    payment for stepping back) points the wrong way. A score-function estimator must carry the
    delayed reward back through the whole episode: its variance grows with the chain length, and a
    state-value baseline helps more here than a constant one, because the value differs a lot between
    the start and the end of the chain. With ``slip > 0`` the transitions are random too.

    ## Action Space
    ``Discrete(2)``: 0 steps back to the start of the chain, 1 steps forward.

    ## Observation Space
    ``Discrete(n)``: the position on the chain, 0 to n - 1.

    ## Rewards
    ``goal_reward`` (1.0) for the forward step from the last state (which ends the episode);
    ``back_reward`` (0.01) for every step back; 0 otherwise.

    ## Starting State
    State 0.

    ## Episode End
    Terminates on the forward step from state n - 1; the registered id ``pglab/DelayedChain-v0``
    truncates after 20 steps.

    ## Model
    Gymnasium's toy-text format: ``P[s][a]`` lists ``(probability, next_state, reward, terminated)``
    and ``initial_state_distrib`` is the distribution of the starting state, so
    :mod:`pglab.diagnostics.exact` computes the exact gradient.

    ## Arguments
    ``n``: the chain length (default 5); ``slip``: the probability that an action has the other
    action's effect (default 0.1); ``goal_reward``; ``back_reward``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, n: int = 5, slip: float = 0.1, goal_reward: float = 1.0, back_reward: float = 0.01):
        if n < 2:
            raise ValueError(f"the chain needs at least two states; got n={n}")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip must lie in [0, 1]; got {slip}")
        self.n = n
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Discrete(n)
        self.initial_state_distrib = np.eye(n)[0]

        def effect(s: int, move: int) -> tuple[int, float, bool]:
            if move == BACK:
                return 0, back_reward, False
            if s == n - 1:
                return 0, goal_reward, True
            return s + 1, 0.0, False

        self.P = {
            s: {
                a: [(1.0 - slip, *effect(s, a)), (slip, *effect(s, 1 - a))] if slip else [(1.0, *effect(s, a))]
                for a in (BACK, FORWARD)
            }
            for s in range(n)
        }
        self._state = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._state = 0
        return np.int64(0), {}

    def step(self, action: np.int64):
        outcomes = self.P[self._state][int(action)]
        index = self.np_random.choice(len(outcomes), p=[p for p, *_ in outcomes])
        _, self._state, reward, terminated = outcomes[index]
        return np.int64(self._state), float(reward), bool(terminated), False, {}
