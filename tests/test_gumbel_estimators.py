"""The Gumbel estimators against exact laws and exact gradients on enumerable categoricals.

Statistical tests use fixed seeds and tolerances of several standard errors, so they fail only when
the estimator is wrong, not by bad luck.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from pglab.core import estimators as est
from pglab.core.temperature import TemperatureSchedule

LOGITS = torch.tensor([0.5, -0.3, 0.1, 1.2], dtype=torch.float64)
C = torch.tensor([1.0, -2.0, 0.5, 0.3], dtype=torch.float64)
D = torch.tensor([1.0, 0.0, -1.0, 0.5], dtype=torch.float64)


def objective(y: torch.Tensor) -> torch.Tensor:
    """A nonlinear f on the simplex: f(y) = c.y + (d.y)^2, so f' differs from vertex to vertex."""
    return (y * C).sum(-1) + (y * D).sum(-1) ** 2


def exact_gradient(logits: torch.Tensor) -> torch.Tensor:
    """grad_theta E_{a ~ softmax(theta)}[f(one_hot(a))], by enumerating the actions."""
    theta = logits.clone().requires_grad_(True)
    vertices = torch.eye(len(logits), dtype=logits.dtype)
    (grad,) = torch.autograd.grad((torch.softmax(theta, -1) * objective(vertices)).sum(), theta)
    return grad


def per_sample_gradients(sample: callable, n: int) -> torch.Tensor:
    """(n, K) gradients of f(sample(theta)) w.r.t. theta, one row per independent draw."""
    theta = LOGITS.expand(n, -1).clone().requires_grad_(True)
    (grads,) = torch.autograd.grad(objective(sample(theta)).sum(), theta)
    return grads


def test_gumbel_max_frequencies_match_softmax():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    n = 200_000
    generator = torch.Generator().manual_seed(0)
    actions = est.gumbel_max_sample(logits.expand(n, -1), generator=generator)
    observed = torch.bincount(actions, minlength=5).double().numpy()
    expected = (torch.softmax(logits.double(), -1) * n).numpy()
    assert stats.chisquare(observed, expected).pvalue > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_inf_or_nan_with_extreme_logits(dtype):
    generator = torch.Generator().manual_seed(0)
    logits = torch.tensor([1e4, -1e4] * 5, dtype=dtype).expand(1_000_000, -1)  # 10^7 draws
    noise = est.gumbel_noise(logits.shape, dtype, generator=generator)
    assert torch.isfinite(noise).all()
    actions = est.gumbel_max_sample(logits, generator=generator)
    assert torch.isfinite(est.relaxed_sample(logits, noise, 0.1)).all()
    # condition on the least likely actions too: the construction must stay finite there
    unlikely = torch.full_like(actions, 1)
    conditional = est.conditional_gumbel_noise(logits, unlikely, generator=generator)[0]
    assert torch.isfinite(conditional).all()
    # the conditioned action stays on top, up to the rounding of logits + noise at |logits| = 1e4
    perturbed = logits + conditional
    gap = perturbed.max(-1).values - perturbed.gather(-1, unlikely.unsqueeze(-1)).squeeze(-1)
    assert (gap <= 4 * torch.finfo(dtype).eps * 1e4).all()


def test_straight_through_is_one_hot_forward_and_soft_backward():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 5, generator=generator, requires_grad=True)
    noise = est.gumbel_noise(logits.shape, generator=generator)
    weights = torch.randn(5, generator=generator)

    y = est.straight_through_sample(logits, noise, tau=0.7)
    assert torch.equal(y, torch.nn.functional.one_hot((logits + noise).argmax(-1), 5).float())
    (st_grad,) = torch.autograd.grad((y * weights).sum(), logits)
    (soft_grad,) = torch.autograd.grad((est.relaxed_sample(logits, noise, 0.7) * weights).sum(), logits)
    torch.testing.assert_close(st_grad, soft_grad, rtol=0, atol=0)


def test_conditional_noise_has_the_law_of_gumbel_noise_given_the_argmax():
    """Mean perturbed logits given the argmax: rejection (unconditional draws filtered) vs the construction."""
    n = 400_000
    generator = torch.Generator().manual_seed(2)
    perturbed = LOGITS + est.gumbel_noise((n, 4), torch.float64, generator=generator)
    actions = perturbed.argmax(-1)
    conditional = LOGITS + est.conditional_gumbel_noise(LOGITS.expand(n, -1), actions, generator=generator)[0]
    assert torch.equal(conditional.argmax(-1), actions)
    for a in range(4):
        chosen = actions == a
        reference, built = perturbed[chosen], conditional[chosen]
        standard_error = (reference.var(0) / chosen.sum() * 2).sqrt()
        assert ((reference.mean(0) - built.mean(0)).abs() < 4 * standard_error).all(), a


def test_gumbel_rao_matches_straight_through_in_mean_with_lower_variance():
    n, tau = 100_000, 0.5
    generator = torch.Generator().manual_seed(3)

    def straight_through(theta):
        return est.straight_through_sample(theta, est.gumbel_noise(theta.shape, theta.dtype, generator=generator), tau)

    def gumbel_rao(theta):
        actions = est.gumbel_max_sample(theta.detach(), generator=generator)
        return est.gumbel_rao_sample(theta, actions, tau, num_samples=16, generator=generator)

    st, rao = per_sample_gradients(straight_through, n), per_sample_gradients(gumbel_rao, n)
    standard_error = ((st.var(0) + rao.var(0)) / n).sqrt()
    assert ((st.mean(0) - rao.mean(0)).abs() < 4 * standard_error).all()
    assert rao.var(0).sum() < 0.7 * st.var(0).sum()


def test_gumbel_rao_with_one_draw_is_straight_through_in_law():
    """K = 1: the taken action with its conditional noise is a straight-through sample; means agree."""
    n, tau = 100_000, 1.0
    generator = torch.Generator().manual_seed(4)

    def one_draw(theta):
        actions = est.gumbel_max_sample(theta.detach(), generator=generator)
        return est.gumbel_rao_sample(theta, actions, tau, num_samples=1, generator=generator)

    def straight_through(theta):
        return est.straight_through_sample(theta, est.gumbel_noise(theta.shape, theta.dtype, generator=generator), tau)

    a, b = per_sample_gradients(one_draw, n), per_sample_gradients(straight_through, n)
    assert ((a.mean(0) - b.mean(0)).abs() < 4 * ((a.var(0) + b.var(0)) / n).sqrt()).all()
    assert a.var(0).sum() == pytest.approx(b.var(0).sum().item(), rel=0.05)


def test_relaxed_bias_shrinks_and_variance_grows_as_tau_decreases():
    n = 100_000
    exact = exact_gradient(LOGITS)
    generator = torch.Generator().manual_seed(5)
    biases, errors, variances = [], [], []
    for tau in (2.0, 1.0, 0.5, 0.25):
        grads = per_sample_gradients(
            lambda theta, tau=tau: est.relaxed_sample(
                theta, est.gumbel_noise(theta.shape, theta.dtype, generator=generator), tau
            ),
            n,
        )
        biases.append((grads.mean(0) - exact).norm().item())
        errors.append((grads.var(0).sum() / n).sqrt().item())
        variances.append(grads.var(0).sum().item())
    for i in range(3):
        assert biases[i + 1] < biases[i] - 4 * (errors[i] + errors[i + 1]), (biases, errors)
        assert variances[i + 1] > 1.5 * variances[i], variances
    assert biases[0] > 10 * errors[0]  # the bias is measurable, not noise


def test_relaxed_sample_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="tau"):
        est.relaxed_sample(LOGITS, torch.zeros(4, dtype=torch.float64), 0.0)


def test_temperature_schedules():
    assert TemperatureSchedule("constant", 2.0, 0.1, 1.0)(10**6) == 2.0
    exponential = TemperatureSchedule("exponential", 2.0, 0.5, 1e-5)
    assert exponential(0) == 2.0
    assert exponential(50_000) == pytest.approx(2.0 * math.exp(-0.5))
    assert exponential(10**7) == 0.5
    linear = TemperatureSchedule("linear", 1.0, 0.2, 1e-6)
    assert linear(300_000) == pytest.approx(0.7)
    assert linear(10**7) == 0.2
    for bad in (("cosine", 1.0, 0.1, 0.0), ("linear", 0.0, 0.1, 0.0), ("linear", 1.0, 0.1, -1.0)):
        with pytest.raises(ValueError):
            TemperatureSchedule(*bad)
