"""Speed changes that must not change a number: the same seed gives the same run as before them.

The per-step fast paths (PolicyNetwork.fast_logits, the fused Gumbel-Max sample, one inference-mode
block per rollout window) are checked against the plain computation they replace, bit for bit: each
on its own, and as whole short training runs through the real loop, once as it is and once with the
fast paths swapped back for the plain computation. (When they landed, the metrics of these runs were
also the same as main's before them; comparing in-process keeps the test true when other changes
move the numbers on purpose, and on any CPU.)
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
import torch

from pglab.core import estimators as est
from pglab.core.policy import ACTIVATIONS, PolicyNetwork
from tests.helpers import read_metrics


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


def short_run(agent: str, run_dir: Path) -> list[dict]:
    import pglab

    pglab.train(
        agent=agent, env="CartPole-v1", seed=7, total_steps=3072, run_dir=str(run_dir), wandb_mode="disabled",
        progress=False,
    )  # fmt: skip
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(run_dir)]


@pytest.mark.parametrize("agent", ["reinforce-value", "reinforce-rloo", "gumbel-st"])
def test_short_runs_give_the_numbers_of_the_plain_computation(
    agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = short_run(agent, tmp_path / "fast")
    # The computation the fast paths replaced: the module's forward pass and argmax(logits + Gumbel noise).
    monkeypatch.setattr(PolicyNetwork, "fast_logits", PolicyNetwork.forward)
    monkeypatch.setattr(est, "gumbel_max_sample", lambda logits: (logits + est.gumbel_noise(logits.shape)).argmax(-1))
    assert short_run(agent, tmp_path / "plain") == fast
    assert len(fast) == 3 and any("charts/episodic_return" in row for row in fast)
