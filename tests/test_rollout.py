"""pglab.core.rollout: what the Collector stores, step by step, in windows and in whole episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from pglab.core.environment import make_vector_env
from pglab.core.policy import PolicyNetwork
from pglab.core.rollout import Collector, episode_shares


class Forward:
    """Always action 1: on the slip-free chain of 5 an episode is 5 steps, ending at the goal."""

    def act(self, features: torch.Tensor) -> torch.Tensor:
        return torch.ones(features.shape[0], dtype=torch.int64)


class Uniform:
    def __init__(self, n: int = 4):
        self.n = n

    def act(self, features: torch.Tensor) -> torch.Tensor:
        return torch.randint(0, self.n, (features.shape[0],))


def chain_collector(num_envs: int, num_steps: int, batch_episodes: int = 0) -> Collector:
    envs = make_vector_env("pglab/DelayedChain-v0", num_envs, env_kwargs={"slip": 0.0})
    policy = PolicyNetwork(envs.single_observation_space, 2)
    collector = Collector(envs, policy.encoder, num_steps, batch_episodes)
    collector.reset(seed=0)
    return collector


def states(batch) -> list[int]:
    return batch.features[:, 0].argmax(-1).tolist()


def test_windows_mask_exactly_the_autoreset_steps_and_count_time_across_windows():
    collector = chain_collector(num_envs=1, num_steps=4)
    rows = []
    for _ in range(3):  # 12 steps in windows of 4: the episodes run on across windows
        batch = collector.collect(Forward())
        rows += list(
            zip(
                states(batch),
                batch.valid[:, 0].tolist(),
                batch.timesteps[:, 0].tolist(),
                batch.terminated[:, 0].tolist(),
                strict=True,
            )
        )
    # steps 0-4 walk the chain, the 5th ends the episode; step 5 is Gymnasium's reset step (its action is
    # ignored): invalid, holding the final observation (state 0 after the goal) at timestep 5
    expected_valid = [True] * 5 + [False] + [True] * 5 + [False]
    assert [valid for _, valid, _, _ in rows] == expected_valid
    assert [t for _, _, t, _ in rows] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    assert [s for s, _, _, _ in rows] == [0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 0]
    assert [done for _, _, _, done in rows] == [False] * 4 + [True, False] * 1 + [False] * 4 + [True, False]
    assert batch.next_timesteps.tolist() == [0] and batch.all_timesteps()[-1].tolist() == [0]


def test_whole_episodes_give_each_environment_its_share_and_mask_the_rest():
    collector = chain_collector(num_envs=2, num_steps=3, batch_episodes=3)  # env 0 owes 2 episodes, env 1 one
    for _ in range(2):  # the second batch starts afresh: every episode under the policy collecting it
        batch = collector.collect(Forward())
        assert batch.num_steps == 11  # 5 + reset step + 5 (the buffer grew from 3 rows)
        valid = batch.valid.numpy()
        assert valid[:, 0].tolist() == [True] * 5 + [False] + [True] * 5
        assert valid[:, 1].tolist() == [True] * 5 + [False] * 6
        assert batch.timesteps[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]
        assert batch.next_timesteps.tolist()[0] == 5  # the state after the last step: the goal's final obs
    assert collector.stats.count == 6  # only the episodes of the batches are recorded


def test_whole_episodes_are_complete_and_exactly_the_share_on_a_random_walk():
    envs = make_vector_env("FrozenLake-v1", 3)
    policy = PolicyNetwork(envs.single_observation_space, 4)
    collector = Collector(envs, policy.encoder, 8, batch_episodes=7)
    collector.reset(seed=1)
    torch.manual_seed(0)
    for _ in range(3):
        batch = collector.collect(Uniform())
        valid = batch.valid.numpy()
        ends = (batch.terminated | batch.truncated).numpy()
        assert ((valid & ends).sum(0) == episode_shares(7, 3)).all() and episode_shares(7, 3).tolist() == [3, 2, 2]
        for env in range(3):
            last_end = np.flatnonzero(valid[:, env] & ends[:, env]).max()
            assert not valid[last_end + 1 :, env].any()  # nothing after the share is counted
            starts = np.flatnonzero(valid[:, env] & (batch.timesteps[:, env].numpy() == 0))
            assert len(starts) == episode_shares(7, 3)[env]  # every counted episode starts at its step 0
        assert valid[:, :].any(1)[-1]  # the batch ends with the last episode's last step
    envs.close()


def test_training_on_whole_episodes_resumes_to_the_same_numbers(tmp_path):
    """Updates of varying length: the budget is passed, not rounded; a resumed run continues exactly."""
    import pglab
    from tests.helpers import read_metrics

    common = {
        "agent": "reinforce-value", "env": "pglab/DelayedChain-v0", "seed": 2, "num_envs": 2, "wandb_mode": "disabled",
        "progress": False,
        "overrides": {"batch_episodes": 4, "discount_weighting": True, "truncation": "terminal", "num_steps": 8},
    }  # fmt: skip
    full = pglab.train(total_steps=600, run_dir=str(tmp_path / "full"), **common)
    pglab.train(total_steps=250, run_dir=str(tmp_path / "cut"), **common)
    resumed = pglab.resume(tmp_path / "cut", total_steps=600, progress=False)
    rows = read_metrics(tmp_path / "full")
    steps = [row["global_step"] for row in rows]
    assert len(set(np.diff(steps))) > 1 and steps[-1] >= 600 and steps[-2] < 600  # whole episodes: updates vary
    assert full["global_step"] == resumed["global_step"] == steps[-1]

    def numbers(run: str) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(tmp_path / run)]

    assert numbers("full") == numbers("cut")


@pytest.mark.parametrize("env_id", ["MinAtar/Breakout-v1", "CartPole-v1"])
def test_the_collectors_episode_statistics_are_record_episode_statistics_number_for_number(env_id: str):
    """The collector keeps each episode's return and length itself; Gymnasium's RecordEpisodeStatistics,
    which used to keep them (and is put back around the environments here), reports the same episodes in
    the same order with the same float64 returns and the same lengths."""
    envs = gym.wrappers.vector.RecordEpisodeStatistics(make_vector_env(env_id, 4), buffer_length=10_000)
    policy = PolicyNetwork(envs.single_observation_space, int(envs.single_action_space.n))
    collector = Collector(envs, policy.encoder, num_steps=64)
    collector.reset(seed=3)
    torch.manual_seed(0)
    actor = Uniform(int(envs.single_action_space.n))
    returns, lengths = [], []
    for _ in range(6):  # the episodes run on across windows, and the first of each restarts at an autoreset step
        collector.collect(actor)
        returns += collector.stats.recent_returns
        lengths += collector.stats.recent_lengths
        collector.stats.drain()
    assert len(returns) >= 10 and len(set(returns)) > 1
    assert returns == [float(r) for r in envs.return_queue]  # exactly: both sum float64 in step order
    assert lengths == [int(n) for n in envs.length_queue]
