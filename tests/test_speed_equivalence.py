"""Speed changes that must not change a number: the same seed gives the same run as before them.

The per-step fast paths (PolicyNetwork.fast_logits, the fused Gumbel-Max sample, one inference-mode
block per rollout window) are checked two ways: against the plain computation they replace, bit for
bit, and as whole short runs against metrics recorded before they existed
(tests/data/pinned_metrics.json, recorded on main at 0a3b1d9 with torch 2.13 on the 2-core machine,
where they match exactly).
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from pglab import estimators as est
from pglab.policy import ACTIVATIONS, PolicyNetwork
from tests.helpers import read_metrics

PINNED = json.loads((Path(__file__).parent / "data" / "pinned_metrics.json").read_text())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_fast_logits_are_the_forward_pass_bit_for_bit(activation: str) -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(-1.0, 1.0, (5,))
    policy = PolicyNetwork(space, 3, (32, 16), activation)
    with torch.no_grad():  # weights away from the initialisation, so that every layer matters
        for p in policy.parameters():
            p.add_(torch.randn_like(p))
    features = torch.randn(16, 5)
    with torch.inference_mode():
        assert torch.equal(policy.fast_logits(features), policy(features))


def test_gumbel_max_sample_is_argmax_of_logits_plus_gumbel_noise() -> None:
    logits = torch.randn(64, 5) * 3
    torch.manual_seed(1)
    fast = est.gumbel_max_sample(logits)
    torch.manual_seed(1)
    assert torch.equal(fast, (logits + est.gumbel_noise(logits.shape)).argmax(-1))


@pytest.mark.parametrize("agent", sorted(PINNED))
def test_short_runs_give_the_numbers_recorded_before_the_speed_work(agent: str, tmp_path: Path) -> None:
    import pglab

    pglab.train(
        agent=agent, env="CartPole-v1", seed=7, total_steps=3072, run_dir=str(tmp_path / "run"),
        wandb_mode="disabled", progress=False,
    )  # fmt: skip
    rows = [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(tmp_path / "run")]
    assert len(rows) == len(PINNED[agent])
    for row, pinned in zip(rows, PINNED[agent], strict=True):
        assert row == pytest.approx(pinned, rel=1e-6)  # equal here; the tolerance is for another CPU's ulps
