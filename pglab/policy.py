"""The one policy network every agent trains, and the observation encoding it reads.

Every agent in pglab builds its policy with :class:`PolicyNetwork`; given the same seed, every agent
therefore starts from the same weights, so a comparison between agents isolates the estimator.
Critics reuse :func:`mlp` and :class:`ObservationEncoder` so that they see observations the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


class UnsupportedSpaceError(ValueError):
    """An observation or action space pglab cannot handle."""


def _as_tensor(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x))


def _build_encoder(space: gym.Space) -> tuple[int, Callable[[Any], torch.Tensor]]:
    """Return (encoded width, function mapping a batch of observations to a float (B, width) tensor)."""
    if isinstance(space, gym.spaces.Box):
        width = int(np.prod(space.shape)) if space.shape else 1
        return width, lambda x: _as_tensor(x).reshape(-1, width).float()
    if isinstance(space, gym.spaces.Discrete):
        n, start = int(space.n), int(space.start)
        return n, lambda x: nn.functional.one_hot(_as_tensor(x).reshape(-1).long() - start, n).float()
    if isinstance(space, gym.spaces.MultiBinary):
        width = int(np.prod(space.shape))
        return width, lambda x: _as_tensor(x).reshape(-1, width).float()
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).reshape(-1)
        start = np.asarray(space.start).reshape(-1)

        def encode_multi_discrete(x: Any) -> torch.Tensor:
            values = _as_tensor(x).reshape(-1, len(nvec)).long() - torch.as_tensor(start)
            parts = [nn.functional.one_hot(values[:, i], int(n)) for i, n in enumerate(nvec)]
            return torch.cat(parts, dim=1).float()

        return int(nvec.sum()), encode_multi_discrete
    if isinstance(space, gym.spaces.Tuple):
        parts = [_build_encoder(sub) for sub in space.spaces]
        return sum(w for w, _ in parts), lambda x: torch.cat(
            [enc(xi) for (_, enc), xi in zip(parts, x, strict=True)], dim=1
        )
    if isinstance(space, gym.spaces.Dict):
        keyed = {key: _build_encoder(sub) for key, sub in space.spaces.items()}
        return sum(w for w, _ in keyed.values()), lambda x: torch.cat(
            [enc(x[key]) for key, (_, enc) in keyed.items()], dim=1
        )
    raise UnsupportedSpaceError(
        f"observation space {space} is not supported: pglab encodes Box, Discrete, MultiBinary, "
        "MultiDiscrete, Tuple and Dict observations"
    )


class ObservationEncoder:
    """Turns a batch of observations from ``space`` into one flat float tensor.

    Box and MultiBinary are flattened, Discrete is one-hot, MultiDiscrete is the concatenation of one
    one-hot per component, Tuple and Dict encode each part and concatenate (Dict in key order).
    """

    def __init__(self, space: gym.Space):
        self.space = space
        self.width, self._encode = _build_encoder(space)

    def __call__(self, batch: Any) -> torch.Tensor:
        return self._encode(batch)


def layer_init(layer: nn.Linear, gain: float = math.sqrt(2), bias: float = 0.0) -> nn.Linear:
    """Orthogonal weights and constant bias (the CleanRL/SB3 initialisation)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int,
    activation: str = "tanh",
    out_gain: float = 1.0,
) -> nn.Sequential:
    """An orthogonally initialised MLP; ``out_gain`` scales the last layer (small for a policy head)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_sizes:
        layers += [layer_init(nn.Linear(width, hidden)), ACTIVATIONS[activation]()]
        width = hidden
    layers.append(layer_init(nn.Linear(width, out_dim), gain=out_gain))
    return nn.Sequential(*layers)


class PolicyNetwork(nn.Module):
    """An MLP giving the logits of a Categorical over ``n_actions`` discrete actions.

    The output layer starts with a small gain (0.01), so every action is about equally likely at
    initialisation: no estimator gets a head start from an accidentally peaked first policy.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        n_actions: int,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
    ):
        super().__init__()
        self.encoder = ObservationEncoder(observation_space)
        self.n_actions = n_actions
        self.net = mlp(self.encoder.width, hidden_sizes, n_actions, activation, out_gain=0.01)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for already-encoded observations, shape (..., n_actions)."""
        return self.net(features)

    def fast_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The same logits as ``forward``, bit for bit, for acting (no gradients wanted).

        Each layer's own function is called directly (``F.linear``, ``torch.tanh``, ...): at a
        batch of 16 rows, going through ``nn.Module.__call__`` costs several times the arithmetic.
        """
        for layer in self.net:
            kind = type(layer)
            if kind is nn.Linear:
                features = nn.functional.linear(features, layer.weight, layer.bias)
            elif kind is nn.Tanh:
                features = torch.tanh(features)
            else:
                features = layer(features)  # any other layer through its own forward
        return features

    def logits(self, observations: Any) -> torch.Tensor:
        """Logits for raw observations straight from the environment."""
        return self.net(self.encoder(observations))
