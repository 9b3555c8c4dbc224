"""The score-function estimators against exact gradients, and the return functions against hand values."""

from __future__ import annotations

import pytest
import torch

from pglab.core import estimators as est

# ---------------------------------------------------------------------------------------------
# Returns and GAE against hand-computed values
# ---------------------------------------------------------------------------------------------


def column(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


def flags(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.bool).unsqueeze(1)


def test_returns_restart_after_termination_and_stop_at_the_window_without_critic():
    rewards = column(1, 2, 3, 4)
    terminated = flags(0, 1, 0, 0)
    truncated = flags(0, 0, 0, 0)
    g = est.discounted_returns(rewards, terminated, truncated, torch.zeros_like(rewards), gamma=0.5)
    # episode 1: steps 0-1; episode 2: steps 2-3, cut by the window with V = 0
    assert g.squeeze(1).tolist() == [1 + 0.5 * 2, 2, 3 + 0.5 * 4, 4]


def test_returns_bootstrap_truncation_and_window_end_with_next_values():
    rewards = column(1, 1, 1)
    terminated = flags(0, 0, 0)
    truncated = flags(0, 1, 0)
    next_values = column(10, 20, 30)  # V(s_{t+1}); only used at cuts
    g = est.discounted_returns(rewards, terminated, truncated, next_values, gamma=0.9)
    assert g.squeeze(1).tolist() == pytest.approx([1 + 0.9 * (1 + 0.9 * 20), 1 + 0.9 * 20, 1 + 0.9 * 30])


def test_termination_ignores_next_value():
    g = est.discounted_returns(column(1.0), flags(1), flags(1), column(100.0), gamma=0.9)
    assert g.item() == 1.0


def test_gae_lambda_one_is_return_minus_value_and_lambda_zero_is_td_error():
    torch.manual_seed(0)
    T = 6
    rewards = torch.randn(T, 3)
    values = torch.randn(T, 3)
    next_values = torch.cat([values[1:], torch.randn(1, 3)])
    terminated = torch.zeros(T, 3, dtype=torch.bool)
    terminated[2, 0] = True
    truncated = torch.zeros(T, 3, dtype=torch.bool)
    truncated[3, 1] = True
    gamma = 0.9
    returns = est.discounted_returns(rewards, terminated, truncated, next_values, gamma)
    adv1 = est.gae_advantages(rewards, values, next_values, terminated, truncated, gamma, lam=1.0)
    torch.testing.assert_close(adv1, returns - values)
    adv0 = est.gae_advantages(rewards, values, next_values, terminated, truncated, gamma, lam=0.0)
    td = rewards + gamma * (~terminated) * next_values - values
    torch.testing.assert_close(adv0, td)


def test_gae_hand_values():
    rewards = column(1, 0, 2)
    values = column(0.5, 1.0, 1.5)
    next_values = column(1.0, 1.5, 3.0)
    no = flags(0, 0, 0)
    gamma, lam = 0.5, 0.5
    d = [1 + 0.5 * 1.0 - 0.5, 0 + 0.5 * 1.5 - 1.0, 2 + 0.5 * 3.0 - 1.5]
    a2 = d[2]
    a1 = d[1] + gamma * lam * a2
    a0 = d[0] + gamma * lam * a1
    adv = est.gae_advantages(rewards, values, next_values, no, no, gamma, lam)
    assert adv.squeeze(1).tolist() == pytest.approx([a0, a1, a2])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        est.discounted_returns(torch.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.9)


def test_leave_one_out_baseline_and_mask():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    torch.testing.assert_close(est.leave_one_out_baseline(x, dim=1), torch.tensor([[11 / 3, 10 / 3, 3.0, 2.0]]))
    mask = torch.tensor([[True, True, False, True]])
    b = est.leave_one_out_baseline(x, dim=1, mask=mask)
    assert b[0, 0].item() == pytest.approx(4.0) and b[0, 3].item() == pytest.approx(1.5)
    lonely = est.leave_one_out_baseline(torch.tensor([[5.0, 7.0]]), dim=1, mask=torch.tensor([[True, False]]))
    assert lonely[0, 0].item() == 0.0


def test_ema_starts_at_first_observation_and_rejects_bad_decay():
    assert est.ema(None, 4.0, 0.9) == 4.0
    assert est.ema(4.0, 14.0, 0.9) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        est.ema(1.0, 1.0, 1.0)


def test_normalize_advantages_scale_keeps_the_mean_sign():
    adv = torch.tensor([1.0, 2.0, 3.0, 10.0])
    standardized = est.normalize_advantages(adv)
    assert standardized.mean().abs() < 1e-6 and standardized.std(unbiased=False) == pytest.approx(1.0, abs=1e-4)
    scaled = est.normalize_advantages(adv, center=False)
    torch.testing.assert_close(scaled / scaled[0], adv / adv[0])


# ---------------------------------------------------------------------------------------------
# The score-function estimator against the exact gradient of an enumerable categorical problem
# ---------------------------------------------------------------------------------------------

LOGITS = torch.tensor([0.3, -0.2, 0.8, 0.0, -1.0], dtype=torch.float64)
# An offset far from zero is where baselines matter: without one, every sample pushes hard.
REWARDS = torch.tensor([10.0, 11.0, 9.5, 12.0, 10.5], dtype=torch.float64)


def exact_gradient(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    theta = logits.clone().requires_grad_(True)
    (torch.softmax(theta, -1) * rewards).sum().backward()
    return theta.grad


def score_function_estimates(baseline: str, batches: int, batch_size: int, seed: int = 0) -> torch.Tensor:
    """One gradient estimate (the gradient of minus the surrogate) per batch, (batches, K).

    Every batch gets its own copy of the logits, so one backward pass yields all the estimates:
    the surrogate averages over batches * batch_size samples, hence the factor ``batches``.
    """
    generator = torch.Generator().manual_seed(seed)
    theta = LOGITS.expand(batches, -1).clone().requires_grad_(True)
    actions = est.gumbel_max_sample(theta.detach().unsqueeze(1).expand(-1, batch_size, -1), generator)
    returns = REWARDS[actions]  # (batches, M): independent samples
    if baseline == "none":
        advantages = returns
    elif baseline == "ema":  # a running mean of earlier batches only
        running: float | None = None
        previous = []
        for batch_mean in returns.mean(1).tolist():
            previous.append(0.0 if running is None else running)
            running = est.ema(running, batch_mean, 0.9)
        advantages = returns - torch.tensor(previous, dtype=returns.dtype).unsqueeze(1)
    elif baseline == "rloo":
        advantages = returns - est.leave_one_out_baseline(returns, dim=1)
    elif baseline == "value":  # a state value fitted on independent data: E[r] estimated elsewhere
        advantages = returns - float((torch.softmax(LOGITS, -1) * REWARDS).sum()) - 0.05
    elif baseline == "own-return":  # NOT a valid baseline: it depends on the action it judges
        advantages = returns - 0.5 * returns
    log_probs = est.categorical_log_prob(theta.unsqueeze(1).expand(-1, batch_size, -1), actions)
    (-est.score_function_loss(log_probs, advantages)).backward()
    return theta.grad * batches


def within_standard_errors(estimates: torch.Tensor, exact: torch.Tensor, z: float = 4.5) -> bool:
    """Every component of the estimates' mean within z standard errors of the exact value."""
    standard_error = estimates.std(0) / estimates.shape[0] ** 0.5
    return bool(torch.all((estimates.mean(0) - exact).abs() < z * standard_error))


@pytest.mark.parametrize("baseline", ["none", "ema", "value", "rloo"])
def test_score_function_estimate_is_unbiased(baseline: str):
    estimates = score_function_estimates(baseline, batches=20_000, batch_size=8)
    # 5 components at 4.5 standard errors: a false alarm has odds of about 3e-5
    assert within_standard_errors(estimates, exact_gradient(LOGITS, REWARDS))


def test_the_unbiasedness_check_catches_a_baseline_that_depends_on_the_action():
    estimates = score_function_estimates("own-return", batches=20_000, batch_size=8)
    assert not within_standard_errors(estimates, exact_gradient(LOGITS, REWARDS))


@pytest.mark.parametrize("baseline", ["ema", "value", "rloo"])
def test_baselines_lower_the_variance(baseline: str):
    plain = score_function_estimates("none", batches=1000, batch_size=8).var(0).sum()
    with_baseline = score_function_estimates(baseline, batches=1000, batch_size=8, seed=1).var(0).sum()
    # rewards sit near 10 with a spread of about 1: a baseline cuts the variance by far more than 10x
    assert with_baseline < plain / 10, (with_baseline, plain)


def test_score_function_loss_stops_gradient_through_advantages():
    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    adv = torch.tensor([1.0, 3.0], requires_grad=True)
    est.score_function_loss(logp, adv).backward()
    assert adv.grad is None
    torch.testing.assert_close(logp.grad, torch.tensor([-0.5, -1.5]))


def test_masked_loss_ignores_masked_entries():
    logp = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    adv = torch.tensor([1.0, 1.0, 100.0])
    est.score_function_loss(logp, adv, mask=torch.tensor([True, True, False])).backward()
    torch.testing.assert_close(logp.grad, torch.tensor([-0.5, -0.5, 0.0]))


def test_categorical_helpers_match_torch_distributions():
    logits = torch.randn(4, 3)
    actions = torch.tensor([0, 2, 1, 2])
    dist = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(est.categorical_log_prob(logits, actions), dist.log_prob(actions))
    torch.testing.assert_close(est.categorical_entropy(logits), dist.entropy())


def test_masked_statistics_count_only_valid_entries_and_an_empty_mask_gives_zero():
    x = torch.tensor([1.0, 3.0, 100.0])
    valid = torch.tensor([True, True, False])
    assert est.masked_mean(x, valid).item() == 2.0
    assert est.masked_std(x, valid).item() == 1.0  # population std of [1, 3]
    assert est.masked_mean(x, torch.zeros(3, dtype=torch.bool)).item() == 0.0  # not NaN
    scaled = est.normalize_advantages(x, valid, center=False)
    assert torch.allclose(scaled[:2], torch.tensor([1.0, 3.0]) / (1.0 + 1e-8))


def test_weighted_mse_is_minimised_by_the_weighted_mean_of_the_targets():
    targets, weights = torch.tensor([1.0, 3.0]), torch.tensor([3.0, 1.0])
    assert est.weighted_mse(torch.zeros(2), targets, weights).item() == pytest.approx((3 * 1 + 1 * 9) / 4)
    best = torch.full((2,), 1.5)  # (3 * 1 + 1 * 3) / 4
    for other in (1.4, 1.6):
        assert est.weighted_mse(best, targets, weights) < est.weighted_mse(torch.full((2,), other), targets, weights)


def test_max_grad_norm_zero_turns_clipping_off_and_a_positive_one_clips():
    from pglab.core.agent import optimizer_step

    for limit, moved in ((0.0, 100.0), (0.5, 0.5)):
        weight = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([weight], lr=1.0)
        norm = optimizer_step(optimizer, -100.0 * weight.sum(), [weight], limit)
        assert norm == pytest.approx(100.0) and weight.item() == pytest.approx(moved)


def test_straight_through_and_relaxed_gradients_coincide_for_a_critic_linear_in_the_action():
    """A critic linear in the action vector, f(y) = q . y (the Q critic's per-action head on MinAtar), has the
    same gradient q at the hard and the soft sample, so straight-through (hard forward, soft Jacobian) and the
    relaxed estimator (soft both ways) give the same gradient, bit for bit: gumbel-st and gumbel-softmax
    coincide there (README, MinAtar). A critic non-linear in y tells them apart."""
    torch.manual_seed(0)
    logits = torch.randn(64, 3, requires_grad=True)
    noise = est.gumbel_noise((64, 3))
    q = torch.randn(64, 3)

    def gradient(sample, critic) -> torch.Tensor:
        return torch.autograd.grad(critic(sample(logits, noise, 0.5)).sum(), logits)[0]

    def linear(y: torch.Tensor) -> torch.Tensor:
        return (q * y).sum(-1)

    def squared(y: torch.Tensor) -> torch.Tensor:
        return linear(y) ** 2

    assert torch.equal(gradient(est.relaxed_sample, linear), gradient(est.straight_through_sample, linear))
    soft, straight = gradient(est.relaxed_sample, squared), gradient(est.straight_through_sample, squared)
    assert (soft - straight).abs().max() > 0.01 * soft.abs().max()
