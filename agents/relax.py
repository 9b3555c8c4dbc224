"""Presets and registration of the RELAX agent; the agent is in pglab.agents.relax_agent.

No torch here (the spec names its builder as a string), so ``pglab list`` reads the preset without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pglab.core.preset import AgentSpec, CriticPreset, knob, require

NORMALIZATIONS = ("off", "scale")
STATE_TERMS = ("regression", "variance")


@dataclass
class RelaxPreset(CriticPreset):
    """RELAX: the control variate's network, learning rate and passes (shared critic fields) and its
    temperature (the estimator's own). Not tuned: the shared fields keep the base defaults, the
    variance steps the paper's one per batch; benchmarks/relax_paper.py holds the paper's settings."""

    critic_epochs: int = knob(1, "variance-minimising steps of the control variate per batch (the paper: 1)")
    critic_update: str = knob(
        "after",
        "'after': the estimate reads c_phi as trained on earlier batches (unbiased, the paper's order); 'before': "
        "c_phi first takes its steps on this batch (then it depends on the actions it judges)",
    )
    tau: float = knob(1.0, "temperature of the relaxation softmax(z / tau) the control variate reads, at the start")
    learn_tau: bool = knob(True, "train tau with the control variate (as the paper does); false holds it fixed")
    state_term: str = knob(
        "regression",
        "'regression': the state term v(s) of c(s, z) = v(s) + mlp(s, z) is regressed on the returns (one pass per "
        "critic epoch, as a value baseline is; the paper's code for its continuous tasks), the rest of c and tau "
        "descend the variance; 'variance': all of c descends the variance (the paper's code for discrete tasks)",
    )
    ent_coef: float = knob(0.01, "weight of the policy-entropy bonus (the paper: 0.01)")
    normalize_advantages: str = knob(
        "scale",
        "'off', or 'scale': divide the whole estimate by the batch std of the returns (a per-batch step size; "
        "centring would change the estimator, so 'standardize' is refused)",
    )

    estimator_fields: ClassVar[tuple[str, ...]] = ("tau", "learn_tau", "state_term")

    def validate(self) -> None:
        super().validate()
        require(self.tau > 0 and math.isfinite(self.tau), "tau", self.tau, "must be a positive number")
        require(
            self.normalize_advantages in NORMALIZATIONS,
            "normalize_advantages",
            self.normalize_advantages,
            f"must be one of {', '.join(NORMALIZATIONS)} for RELAX",
        )
        choices = ", ".join(STATE_TERMS)
        require(self.state_term in STATE_TERMS, "state_term", self.state_term, f"must be one of {choices}")


RELAX = AgentSpec(
    "relax",
    "RELAX: score function with a learned control variate on the relaxed action (unbiased)",
    RelaxPreset,
    "pglab.agents.relax_agent:build",
)
