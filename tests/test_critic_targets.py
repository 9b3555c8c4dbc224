"""Lines of the critic agents that decide numbers: the Gumbel agents' target critic (its Polyak step, and
the TD(lambda) targets it supplies) and RELAX's gamma^t step weights, each checked through the agent's own
methods against a computation written out here."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from gymnasium.spaces import Box, Discrete

from pglab.core.agent import resolve_preset
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from pglab.core.rollout import RolloutBuffer

SPACE, ACTIONS = Box(-1.0, 1.0, (3,)), Discrete(3)


def build(name: str, **overrides):
    spec = get_agent(name)
    torch.manual_seed(0)
    policy = PolicyNetwork(SPACE, ACTIONS.n, (16,))
    return spec.build(policy, SPACE, ACTIONS, resolve_preset(spec.preset, "x", {"critic_hidden_sizes": (16,),
                                                                               **overrides}))  # fmt: skip


def batch(num_steps: int = 6, num_envs: int = 2, seed: int = 1) -> RolloutBuffer:
    """Random states, actions and rewards; env 0 terminates at step 2 and is truncated (a time limit) at
    step 4, env 1 runs through the window, whose end is a cut of its own."""
    generator = torch.Generator().manual_seed(seed)
    out = RolloutBuffer.allocate(num_steps, num_envs, (3,))
    out.features.copy_(torch.rand(num_steps, num_envs, 3, generator=generator) * 2 - 1)
    out.next_features.copy_(torch.rand(num_envs, 3, generator=generator) * 2 - 1)
    out.actions.copy_(torch.randint(0, ACTIONS.n, (num_steps, num_envs), generator=generator))
    out.rewards.copy_(torch.rand(num_steps, num_envs, generator=generator))
    out.terminated[2, 0] = True
    out.truncated[4, 0] = True
    out.valid.fill_(True)
    out.timesteps.copy_(torch.arange(num_steps).unsqueeze(1).expand(num_steps, num_envs))
    return out


def lambda_returns(rewards, values, terminated, cut, gamma: float, lam: float) -> torch.Tensor:
    """G_t = r_t + gamma (1 - d_t) [(1 - lam) V(s_{t+1}) + lam G_{t+1}], and G_t = r_t + gamma (1 - d_t) V(s_{t+1})
    where the episode is cut (a time limit, the window's end): written out step by step."""
    steps, envs = rewards.shape
    out = torch.zeros(steps, envs)
    for n in range(envs):
        following = None
        for t in reversed(range(steps)):
            alive = 0.0 if terminated[t, n] else 1.0
            if cut[t, n] or following is None or terminated[t, n]:
                out[t, n] = rewards[t, n] + gamma * alive * values[t + 1, n]
            else:
                out[t, n] = rewards[t, n] + gamma * ((1 - lam) * values[t + 1, n] + lam * following)
            following = out[t, n]
    return out


def test_the_target_critic_supplies_the_td_lambda_targets():
    agent = build("gumbel-st", target_decay=0.75, critic_lambda=0.6, gamma=0.9)
    with torch.no_grad():  # the online critic drifts from the target, as it does after the first fits
        for p in agent.critic.parameters():
            p.add_(torch.randn_like(p))
    data = batch()
    features = data.all_features()
    with torch.no_grad():
        probs = torch.softmax(agent.policy(features), -1)
        v_target = (probs * agent.target_critic.all_actions(features)).sum(-1)
        v_online = (probs * agent.critic.all_actions(features)).sum(-1)
    cut = data.truncated.clone()
    cut[-1] = True
    expected = lambda_returns(data.rewards, v_target, data.terminated, cut, 0.9, 0.6)
    targets = agent._targets(data)
    torch.testing.assert_close(targets, expected)
    online = lambda_returns(data.rewards, v_online, data.terminated, cut, 0.9, 0.6)
    assert (targets - online).abs().max() > 0.1  # the test tells the two critics apart
    agent.target_critic = None  # no target network: the online critic bootstraps
    torch.testing.assert_close(agent._targets(data), online)


@pytest.mark.parametrize("name", ["gumbel-st", "all-action"])
def test_the_target_critic_takes_a_polyak_step_towards_the_fitted_critic(name: str):
    """After an update, target <- decay * target + (1 - decay) * critic, with the critic as fitted."""
    agent = build(name, target_decay=0.75)
    before = [p.detach().clone() for p in agent.target_critic.parameters()]
    agent.update(batch())
    fitted = [p.detach() for p in agent.critic.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(before, fitted, strict=True))  # the critic moved
    for target, old, new in zip(agent.target_critic.parameters(), before, fitted, strict=True):
        torch.testing.assert_close(target.detach(), 0.75 * old + 0.25 * new)
        assert not target.requires_grad


def test_relax_weights_each_step_by_gamma_to_the_steps_since_the_episode_start():
    """With discount_weighting the surrogate is sum_i gamma^{t_i} term_i / n: environment 0's steps sit at
    t = 0 and environment 1's at t = 7, so the weighted loss over both is (n0 L0 + gamma^7 n1 L1) / n, with
    L0 and L1 the unweighted losses over each environment alone, all on the same noise."""
    agent = build("relax", gamma=0.8, normalize_advantages="off")
    data = batch()
    data.terminated.zero_()
    data.truncated.zero_()
    data.timesteps[:, 0] = 0
    data.timesteps[:, 1] = 7

    def loss(weighted: bool, valid_env: int | None = None) -> float:
        agent.preset = dataclasses.replace(agent.preset, discount_weighting=weighted)
        masked = dataclasses.replace(data, valid=data.valid.clone())
        if valid_env is not None:
            masked.valid[:, 1 - valid_env] = False
        torch.manual_seed(3)  # the same noise for every loss
        return float(agent.policy_loss(masked).detach())

    alone = [loss(False, 0), loss(False, 1)]
    assert loss(True) == pytest.approx((alone[0] + 0.8**7 * alone[1]) / 2, rel=1e-5)
    assert loss(False) == pytest.approx((alone[0] + alone[1]) / 2, rel=1e-5)
    assert abs(alone[1]) > 0.01 and abs(0.8**7 * alone[1] - alone[1]) > 1e-3  # weight 1 would fail the first check
