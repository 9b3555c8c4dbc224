"""The one policy network every agent trains, and the observation encoding it reads.

Every agent in pglab builds its policy with :class:`PolicyNetwork`; given the same seed, every agent
therefore starts from the same weights, so a comparison between agents isolates the estimator.
Critics build their networks with :func:`network` (a torso chosen from the observation space, then
:func:`mlp`) so that they see observations the same way the policy does.

Torsos: flat observations (vectors, one-hot codes) go straight into the MLP. An image, a 3-D Box with
channels first or last, goes through a convolutional torso (:class:`ConvTorso`): the Nature-CNN
(Mnih et al. 2015) when both sides are at least 36 pixels (84x84 Atari frames), else the MinAtar
network (Young & Tian 2019: one 3x3 convolution with 16 filters, then 128 units). Images stay uint8
or bool in the rollout buffer; the torso turns them into floats (uint8 scaled by 1/255).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn


def _numpy_tanh(x: torch.Tensor) -> torch.Tensor:
    """numpy's tanh of a CPU float32 tensor, as a new contiguous tensor sharing numpy's result (no copy).

    ``np.asarray`` keeps a 0-d input a 0-d tensor (a ufunc returns a scalar for it); ``contiguous`` is
    free for the contiguous activations of a network and gives any other layout the same numbers.
    """
    return torch.from_numpy(np.asarray(np.tanh(x.detach().contiguous().numpy())))


class NumpyTanh(torch.autograd.Function):
    """tanh with numpy's forward and torch's own backward, ``tanh_backward(grad, output)``.

    torch's backward of tanh reads only the output, so given the same output this backward is torch's
    bit for bit; it is built of differentiable ops on the saved output, so a double backward (RELAX
    differentiates its policy gradient) is torch's formula too. Called by :func:`fast_tanh` only on
    CPU float32 tensors outside torch.func transforms (this Function has no vmap rule).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = _numpy_tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def numpy_tanh_applies(x: torch.Tensor) -> bool:
    """Whether :func:`fast_tanh` computes ``x``'s tanh with numpy: a plain CPU float32 tensor, no torch.func
    transform and no forward-mode AD at work (numpy would drop a dual tensor's tangent). Anything else
    (CUDA, float64, a tensor subclass, vmap/grad, jvp) keeps torch.tanh."""
    return (
        type(x) is torch.Tensor
        and x.dtype is torch.float32
        and x.device.type == "cpu"
        and x.layout is torch.strided
        and torch._C._functorch.peek_interpreter_stack() is None
        and torch.autograd.forward_ad._current_level < 0
    )


def fast_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh, computed by numpy on CPU float32 tensors: the elementwise kernels of the CPU torch build
    pglab is measured with are slow (tanh on 1024x64 float32, one thread: torch 132 us, numpy 10 us),
    and tanh was about a third of a Gumbel critic's pass.

    The numbers are numpy's (within 1 ulp of torch.tanh, tests/test_fast_tanh.py) for every batch size and
    layout, so the acting path (:meth:`PolicyNetwork.fast_logits`) and the update's forward pass agree bit
    for bit; gradients go through :class:`NumpyTanh` only when one is wanted.
    """
    if not numpy_tanh_applies(x):
        return torch.tanh(x)
    if x.requires_grad and torch.is_grad_enabled():
        return NumpyTanh.apply(x)
    return _numpy_tanh(x)


class FastTanh(nn.Tanh):
    """``nn.Tanh`` computed by :func:`fast_tanh`. A subclass without parameters or buffers, so a network's
    state_dict keys (and the checkpoints saved before it) are what they were with ``nn.Tanh``."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return fast_tanh(input)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": FastTanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


class UnsupportedSpaceError(ValueError):
    """An observation or action space pglab cannot handle."""


def _as_tensor(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x))


NATURE_CNN_MIN_SIDE = 36  # the smallest image the Nature-CNN's three convolutions leave a pixel of


def image_layout(space: gym.Space) -> tuple[int, int, int, bool] | None:
    """(channels, height, width, channels_last) of an image observation space, or None.

    An image is a 3-D Box. Its channel axis is the one outside the square pair: (10, 10, 4) and
    (10, 10, 10) are channels last (MinAtar), (4, 84, 84) is channels first (stacked Atari frames);
    when no pair is equal, the smallest axis holds the channels.
    """
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
        return None
    a, b, c = (int(n) for n in space.shape)
    channels_last = a == b or (b != c and c <= a)
    return (c, a, b, True) if channels_last else (a, b, c, False)


def _build_encoder(space: gym.Space) -> tuple[int, Callable[[Any], torch.Tensor]]:
    """Return (encoded width, function mapping a batch of observations to a float (B, width) tensor).

    Images are the exception: their batch keeps its shape and dtype, (B, *space.shape); the
    convolutional torso converts it (see :class:`ConvTorso`).
    """
    if image_layout(space) is not None:
        shape = tuple(space.shape)
        return int(np.prod(shape)), lambda x: _as_tensor(x).reshape(-1, *shape)
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
    """Turns a batch of observations from ``space`` into the tensor the networks read.

    Box and MultiBinary are flattened, Discrete is one-hot, MultiDiscrete is the concatenation of one
    one-hot per component, Tuple and Dict encode each part and concatenate (Dict in key order): one
    float tensor (B, width). Images (3-D Box) stay (B, *shape) in their own dtype, so a rollout
    buffer of uint8 frames is a quarter the size of a float one.
    """

    def __init__(self, space: gym.Space):
        self.space = space
        self.width, self._encode = _build_encoder(space)
        if image_layout(space) is not None:
            self.shape: tuple[int, ...] = tuple(space.shape)
            self.dtype = torch.from_numpy(np.zeros(0, dtype=space.dtype)).dtype
        else:
            self.shape, self.dtype = (self.width,), torch.float32

    def __call__(self, batch: Any) -> torch.Tensor:
        return self._encode(batch)


def layer_init(layer: nn.Module, gain: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights and constant bias (the CleanRL/SB3 initialisation), for linear and conv layers."""
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


class ConvTorso(nn.Module):
    """The convolutional torso of an image observation: uint8/bool/float images in, features out.

    * Nature-CNN (both sides >= 36): conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1,
      a 512-unit layer; ReLU after each. 1,684,128 parameters at 4x84x84 (the convolutions 77,984).
    * MinAtar (smaller images): conv 16 3x3 stride 1, a 128-unit layer; ReLU after each.
      144 C + 16 + 2,048 (H - 2)(W - 2) + 128 parameters: 131,792 at 10x10x4 (Breakout).

    Leading batch axes are free: (..., *image shape) -> (..., width).
    """

    def __init__(self, space: gym.Space):
        super().__init__()
        layout = image_layout(space)
        if layout is None:
            raise UnsupportedSpaceError(f"a convolutional torso needs a 3-D Box observation space, not {space}")
        channels, height, width, self.channels_last = layout
        self.image_shape = tuple(int(n) for n in space.shape)
        # uint8 frames are 0..255 (Atari); bool and float images are used as they are (MinAtar is 0/1).
        self.scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        if min(height, width) >= NATURE_CNN_MIN_SIDE:
            self.kind = "nature"
            convs = [(channels, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)]
            self.width = 512
        else:
            self.kind = "minatar"
            convs = [(channels, 16, 3, 1)]
            self.width = 128
        layers: list[nn.Module] = []
        for c_in, c_out, kernel, stride in convs:
            layers += [layer_init(nn.Conv2d(c_in, c_out, kernel, stride)), nn.ReLU()]
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        flat = convs[-1][1] * height * width
        layers += [nn.Flatten(), layer_init(nn.Linear(flat, self.width)), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images, _module_call)

    def fast(self, images: torch.Tensor) -> torch.Tensor:
        """The same features as ``forward``, bit for bit, each layer's function called directly (acting)."""
        return self._run(images, fast_layer)

    def _run(self, images: torch.Tensor, apply: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        lead = images.shape[: images.dim() - 3]
        x = images.reshape(-1, *self.image_shape)
        if self.channels_last:
            # Channels first in memory too, copied while still bool/uint8: a channels-last input makes the
            # convolution's output channels-last, and then the flatten copies it and the ReLU's backward
            # runs strided (a fifth of a MinAtar update, for the same numbers bit for bit).
            x = x.permute(0, 3, 1, 2).contiguous()
        x = x.float()
        if self.scale != 1.0:
            x = x * self.scale
        for layer in self.net:
            x = apply(layer, x)
        return x.reshape(*lead, self.width)


def _module_call(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer(x)


def fast_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, bit for bit, through the layer's own function where pglab's networks use one (``F.linear``,
    ``F.conv2d``, :func:`fast_tanh`, ...): at the few rows of one acting step, ``nn.Module.__call__`` costs several
    times the arithmetic of a small layer. Any other layer goes through its own forward."""
    kind = type(layer)
    if kind is nn.Linear:
        return nn.functional.linear(x, layer.weight, layer.bias)
    if kind is FastTanh:
        return fast_tanh(x)
    if kind is nn.Tanh:
        return torch.tanh(x)
    if kind is nn.ReLU:
        return torch.relu(x)
    if kind is nn.Conv2d and layer.padding_mode == "zeros":
        conv = layer
        return nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    if kind is nn.Flatten:
        return x.flatten(layer.start_dim, layer.end_dim)
    if kind is ConvTorso:
        return layer.fast(x)
    return layer(x)


def make_torso(observation_space: gym.Space) -> tuple[nn.Module, int]:
    """(torso, width of its output) for encoded observations of ``observation_space``.

    Flat observations need no torso (``nn.Identity``, no parameters); images get a :class:`ConvTorso`.
    """
    if image_layout(observation_space) is None:
        return nn.Identity(), ObservationEncoder(observation_space).width
    torso = ConvTorso(observation_space)
    return torso, torso.width


def network(
    observation_space: gym.Space,
    hidden_sizes: Sequence[int],
    out_dim: int,
    activation: str = "tanh",
    out_gain: float = 1.0,
) -> nn.Module:
    """A network on encoded observations: the torso the space calls for (:func:`make_torso`), then :func:`mlp`.

    For flat observations this is the MLP itself, so the policy and the critics keep the parameters,
    initial weights and checkpoint keys they had before torsos existed. Either way the last layer is
    the linear output layer (the optimal baseline's closed-form score norms read it).
    """
    torso, width = make_torso(observation_space)
    head = mlp(width, hidden_sizes, out_dim, activation, out_gain)
    # One flat Sequential (torso, then the MLP's layers): net[-1] stays the output layer.
    return head if isinstance(torso, nn.Identity) else nn.Sequential(torso, *head)


class PolicyNetwork(nn.Module):
    """A network (:func:`network`) giving the logits of a Categorical over ``n_actions`` discrete actions.

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
        self.net = network(observation_space, hidden_sizes, n_actions, activation, out_gain=0.01)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits for already-encoded observations, shape (..., n_actions)."""
        return self.net(features)

    def fast_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The same logits as ``forward``, bit for bit, for acting (no gradients wanted).

        Each layer's own function is called directly (:func:`fast_layer`; the convolutional torso's layers
        too): at a batch of 16 rows, going through ``nn.Module.__call__`` costs several times the arithmetic.
        """
        for layer in self.net:
            features = fast_layer(layer, features)
        return features

    def logits(self, observations: Any) -> torch.Tensor:
        """Logits for raw observations straight from the environment."""
        return self.net(self.encoder(observations))
