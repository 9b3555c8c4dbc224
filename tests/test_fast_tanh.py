"""The numpy tanh every pglab network uses (pglab.core.policy.fast_tanh): numpy's numbers, torch's gradient.

It changes last bits (numpy's tanh is within 1 ulp of torch's), so these tests pin what it must keep:
numpy's value for every element whatever the batch and layout around it (the acting path and the update
then agree bit for bit), torch's own backward from the output, a correct double backward (RELAX), torch.tanh
everywhere numpy does not apply (CUDA, float64, torch.func), the checkpoints' keys, and same seed, same run.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pglab.agents.gumbel_agent import QCritic
from torch import nn

from pglab.core import policy as policy_module
from pglab.core.policy import FastTanh, NumpyTanh, PolicyNetwork, fast_tanh, network, numpy_tanh_applies
from tests.helpers import read_metrics


def ulps_apart(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """How many float32 steps separate a and b elementwise (the same sign assumed; tanh keeps x's)."""
    return (a.view(torch.int32).long() - b.view(torch.int32).long()).abs()


FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@seed(12)
@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40), elements=FLOAT32))
def test_fast_tanh_is_numpys_tanh_and_within_one_ulp_of_torchs(values: np.ndarray) -> None:
    x = torch.from_numpy(values)
    y = fast_tanh(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert np.array_equal(y.numpy(), np.tanh(values))
    assert int(ulps_apart(y, torch.tanh(x)).max()) <= 1


def test_every_float32_magnitude_is_within_one_ulp_of_torch_tanh() -> None:
    """A sweep over the whole float32 range (both signs, subnormals to the largest finite), not a sample."""
    magnitudes = torch.logspace(-45, 38.5, 200_001, dtype=torch.float64).clamp(max=3.4e38).float()
    x = torch.cat([magnitudes, -magnitudes, torch.tensor([0.0, -0.0])])
    assert int(ulps_apart(fast_tanh(x), torch.tanh(x)).max()) <= 1
    assert torch.equal(fast_tanh(x), -fast_tanh(-x))  # odd, like tanh


def test_nan_infinities_and_signed_zeros_come_out_as_torch_tanhs() -> None:
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e30, -1e30])
    expected = torch.tanh(x)
    got = fast_tanh(x)
    assert torch.equal(got.view(torch.int32)[1:], expected.view(torch.int32)[1:])  # the sign of zero too
    assert got[0].isnan() and expected[0].isnan()


def test_an_elements_tanh_does_not_depend_on_the_batch_or_layout_around_it() -> None:
    """numpy's vector loop and its tail must give one element one value: acting (16 rows) and the update
    (thousands) evaluate the same network, and their logits must agree bit for bit."""
    x = torch.randn(1031, 67) * 4
    whole = fast_tanh(x)
    for start, rows in ((0, 1), (3, 16), (500, 129), (1030, 1)):
        assert torch.equal(fast_tanh(x[start : start + rows]), whole[start : start + rows])
    assert torch.equal(fast_tanh(x[:, 5:11]), whole[:, 5:11])  # a strided view
    assert torch.equal(fast_tanh(x.t()), whole.t())
    assert torch.equal(fast_tanh(x[7, 9]), whole[7, 9]) and fast_tanh(x[7, 9]).dim() == 0


def test_the_backward_is_torchs_tanh_backward_from_the_output_bit_for_bit() -> None:
    x = (torch.randn(513, 64) * 3).requires_grad_()
    grad = torch.randn(513, 64)
    # torch's own tanh: its autograd backward is aten's tanh_backward of the output ...
    torch_y = torch.tanh(x)
    (torch_grad,) = torch.autograd.grad(torch_y, x, grad)
    assert torch.equal(torch_grad, torch.ops.aten.tanh_backward(grad, torch_y.detach()))
    # ... and so is fast_tanh's, from its own (numpy's) output.
    y = fast_tanh(x)
    assert y.grad_fn is not None and type(y.grad_fn).__name__ == "NumpyTanhBackward"
    (got,) = torch.autograd.grad(y, x, grad)
    assert torch.equal(got, torch.ops.aten.tanh_backward(grad, y.detach()))


def test_where_the_outputs_agree_first_and_second_derivatives_are_torch_tanhs_bit_for_bit() -> None:
    """RELAX differentiates its policy gradient (create_graph=True): the double backward must be torch's."""
    x = torch.randn(4096) * 2
    x = x[fast_tanh(x) == torch.tanh(x)][:2000].reshape(40, 50)  # elements where numpy and torch agree
    weights = torch.randn(50, 50)
    derivatives = []
    for tanh in (torch.tanh, fast_tanh):
        leaf = x.clone().requires_grad_()
        (first,) = torch.autograd.grad((tanh(leaf) @ weights).sin().sum(), leaf, create_graph=True)
        (second,) = torch.autograd.grad((first**2).sum(), leaf)
        derivatives.append((first.detach(), second))
    assert all(torch.equal(a, b) for a, b in zip(*derivatives, strict=True))


def test_the_numpy_function_passes_gradcheck_and_gradgradcheck_in_float64() -> None:
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(NumpyTanh.apply, (x,))
    assert torch.autograd.gradgradcheck(NumpyTanh.apply, (x,))
    assert torch.autograd.gradcheck(fast_tanh, (x,)) and torch.autograd.gradgradcheck(fast_tanh, (x,))


def test_numpy_only_for_plain_cpu_float32_tensors_outside_torch_func() -> None:
    assert numpy_tanh_applies(torch.zeros(3))
    assert not numpy_tanh_applies(torch.zeros(3, dtype=torch.float64))
    assert not numpy_tanh_applies(torch.zeros(3, dtype=torch.float16))
    assert not numpy_tanh_applies(torch.zeros(3, device="meta"))  # any non-CPU device (CUDA) is torch.tanh's
    assert not numpy_tanh_applies(nn.Parameter(torch.zeros(3)))  # a tensor subclass
    assert not numpy_tanh_applies(torch.zeros(3).to_sparse())
    seen: list[bool] = []
    torch.func.vmap(lambda row: seen.append(numpy_tanh_applies(row)) or row)(torch.zeros(2, 3))
    assert seen == [False]
    # What falls back is torch.tanh itself: the same bits, the same device.
    x64 = torch.randn(100, dtype=torch.float64)
    assert torch.equal(fast_tanh(x64), torch.tanh(x64))
    assert fast_tanh(torch.zeros(3, device="meta")).device.type == "meta"


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # make_dual's own
def test_forward_mode_ad_keeps_torch_tanh_and_its_tangent() -> None:
    """numpy would drop a dual tensor's tangent; while a dual level is open, fast_tanh is torch.tanh."""
    x = torch.randn(4)
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, torch.ones(4))
        assert not numpy_tanh_applies(dual) and not numpy_tanh_applies(x)
        tangent = torch.autograd.forward_ad.unpack_dual(fast_tanh(dual)).tangent
    assert tangent is not None
    torch.testing.assert_close(tangent, 1 - torch.tanh(x) ** 2)
    assert numpy_tanh_applies(x)  # numpy's again once the dual level is left


def test_torch_func_per_sample_gradients_go_through_the_network() -> None:
    policy = PolicyNetwork(gym.spaces.Box(-1.0, 1.0, (4,)), 3)
    params = dict(policy.named_parameters())

    def log_prob(p: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(policy, p, (x.unsqueeze(0),)).log_softmax(-1)[0, 0]

    x = torch.randn(5, 4)
    per_sample = torch.func.vmap(torch.func.grad(log_prob), in_dims=(None, 0))(params, x)
    for i in range(5):
        policy.zero_grad()
        policy(x[i : i + 1]).log_softmax(-1)[0, 0].backward()
        for name, p in policy.named_parameters():
            torch.testing.assert_close(per_sample[name][i], p.grad, rtol=1e-5, atol=1e-6)


def test_tanh_networks_use_it_and_keep_nn_tanhs_state_dict_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    space = gym.spaces.Box(-1.0, 1.0, (4,))
    new = network(space, (8, 8), 2)
    assert [type(m) for m in new if isinstance(m, nn.Tanh)] == [FastTanh, FastTanh]
    monkeypatch.setitem(policy_module.ACTIVATIONS, "tanh", nn.Tanh)  # the networks as they were built before
    old = network(space, (8, 8), 2)
    assert list(old.state_dict()) == list(new.state_dict())


def test_a_checkpoint_saved_with_nn_tanh_loads_and_evaluates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pglab
    from pglab.io.checkpoint import load_checkpoint

    with monkeypatch.context() as old_code:
        old_code.setitem(policy_module.ACTIVATIONS, "tanh", nn.Tanh)
        pglab.train(
            agent="gumbel-st", env="CartPole-v1", seed=3, total_steps=1024, run_dir=str(tmp_path / "old"),
            wandb_mode="disabled", progress=False,
        )  # fmt: skip
    saved = load_checkpoint(tmp_path / "old" / "checkpoint.pt")["agent"]
    critic = QCritic(gym.spaces.Box(-1.0, 1.0, (4,)), 2, (64, 64), "tanh")
    critic.load_state_dict(saved["critic"])  # strict: the same keys, none missing, none unexpected
    assert list(critic.state_dict()) == list(saved["critic"])
    result = pglab.evaluate(tmp_path / "old", episodes=2)  # loads the policy with the new code
    assert result["episodes"] == 2


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    import pglab

    runs = []
    for name in ("a", "b"):
        pglab.train(
            agent="gumbel-rao", env="CartPole-v1", seed=5, total_steps=2048, run_dir=str(tmp_path / name),
            wandb_mode="disabled", progress=False,
        )  # fmt: skip
        runs.append([{k: v for k, v in row.items() if k != "charts/SPS"} for row in read_metrics(tmp_path / name)])
    assert runs[0] == runs[1] and len(runs[0]) == 2
