"""Training runs that must actually learn: every REINFORCE agent on CartPole-v1 within a test budget.

Each run stops as soon as the mean return of its last 100 episodes reaches the bound (the
``--target-return`` rule), so a healthy agent costs a few seconds; a broken one runs out of budget
and fails. Bounds and budgets leave a margin over what the presets reach (README's results table:
every agent passes 200 well before 150k steps on seeds 0-2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pglab

BOUND = 200.0
BUDGET = 250_000


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["reinforce", "reinforce-ema", "reinforce-value", "reinforce-rloo"])
def test_agent_learns_cartpole(agent: str, tmp_path: Path):
    summary = pglab.train(
        agent=agent, env="CartPole-v1", seed=1, total_steps=BUDGET, target_return=BOUND,
        run_dir=str(tmp_path / agent), wandb_mode="disabled", progress=False,
    )  # fmt: skip
    assert summary["solved_at_step"] is not None, summary
    assert summary["return_mean_last100"] >= BOUND
