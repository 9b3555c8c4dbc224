"""The REBAR/RELAX toy problem (Tucker et al. 2017; Grathwohl et al. 2018) as a one-step environment."""

from __future__ import annotations

import numpy as np
from pglab.envs.bandit import CategoricalBandit


class RelaxToy(CategoricalBandit):
    """Choose z in {0, 1/(K-1), ..., 1}; the reward is -(z - t)^2 with t close to 0.5.

    ## Description
    What it tests: how estimators cope with a tiny signal on a large offset. With K = 2 and
    t = 0.49 the two arms pay -0.2401 and -0.2601: the gradient is small (the difference of the two
    rewards is 0.02) while every reward is about -0.25, so plain REINFORCE is drowned in variance,
    a baseline removes almost all of it, and a relaxed (Gumbel-Softmax) estimator, which sees
    the reward as a smooth function of a relaxed z, is biased in a way that is easy to measure:
    for t near 0.5 its relaxed optimum sits at z = t, between the two arms. This is the benchmark of
    the REBAR and RELAX papers, written as a maximisation.

    ## Action Space
    ``Discrete(K)``: action k means z = k / (K - 1).

    ## Observation Space
    ``Discrete(1)``: a single state (always 0).

    ## Rewards
    ``-(z - t)^2``, deterministic.

    ## Starting State
    The single state 0.

    ## Episode End
    Every episode is one step long and terminates.

    ## Model
    The toy-text ``P`` and ``initial_state_distrib`` of :class:`~pglab.envs.bandit.CategoricalBandit`.

    ## Arguments
    ``n_values``: K, the number of values z takes (default 2: the binary problem of the papers);
    ``target``: t (default 0.49).
    """

    def __init__(self, n_values: int = 2, target: float = 0.49):
        if n_values < 2:
            raise ValueError(f"n_values must be at least 2; got {n_values}")
        z = np.linspace(0.0, 1.0, n_values)
        super().__init__(rewards=tuple(-((z - target) ** 2)))
        self.target = float(target)
