"""Temperature schedules for the relaxed (Gumbel-Softmax) estimators.

The relaxation's temperature trades bias for variance: a high tau gives smooth, low-variance but
biased gradients, a low tau nearly unbiased but noisy ones. Annealing starts smooth and sharpens as
the policy settles. The schedule is a pure function of the environment step, so it does not depend
on the batch size and a resumed run continues where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "exponential", "linear")


@dataclass(frozen=True)
class TemperatureSchedule:
    """tau(step) for step = environment steps seen so far.

    * ``constant``:    tau(step) = tau0
    * ``exponential``: tau(step) = max(floor, tau0 * exp(-rate * step))
    * ``linear``:      tau(step) = max(floor, tau0 - rate * step)
    """

    kind: str
    tau0: float
    floor: float
    rate: float

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown temperature schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}")
        if not (self.tau0 > 0 and self.floor > 0 and math.isfinite(self.tau0)):
            raise ValueError(f"temperatures must be positive; got tau0={self.tau0}, floor={self.floor}")
        if not self.rate >= 0:
            raise ValueError(f"the anneal rate must be >= 0; got {self.rate}")

    def __call__(self, step: int) -> float:
        if self.kind == "exponential":
            return max(self.floor, self.tau0 * math.exp(-self.rate * step))
        if self.kind == "linear":
            return max(self.floor, self.tau0 - self.rate * step)
        return self.tau0
