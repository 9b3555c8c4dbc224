"""Image observations: the convolutional torsos, uint8/bool storage, and every agent on MinAtar."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from pglab.agents.gumbel_agent import QCritic

from pglab.core.agent import resolve_preset
from pglab.core.plugins import load_agents
from pglab.core.policy import ConvTorso, ObservationEncoder, PolicyNetwork, image_layout, network
from pglab.core.reproducibility import seed_everything
from pglab.core.rollout import RolloutBuffer


def box(shape: tuple[int, ...], dtype: type = bool) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255 if dtype is np.uint8 else 1, shape, dtype)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((10, 10, 4), (4, 10, 10, True)),  # MinAtar Breakout
        ((10, 10, 10), (10, 10, 10, True)),  # MinAtar Seaquest: the square pair decides
        ((4, 84, 84), (4, 84, 84, False)),  # stacked Atari frames
        ((3, 8, 6), (3, 8, 6, False)),  # no square pair: the smallest axis
        ((8, 6, 3), (3, 8, 6, True)),
        ((4, 4), None),
    ],
)
def test_image_layout(shape, layout):
    assert image_layout(box(shape)) == layout


def test_torso_sizes_and_parameter_counts_match_the_readme():
    minatar, nature = ConvTorso(box((10, 10, 4))), ConvTorso(box((4, 84, 84), np.uint8))
    assert (minatar.kind, minatar.width, sum(p.numel() for p in minatar.parameters())) == ("minatar", 128, 131_792)
    assert (nature.kind, nature.width, sum(p.numel() for p in nature.parameters())) == ("nature", 512, 1_684_128)
    assert ConvTorso(box((36, 36, 1))).kind == "nature" and ConvTorso(box((35, 36, 1))).kind == "minatar"


def test_channels_last_reads_the_same_image_as_channels_first():
    seed_everything(0)
    last, first = ConvTorso(box((6, 6, 3))), ConvTorso(box((3, 6, 6)))
    first.load_state_dict(last.state_dict())
    images = torch.rand(5, 6, 6, 3) > 0.5
    assert torch.allclose(last(images), first(images.permute(0, 3, 1, 2)))


def test_uint8_frames_are_scaled_to_unit_interval_and_leading_axes_are_kept():
    seed_everything(0)
    frames, floats = ConvTorso(box((2, 40, 40), np.uint8)), ConvTorso(gym.spaces.Box(0, 1, (2, 40, 40)))
    floats.load_state_dict(frames.state_dict())
    images = torch.randint(0, 256, (3, 2, 2, 40, 40), dtype=torch.uint8)
    out = frames(images)
    assert out.shape == (3, 2, 512)
    assert torch.allclose(out, floats(images.float() / 255), atol=1e-6)


def test_images_stay_in_their_dtype_until_the_network():
    space = box((6, 6, 2))
    encoder = ObservationEncoder(space)
    observations = np.random.default_rng(0).random((4, 6, 6, 2)) > 0.5
    encoded = encoder(observations)
    assert encoded.dtype == torch.bool and encoded.shape == (4, 6, 6, 2)
    buffer = RolloutBuffer.allocate(3, 4, encoder.shape, encoder.dtype)
    assert buffer.features.dtype == torch.bool and buffer.features.shape == (3, 4, 6, 6, 2)
    assert buffer.all_features().shape == (4, 4, 6, 6, 2)
    frame_encoder = ObservationEncoder(box((4, 84, 84), np.uint8))
    frames = RolloutBuffer.allocate(2, 1, frame_encoder.shape, frame_encoder.dtype)
    assert frames.features.dtype == torch.uint8
    assert PolicyNetwork(space, 3)(buffer.all_features()).shape == (4, 4, 3)


def test_flat_networks_are_the_bare_mlp():
    """Flat observations keep the parameters and checkpoint keys they had before torsos existed."""
    flat = network(gym.spaces.Box(-1, 1, (4,)), (8,), 2)
    assert [name for name, _ in flat.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    image = network(box((6, 6, 2)), (8,), 2)
    assert isinstance(image[0], ConvTorso) and isinstance(image[-1], torch.nn.Linear) and image[-1].out_features == 2


def test_every_agent_starts_from_the_same_policy_weights_on_images():
    space = box((6, 6, 2))
    weights = {}
    for name, spec in load_agents().items():
        preset = resolve_preset(spec.preset, "MinAtar/Breakout-v1", {"hidden_sizes": ()})
        seed_everything(3)
        policy = PolicyNetwork(space, 3, preset.hidden_sizes, preset.activation)
        agent = spec.build(policy, space, gym.spaces.Discrete(3), preset)
        weights[name] = torch.cat([p.detach().flatten() for p in agent.policy.parameters()])
        critic = getattr(agent, "critic", None)
        if critic is not None:  # every critic reads the image through a convolutional torso of its own
            assert any(isinstance(m, ConvTorso) for m in critic.modules()), name
    reference = next(iter(weights.values()))
    assert all(torch.equal(w, reference) for w in weights.values()), list(weights)


@pytest.mark.parametrize("hidden_sizes", [(), (8,)])
def test_q_critic_differences_between_actions_depend_on_the_state(hidden_sizes: tuple[int, ...]):
    """Q(s, a) - Q(s, a') must vary with s, or the actor's gradient through Q pushes every state towards one
    action. Without hidden layers (the MinAtar network) a linear term in [torso(s), a] cannot do that, so
    the action term is DQN's head, one value per action; all_actions agrees with Q at each one-hot action."""
    seed_everything(0)
    critic = QCritic(box((6, 6, 2)), 3, hidden_sizes, "relu")
    images = torch.rand(5, 6, 6, 2) > 0.5
    every = critic.all_actions(images)
    one_hots = torch.eye(3)
    at_each = torch.stack([critic(images, one_hots[a].expand(5, 3)) for a in range(3)], dim=-1)
    torch.testing.assert_close(every, at_each)
    differences = every[:, 0] - every[:, 1]
    assert differences.std() > 1e-3 * differences.abs().mean(), differences
    relaxed = torch.softmax(torch.randn(5, 3), dim=-1)  # a relaxed action reads the per-action values linearly
    if not hidden_sizes:
        torch.testing.assert_close(critic(images, relaxed), (every * relaxed).sum(-1))
