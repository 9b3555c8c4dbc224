"""Speed changes that must not change a number: the same seed gives the same run as before them.

The per-step fast paths (PolicyNetwork.fast_logits, the fused Gumbel-Max sample, one inference-mode
block per rollout window), the per-update one (the return and GAE recursions on numpy views) and the
Gumbel agents' cheaper update (the critic's state term once per state in QCritic.all_actions, foreach
Adam) are checked against the plain computation they replace, bit for bit: each on its own, and as
whole short training runs through the real loop, once as it is and once with the
fast paths swapped back for the plain computation. (When they landed, the metrics of these runs were
also the same as main's before them; comparing in-process keeps the test true when other changes
move the numbers on purpose, and on any CPU.)
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from pglab.agents import gumbel_agent, reinforce_agent
from pglab.agents.gumbel_agent import QCritic

from pglab.core import estimators as est
from pglab.core.agent import adam
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


@pytest.mark.parametrize(
    ("shape", "dtype", "hidden_sizes", "rows"),
    [
        ((10, 10, 4), np.bool_, (), 8),  # MinAtar Breakout under the matched protocol: the conv torso, the output layer
        ((10, 10, 6), np.bool_, (64,), 1),  # SpaceInvaders' 6 channels, an MLP after the torso, one environment
        ((4, 84, 84), np.uint8, (), 3),  # stacked Atari frames, channels first: the Nature-CNN
    ],
)
def test_fast_logits_are_the_forward_pass_bit_for_bit_on_images(shape, dtype, hidden_sizes, rows) -> None:
    torch.manual_seed(0)
    space = gym.spaces.Box(0, 1 if dtype == np.bool_ else 255, shape, dtype)
    policy = PolicyNetwork(space, 5, hidden_sizes, "relu")
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    images = policy.encoder(np.stack([space.sample() for _ in range(rows)]))
    with torch.inference_mode():
        assert torch.equal(policy.fast_logits(images), policy(images))


def test_gumbel_max_sample_is_argmax_of_logits_plus_gumbel_noise() -> None:
    logits = torch.randn(64, 5) * 3
    torch.manual_seed(1)
    fast = est.gumbel_max_sample(logits)
    torch.manual_seed(1)
    assert torch.equal(fast, (logits + est.gumbel_noise(logits.shape)).argmax(-1))


def plain_all_actions(critic: QCritic, features: torch.Tensor, timesteps: torch.Tensor | None = None) -> torch.Tensor:
    """Q(s, a) of every action as it was computed before: both terms on every (state, action) pair."""
    embedding = critic.torso(features)
    pairs = embedding.unsqueeze(-2).expand(*embedding.shape[:-1], critic.n_actions, embedding.shape[-1])
    one_hots = torch.eye(critic.n_actions).expand(*embedding.shape[:-1], -1, -1)
    return (critic.state_value(pairs) + critic.action_value(torch.cat([pairs, one_hots], dim=-1))).squeeze(-1)


# The rows all_actions sees in a run: T + 1 steps x N environments of the Gumbel presets on CartPole-v1
# and Acrobot-v1, and of all-action's. (A matrix product's rounding may depend on how many rows it
# multiplies, so the equality is a fact about the shapes checked, here and in the short runs below.)
@pytest.mark.parametrize("rows", [(65, 16), (129, 16), (129, 8), (257, 8)])
def test_the_critic_of_every_action_evaluates_the_state_term_once_per_state(rows: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    critic = QCritic(gym.spaces.Box(-1.0, 1.0, (4,)), 3, (64, 64), "tanh")
    with torch.no_grad():  # weights away from the initialisation, so that both terms matter
        for p in critic.parameters():
            p.add_(torch.randn_like(p))
    features = torch.randn(*rows, 4)
    with torch.no_grad():
        assert torch.equal(critic.all_actions(features), plain_all_actions(critic, features))


def test_foreach_adam_steps_exactly_as_the_per_parameter_loop() -> None:
    torch.manual_seed(0)
    critic = QCritic(gym.spaces.Box(-1.0, 1.0, (4,)), 2, (64, 64), "tanh")
    twin = QCritic(gym.spaces.Box(-1.0, 1.0, (4,)), 2, (64, 64), "tanh")
    twin.load_state_dict(critic.state_dict())
    fast = adam(critic.parameters(), 3e-3)
    plain = torch.optim.Adam(twin.parameters(), lr=3e-3, eps=1e-5, foreach=False)
    for _ in range(5):
        gradients = [torch.randn_like(p) for p in critic.parameters()]
        for net, optimizer in ((critic, fast), (twin, plain)):
            for p, g in zip(net.parameters(), gradients, strict=True):
                p.grad = g.clone()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(critic.parameters(), twin.parameters(), strict=True))


def same(a: object, b: object) -> bool:
    """Equal state_dicts: the same keys and layout, tensors equal in value and dtype."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_pglab_adam_is_torch_adam_step_for_step_and_state_dict_for_state_dict() -> None:
    """pglab.core.optim.Adam (no torch.optim.Optimizer, so no torch._dynamo) against torch.optim.Adam(foreach=True):
    the same parameters after every step (a parameter without a gradient skipped, as torch skips it), the same
    state_dict, and each loads the other's, so a checkpoint written before it resumes to the same numbers."""
    torch.manual_seed(0)
    nets = [QCritic(gym.spaces.Box(-1.0, 1.0, (4,)), 2, (16, 16), "tanh") for _ in range(4)]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    ours = adam(nets[0].parameters(), 3e-3)
    theirs = torch.optim.Adam(nets[1].parameters(), lr=3e-3, eps=1e-5, foreach=True)

    def step(pairs: list, skip_first: bool = False) -> None:
        gradients = [torch.randn_like(p) for p in nets[0].parameters()]
        for net, optimizer in pairs:
            optimizer.zero_grad()
            for i, (p, g) in enumerate(zip(net.parameters(), gradients, strict=True)):
                p.grad = None if skip_first and i == 0 else g.clone()
            optimizer.step()

    step([(nets[0], ours), (nets[1], theirs)], skip_first=True)
    for _ in range(3):
        step([(nets[0], ours), (nets[1], theirs)])
    assert same(ours.state_dict(), theirs.state_dict())
    count = len(list(nets[0].parameters()))
    assert list(ours.state_dict()["state"]) == list(theirs.state_dict()["state"]) == [*range(1, count), 0]
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True))

    nets[2].load_state_dict(nets[0].state_dict())
    nets[3].load_state_dict(nets[0].state_dict())
    ours_from_torch, torch_from_ours = adam(nets[2].parameters(), 1.0), torch.optim.Adam(nets[3].parameters(), lr=1.0)
    ours_from_torch.load_state_dict(copy.deepcopy(theirs.state_dict()))  # as from a checkpoint: tensors of its own
    torch_from_ours.load_state_dict(copy.deepcopy(ours.state_dict()))
    pairs = list(zip(nets, [ours, theirs, ours_from_torch, torch_from_ours], strict=True))
    for _ in range(2):
        step(pairs)
    for net in nets[1:]:
        assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), net.parameters(), strict=True))
    assert all(same(ours.state_dict(), o.state_dict()) for o in (theirs, ours_from_torch, torch_from_ours))


def test_no_run_imports_torch_dynamo() -> None:
    """torch.optim's optimisers import torch._dynamo (0.8 s, as long as torch) at their first use; pglab's
    agents step their own Adam, so neither `pglab train` nor a grid's worker pays it."""
    probe = (
        "import sys, tempfile, pglab\n"
        "for agent in ('reinforce-value', 'gumbel-st', 'relax'):\n"
        "    with tempfile.TemporaryDirectory() as tmp:\n"
        "        pglab.train(agent=agent, total_steps=1024, num_envs=8, run_dir=tmp + '/run', wandb_mode='disabled',"
        " progress=False, checkpoint_every=512)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def short_run(agent: str, env: str, run_dir: Path) -> list[dict]:
    import pglab

    pglab.train(
        agent=agent, env=env, seed=7, total_steps=3072, run_dir=str(run_dir), wandb_mode="disabled", progress=False,
        protocol="matched" if env.startswith("MinAtar/") else "presets",
    )  # fmt: skip
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(run_dir)]


@pytest.mark.parametrize(
    ("agent", "env"),
    [
        ("reinforce-value", "CartPole-v1"),
        ("reinforce-rloo", "CartPole-v1"),
        ("gumbel-st", "CartPole-v1"),
        ("reinforce-value", "MinAtar/Breakout-v1"),  # images: the conv torso, bool frames in the buffer
    ],
)
def test_short_runs_give_the_numbers_of_the_plain_computation(
    agent: str, env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = short_run(agent, env, tmp_path / "fast")
    # The computation the fast paths replaced: the module's forward pass and argmax(logits + Gumbel noise).
    monkeypatch.setattr(PolicyNetwork, "fast_logits", PolicyNetwork.forward)
    monkeypatch.setattr(est, "gumbel_max_sample", lambda logits: (logits + est.gumbel_noise(logits.shape)).argmax(-1))
    # The Gumbel agents' update: the critic's state term on every (state, action) pair; Adam's per-parameter loop.
    monkeypatch.setattr(QCritic, "all_actions", plain_all_actions)
    for agent_module in (gumbel_agent, reinforce_agent):
        monkeypatch.setattr(
            agent_module, "adam", lambda parameters, lr: torch.optim.Adam(parameters, lr=lr, eps=1e-5, foreach=False)
        )
    assert short_run(agent, env, tmp_path / "plain") == fast
    assert len(fast) >= 3 and any("charts/episodic_return" in row for row in fast)  # 3,072 steps in batches of <= 1,024


def plain_returns_and_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """The recursions as T small torch operations per row (what estimators ran before its numpy loop)."""
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    cut = truncated.clone()
    cut[-1] = True
    continues = ~(terminated | truncated)
    continues[-1] = False
    deltas = rewards + gamma * not_terminal * next_values - values
    returns, advantages = torch.empty_like(rewards), torch.empty_like(rewards)
    g = a = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        g = rewards[t] + gamma * not_terminal[t] * torch.where(cut[t], next_values[t], g)
        a = deltas[t] + gamma * lam * continues[t].to(rewards.dtype) * a
        returns[t], advantages[t] = g, a
    return returns, advantages


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])  # bfloat16: torch's loop
def test_returns_and_gae_are_the_plain_recursion_bit_for_bit(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        shape = (int(torch.randint(1, 70, (1,), generator=g)), int(torch.randint(1, 20, (1,), generator=g)))
        rewards, values, next_values = (torch.randn(shape, generator=g, dtype=dtype) * 3 for _ in range(3))
        if trial % 5 == 0:  # non-finite inputs travel the same way (and a -0.0 keeps its sign)
            rewards[0, 0], next_values[-1, 0], rewards[-1, -1] = float("inf"), float("nan"), -0.0
        terminated, truncated = torch.rand(shape, generator=g) < 0.1, torch.rand(shape, generator=g) < 0.05
        gamma, lam = float(torch.rand(1, generator=g)), (1.0, 0.95, 0.0)[trial % 3]
        expected = plain_returns_and_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
        got = (
            est.discounted_returns(rewards, terminated, truncated, next_values, gamma),
            est.gae_advantages(rewards, values, next_values, terminated, truncated, gamma, lam),
        )
        bits = {torch.float32: torch.int32, torch.float64: torch.int64}.get(dtype, torch.int16)  # NaN, -0.0 too
        for x, y in zip(got, expected, strict=True):
            assert x.dtype == y.dtype and torch.equal(x.view(bits), y.view(bits))


@pytest.mark.parametrize("env", ["CartPole-v1", "MinAtar/Breakout-v1"])
def test_one_critic_pass_serving_advantages_and_regression_changes_no_number(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reinforce-value's critic pass over the batch judges the actions and starts the regression: the
    same numbers as two passes (a no-grad one for the advantages, then the regression's own)."""
    from pglab.agents.reinforce_agent import ReinforceAgent

    import pglab

    def run(run_dir: Path) -> list[dict]:
        pglab.train(
            agent="reinforce-value", env=env, seed=3, total_steps=2048, run_dir=str(run_dir), wandb_mode="disabled",
            progress=False, overrides={"num_envs": 4, "num_steps": 128, "critic_epochs": 2},
        )  # fmt: skip
        return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(run_dir)]

    reused = run(tmp_path / "reused")
    monkeypatch.setattr(ReinforceAgent, "_first_critic_pass", lambda self, batch: None)
    assert run(tmp_path / "plain") == reused
    assert len(reused) == 4 and all("losses/value_loss" in row for row in reused)


def test_a_training_process_keeps_the_memory_an_update_frees_for_the_next(tmp_path: Path) -> None:
    """pglab.core.allocator: glibc's malloc no longer hands an update's large tensors back to the system, so
    the next update does not fault their pages in again (without it: about 900-3,000 minor faults per 1,024
    MinAtar steps; with it, a few dozen at most)."""
    import resource

    from pglab.core.allocator import keep_freed_memory
    from pglab.core.train import TrainConfig, build_run

    if not keep_freed_memory():
        pytest.skip("the C library is not glibc: its allocator is left as it is")
    config = TrainConfig(agent="reinforce-value", env="MinAtar/Breakout-v1", protocol="matched", wandb_mode="disabled")
    run = build_run(config, tmp_path / "run")
    run.collector.reset(0)
    for _ in range(4):  # warm-up: the buffers, the optimisers' state, the heap at its peak
        run.agent.update(run.collector.collect(run.agent))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    steps = 0
    for _ in range(8):
        batch = run.collector.collect(run.agent)
        run.agent.update(batch)
        steps += batch.num_steps * batch.num_envs
    run.envs.close()
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps * 1024 < 100
