"""Observation encodings and the initial policy (the same start for every agent: tests/test_protocol.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from pglab.core.policy import ObservationEncoder, PolicyNetwork, UnsupportedSpaceError
from pglab.core.reproducibility import seed_everything


def test_box_is_flattened():
    space = gym.spaces.Box(-1, 1, shape=(2, 3))
    enc = ObservationEncoder(space)
    batch = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    out = enc(batch)
    assert enc.width == 6 and out.shape == (2, 6) and out.dtype == torch.float32
    assert out[1].tolist() == list(range(6, 12))


def test_discrete_is_one_hot_respecting_start():
    enc = ObservationEncoder(gym.spaces.Discrete(4, start=2))
    out = enc(np.array([2, 5]))
    assert out.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]


def test_multibinary_is_flattened():
    enc = ObservationEncoder(gym.spaces.MultiBinary([2, 2]))
    assert enc(np.array([[[1, 0], [0, 1]]])).tolist() == [[1, 0, 0, 1]]


def test_multidiscrete_is_concatenated_one_hots():
    enc = ObservationEncoder(gym.spaces.MultiDiscrete([2, 3]))
    assert enc.width == 5
    assert enc(np.array([[1, 2], [0, 0]])).tolist() == [[0, 1, 0, 0, 1], [1, 0, 1, 0, 0]]


def test_tuple_and_dict_encode_parts_and_concatenate():
    tup = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(0, 1, shape=(1,))))
    enc = ObservationEncoder(tup)
    assert enc((np.array([1, 0]), np.array([[0.5], [0.25]]))).tolist() == [[0, 1, 0.5], [1, 0, 0.25]]
    dct = gym.spaces.Dict({"b": gym.spaces.Discrete(3), "a": gym.spaces.MultiBinary(2)})
    enc = ObservationEncoder(dct)
    out = enc({"a": np.array([[1, 1]]), "b": np.array([2])})
    assert enc.width == 5 and out.tolist() == [[1, 1, 0, 0, 1]]  # Dict spaces sort their keys


def test_encoding_matches_a_real_vector_env_with_tuple_observations():
    envs = gym.make_vec("Blackjack-v1", num_envs=3, vectorization_mode="sync")
    obs, _ = envs.reset(seed=0)
    enc = ObservationEncoder(envs.single_observation_space)
    out = enc(obs)
    assert out.shape == (3, 32 + 11 + 2) and torch.all(out.sum(1) == 3)
    envs.close()


def test_unsupported_space_is_named():
    with pytest.raises(UnsupportedSpaceError, match="Text"):
        ObservationEncoder(gym.spaces.Text(5))


def test_initial_policy_has_small_logits_so_actions_are_near_uniform():
    seed_everything(0)
    policy = PolicyNetwork(gym.spaces.Box(-1, 1, shape=(4,)), 3)
    probs = torch.softmax(policy(torch.randn(256, 4) * 3), -1)
    assert torch.all((probs - 1 / 3).abs() < 0.05)
