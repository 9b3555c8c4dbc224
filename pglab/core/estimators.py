"""Gradient estimators for discrete actions, as pure functions of tensors.

No environment, no I/O, no global state: every function here takes tensors and returns tensors, so
each can be tested against exact gradients on problems small enough to enumerate
(tests/test_estimators.py). Shapes follow the rollout buffer: time first, ``(T, N)`` for T steps of
N parallel environments.

Conventions shared by the return functions:

* ``terminated[t]`` — the episode ended in a terminal state after step t: nothing follows it.
* ``truncated[t]`` — the episode was cut (a time limit) after step t: the future is unknown, so
  the tail is bootstrapped with ``next_values[t]``, the critic's value of the true next state. An
  agent whose preset says ``truncation=terminal`` passes time-limit cuts as terminations instead
  (pglab.core.agent.episode_ends): the limit then ends a finite-horizon task.
* The last row ``t = T - 1`` is always a cut (the rollout ends there), bootstrapped likewise.
* An agent without a critic passes ``next_values = 0``: a cut tail then counts only the rewards
  seen, so G_t near a window's end is a *shorter-horizon* return. Whether the episode survives past
  the window depends on the action (on CartPole, an action that keeps the pole up earns the reward of
  the steps the window no longer holds), so the bias is myopic and action-dependent, not a shift
  common to every action; a leave-one-out baseline does not remove it (it subtracts other
  trajectories' returns, which leaves this trajectory's missing tail in place). Whole-episode
  batches (preset ``batch_episodes``) have no such cut.

Objectives. With complete episodes, ``-grad score_function_loss`` on returns G_t and per-step weights
gamma^t (:func:`discount_weights`, t from the episode start) is unbiased for the gradient of
J = E[sum_{t<H} gamma^t r_t] from the start state; with weight 1 and gamma < 1 it is the common
surrogate that is the gradient of no objective (Nota & Thomas 2020).
"""

from __future__ import annotations

import numpy as np
import torch


def _check_time_major(**tensors: torch.Tensor) -> torch.Size:
    shapes = {name: t.shape for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) != 2 or any(s != first for s in shapes.values()):
        raise ValueError(f"expected tensors of one shape (T, N); got {shapes}")
    return first


def discounted_returns(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Return-to-go G_t = r_t + gamma * G_{t+1}, restarting at episode ends.

    G_t = r_t                                  if terminated[t]
    G_t = r_t + gamma * next_values[t]         if truncated[t] or t = T - 1
    G_t = r_t + gamma * G_{t+1}                otherwise
    All inputs are (T, N); the result is (T, N) and carries no gradient.
    """
    _check_time_major(rewards=rewards, terminated=terminated, truncated=truncated, next_values=next_values)
    rewards, next_values = rewards.detach(), next_values.detach()
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    cut = truncated.to(torch.bool).clone()
    cut[-1] = True
    return _backward_scan(rewards, gamma * not_terminal, cut, next_values)


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimation (Schulman et al. 2016), GAE(gamma, lambda).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t);
    A_t = delta_t + gamma * lam * A_{t+1}, the sum stopping at every episode end and at t = T - 1.
    lam = 1 gives the Monte-Carlo return minus V (REINFORCE with a value baseline); lam = 0 the
    one-step TD error. ``values`` and ``next_values`` are V(s_t) and V(s_{t+1}), (T, N).
    """
    _check_time_major(rewards=rewards, values=values, next_values=next_values, terminated=terminated)
    rewards, values, next_values = rewards.detach(), values.detach(), next_values.detach()
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    continues = ~(terminated.to(torch.bool) | truncated.to(torch.bool))
    continues[-1] = False
    deltas = rewards + gamma * not_terminal * next_values - values
    return _backward_scan(deltas, gamma * lam * continues.to(rewards.dtype))


def _backward_scan(
    heads: torch.Tensor, scales: torch.Tensor, cut: torch.Tensor | None = None, cut_values: torch.Tensor | None = None
) -> torch.Tensor:
    """F_t = heads[t] + scales[t] * tail_t, from t = T - 1 down to 0: the recursion of returns and GAE.

    tail_t is F_{t+1} (0 after the last row), or ``cut_values[t]`` where ``cut[t]``. The inputs carry
    no gradient. On the CPU the loop runs on numpy views of the tensors: the same float operations in
    the same order, so bit for bit the same result, at a fifth of the cost of T small torch operations
    (this runs once per update).
    """
    out = torch.empty_like(heads)
    tensors = (heads, scales, out, cut, cut_values)
    if heads.device.type == "cpu" and heads.dtype in (torch.float32, torch.float64):  # numpy has no bfloat16
        h, s, o, c, v = (None if t is None else t.numpy() for t in tensors)
        where, following = np.where, np.zeros_like(h[0])
    else:
        h, s, o, c, v = tensors
        where, following = torch.where, torch.zeros_like(h[0])
    for t in range(h.shape[0] - 1, -1, -1):
        tail = following if c is None else where(c[t], v[t], following)
        following = h[t] + s[t] * tail
        o[t] = following
    return out


def categorical_log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) for integer ``actions`` under ``softmax(logits)``; logits (..., K), actions (...)."""
    return torch.log_softmax(logits, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) along the last axis."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is true (all entries when mask is None)."""
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def masked_std(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Standard deviation (population, ddof 0) of ``x`` over the entries where ``mask`` is true."""
    return masked_mean((x - masked_mean(x, mask)) ** 2, mask).sqrt()


def discount_weights(timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma^t for the steps since the episode start ``timesteps``: the weight of step t's score in the
    gradient of the discounted return from the start state (its term is gamma^t grad log pi(a_t|s_t) G_t)."""
    return torch.pow(torch.tensor(gamma, dtype=torch.float64), timesteps.double()).float()


def score_function_loss(
    log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The REINFORCE surrogate: -mean(w_t * log pi(a_t|s_t) * A_t), w_t = 1 unless ``weights`` are given.

    Its gradient is minus the score-function estimate of grad J (Williams 1992):
    -mean(w_t * grad log pi(a_t|s_t) * A_t). The advantages are held constant (stop-gradient), so any
    baseline subtracted in them that does not depend on a_t leaves the estimate unbiased. With
    ``weights = discount_weights(timesteps, gamma)`` and returns of complete episodes it is unbiased for
    the discounted return from the start state; with w = 1 only at gamma = 1.
    """
    if log_probs.shape != advantages.shape:
        raise ValueError(f"log_probs {tuple(log_probs.shape)} and advantages {tuple(advantages.shape)} differ")
    terms = log_probs * advantages.detach()
    if weights is not None:
        terms = terms * weights.detach()
    return -masked_mean(terms, mask)


def ema(previous: float | None, observation: float, decay: float) -> float:
    """An exponential moving average: decay * previous + (1 - decay) * observation.

    The first observation initialises the average (no bias towards zero). Used as a running-mean
    baseline, it must be updated *after* the batch's advantages are computed so the baseline never
    depends on the actions it judges.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema decay must lie in [0, 1); got {decay}")
    if previous is None:
        return float(observation)
    return decay * previous + (1.0 - decay) * float(observation)


def leave_one_out_baseline(values: torch.Tensor, dim: int = -1, mask: torch.Tensor | None = None) -> torch.Tensor:
    """For every entry, the mean of the *other* entries along ``dim`` (RLOO, Kool et al. 2019).

    b_i = (sum_j x_j - x_i) / (n - 1). The baseline of sample i uses only the other, independent
    samples, so the score-function estimate stays unbiased. With a mask, only valid entries count
    as "others"; an entry with no valid other gets a baseline of 0.
    """
    values = values.detach()
    if mask is None:
        mask = torch.ones_like(values, dtype=torch.bool)
    weights = mask.to(values.dtype)
    total = (values * weights).sum(dim, keepdim=True)
    count = weights.sum(dim, keepdim=True)
    others = count - weights
    return torch.where(others > 0, (total - values * weights) / others.clamp_min(1.0), 0.0)


def normalize_advantages(
    advantages: torch.Tensor,
    mask: torch.Tensor | None = None,
    center: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Scale to unit standard deviation over the (masked) batch; with ``center``, also to zero mean.

    The scale is a per-batch step size, so the step stops depending on the reward scale. The shift
    is itself a batch-wide baseline: leave it off (``center=False``) when the point is to compare
    baselines. Both use the batch they normalise, a bias that vanishes as the batch grows.
    """
    shifted = advantages - masked_mean(advantages, mask) if center else advantages
    return shifted / (masked_std(advantages, mask) + eps)


def gumbel_noise(
    shape: torch.Size | tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Standard Gumbel(0, 1) noise as -log(E), E ~ Exponential(1); always finite.

    E is clamped away from 0 at the dtype's smallest normal number, so a draw of exactly zero (which
    would give +inf) becomes a large finite value instead: at most -log(tiny) (~87 in float32).
    """
    exponential = torch.empty(shape, dtype=dtype, device=device).exponential_(generator=generator)
    return -exponential.clamp_min(torch.finfo(dtype).tiny).log()


def gumbel_max_sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """An exact sample of Categorical(softmax(logits)): argmax(logits + Gumbel noise).

    The noise of :func:`gumbel_noise` folded in with in-place steps: logits - log(E) is bit for bit
    logits + (-log(E)), in three tensor operations fewer (this runs once per environment step).
    """
    exponential = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device).exponential_(generator=generator)
    return (logits - exponential.clamp_min_(torch.finfo(logits.dtype).tiny).log_()).argmax(dim=-1)


def relaxed_sample(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """The Concrete / Gumbel-Softmax sample y = softmax((logits + noise) / tau) (Jang et al. 2017;
    Maddison et al. 2017).

    A point inside the simplex that is differentiable in ``logits``; as tau -> 0 it tends to the
    one-hot Gumbel-Max sample of the same noise. Fed to a differentiable f, grad f(y) is a biased
    estimate of grad E[f(one_hot(a))]: the bias shrinks and the variance grows as tau decreases.
    ``noise`` is Gumbel(0, 1) of the logits' shape (held constant: only the logits carry gradient).
    """
    if not tau > 0:
        raise ValueError(f"the temperature tau must be positive; got {tau}")
    return torch.softmax((logits + noise.detach()) / tau, dim=-1)


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward ``hard`` exactly, backward the gradient of ``soft`` (Bengio et al. 2013).

    Written as hard + (soft - soft.detach()): the bracket is exactly zero in floating point, so the
    forward value is bit-for-bit ``hard`` (``soft + (hard - soft).detach()`` is not, by an ulp).
    """
    return hard + (soft - soft.detach())


def straight_through_sample(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """Straight-through Gumbel-Softmax: the one-hot Gumbel-Max sample of ``noise`` forward, the
    gradient of :func:`relaxed_sample` of the same noise backward."""
    soft = relaxed_sample(logits, noise, tau)
    hard = torch.nn.functional.one_hot((logits + noise).argmax(-1), logits.shape[-1]).to(soft.dtype)
    return straight_through(hard, soft)


def conditional_gumbel_logits(
    logits: torch.Tensor,
    actions: torch.Tensor,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Perturbed logits z = logits + g, shape (num_samples, *logits.shape), with g ~ Gumbel(0, 1) drawn
    conditioned on argmax(z) = actions, as a differentiable function of ``logits`` at fixed noise.

    The exact construction of Paulus et al. 2021 (Gumbel-Rao, their appendix), in log space so that
    no exp(logits) can overflow: the top of the perturbed logits is Gumbel with location
    logsumexp(logits), independent of which action attains it, so z_a = logsumexp + G_0; every other
    z_i is Gumbel(logits_i) truncated below z_a: z_i = -logaddexp(-z_a, -(logits_i + G_i)).
    Differentiating z at fixed (G_0, G_i) is the conditional reparameterisation of REBAR (Tucker et
    al. 2017) that RELAX needs for d/dtheta E[c(z) | a].
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1; got {num_samples}")
    shape = (num_samples, *logits.shape)
    gumbels = gumbel_noise(shape, logits.dtype, logits.device, generator)
    index = actions.long().unsqueeze(-1).expand(num_samples, *actions.shape, 1)
    top = torch.logsumexp(logits, dim=-1, keepdim=True) + gumbels.gather(-1, index)
    others = -torch.logaddexp(-top, -(logits + gumbels))
    return others.scatter(-1, index, top)


def conditional_gumbel_noise(
    logits: torch.Tensor,
    actions: torch.Tensor,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gumbel noise g, shape (num_samples, *logits.shape), drawn conditioned on argmax(logits + g) = actions.

    :func:`conditional_gumbel_logits` minus the logits, detached: the estimators that hold the noise
    constant differentiate through the logits only, which is what makes averaging over draws a
    Rao-Blackwellisation of straight-through.
    """
    logits = logits.detach()
    return conditional_gumbel_logits(logits, actions, num_samples, generator) - logits


def gumbel_rao_sample(
    logits: torch.Tensor,
    actions: torch.Tensor,
    tau: float,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gumbel-Rao (Paulus et al. 2021): the one-hot ``actions`` forward; backward, the soft sample's
    gradient averaged over ``num_samples`` Gumbel draws conditioned on those actions.

    The straight-through gradient is f'(one_hot(a)) * d softmax((logits + g) / tau); averaging the
    second factor over g | a is its conditional expectation given a, so the estimate has the same
    mean as straight-through and no more variance. ``num_samples = 1`` is straight-through itself
    (the pair (a, g | a) has the joint law of (argmax, g)).
    """
    noise = conditional_gumbel_noise(logits, actions, num_samples, generator)
    soft = relaxed_sample(logits.unsqueeze(0), noise, tau).mean(0)
    hard = torch.nn.functional.one_hot(actions.long(), logits.shape[-1]).to(soft.dtype)
    return straight_through(hard, soft)


def relax_surrogate(
    log_probs: torch.Tensor,
    advantages: torch.Tensor,
    control: torch.Tensor,
    control_tilde: torch.Tensor,
    mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The RELAX surrogate (Grathwohl et al. 2018, "Backpropagation through the Void", their RL
    appendix): -mean(log pi(a|s) * (G - c(s, z~)) + c(s, z) - c(s, z~)).

    Its gradient in the policy parameters theta is minus the RELAX estimate of grad J, per step
    grad log pi(a|s) [G - c_phi(s, z~)] + grad c_phi(s, z) - grad c_phi(s, z~), where

    * ``advantages`` = G - c_phi(s, z~) must be constant in theta (compute c there from a z~ detached
      from the logits). It is *not* detached here: it may carry gradient to phi, which is how the
      control variate's variance objective (the squared norm of this estimate) reaches phi through
      the score term;
    * ``control`` = c_phi(s, z), z = logits + g the perturbed logits whose argmax is the action,
      reparameterised: the gradient flows through the logits at fixed noise g;
    * ``control_tilde`` = c_phi(s, z~), z~ ~ p(z | a) drawn again given the action, through the
      conditional reparameterisation (:func:`conditional_gumbel_logits`).

    Unbiased for any control variate c_phi that does not depend on the batch's actions. ``weights``
    (gamma^t, :func:`discount_weights`) multiply each step's whole term, as in :func:`score_function_loss`.
    """
    shapes = {tuple(t.shape) for t in (log_probs, advantages, control, control_tilde)}
    if len(shapes) != 1:
        raise ValueError(
            f"log_probs {tuple(log_probs.shape)}, advantages {tuple(advantages.shape)}, control "
            f"{tuple(control.shape)} and control_tilde {tuple(control_tilde.shape)} must have one shape"
        )
    terms = log_probs * advantages + control - control_tilde
    return -masked_mean(terms if weights is None else terms * weights.detach(), mask)


def all_action_values(logits: torch.Tensor, q_values: torch.Tensor) -> torch.Tensor:
    """sum_a pi(a|s) Q(s, a) per state with Q held constant: minus its mean is the all-action surrogate.

    The gradient of its mean over the visited states is the all-action ("expected") policy-gradient
    estimate, the mean of sum_a grad pi(a|s) Q(s, a) (Sutton et al. 2000; Mean Actor-Critic, Allen et
    al. 2017): the expectation over the action is taken exactly, so given Q the estimate has no
    sampling noise from the action. With the exact Q of the policy each state's term is the exact
    gradient of that state's term of the policy-gradient theorem. logits and q_values are (..., K);
    the result is (...).
    """
    if logits.shape != q_values.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and q_values {tuple(q_values.shape)} differ")
    return (torch.softmax(logits, dim=-1) * q_values.detach()).sum(-1)


def score_sq_norms(module: torch.nn.Module, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """|grad_theta log pi(a|s)|^2 over all of ``module``'s parameters, one value per (s, a), by torch.func.

    ``module(features)`` gives the logits; features (..., *F) (F: one observation's shape, e.g. (D,) or
    an image's) and actions (...) give a result of shape (...), detached. Per-sample gradients are
    vectorised (``torch.func.vmap`` of ``grad``), so the cost is a few batched passes rather than one
    backward pass per sample.
    """
    params = {name: p.detach() for name, p in module.named_parameters()}
    flat_features = features.reshape(-1, *features.shape[actions.dim() :])
    flat_actions = actions.reshape(-1).long()

    def log_prob(p: dict[str, torch.Tensor], x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        logits = torch.func.functional_call(module, p, (x.unsqueeze(0),))[0]
        return torch.log_softmax(logits, dim=-1).gather(-1, a.unsqueeze(-1)).squeeze(-1)

    with torch.enable_grad():
        per_sample = torch.func.vmap(torch.func.grad(log_prob), in_dims=(None, 0, 0))(
            params, flat_features, flat_actions
        )
    total = sum(g.reshape(g.shape[0], -1).pow(2).sum(-1) for g in per_sample.values())
    return total.reshape(actions.shape)


def output_layer_score_sq_norms(hidden: torch.Tensor, logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """|grad log pi(a|s)|^2 over the softmax output layer's weight and bias alone, in closed form.

    For logits = W h + b, grad_W log pi(a|s) = (e_a - pi) h^T and grad_b = e_a - pi, so the squared norm
    is |e_a - pi|^2 (|h|^2 + 1): no per-sample backward pass at all. hidden (..., H), logits (..., K),
    actions (...).
    """
    probs = torch.softmax(logits.detach(), dim=-1)
    one_hot = torch.nn.functional.one_hot(actions.long(), probs.shape[-1]).to(probs.dtype)
    return ((one_hot - probs) ** 2).sum(-1) * (hidden.detach().pow(2).sum(-1) + 1.0)


def optimal_baseline(probs: torch.Tensor, score_norms: torch.Tensor, q_values: torch.Tensor) -> torch.Tensor:
    """The variance-minimising state baseline b*(s) = E[|grad log pi|^2 G | s] / E[|grad log pi|^2 | s]
    (Weaver & Tao 2001; Greensmith, Bartlett & Baxter 2004), from exact per-action quantities.

    With E[G | s, a] = Q(s, a): b*(s) = sum_a pi(a|s) w(s, a) Q(s, a) / sum_a pi(a|s) w(s, a), where
    w(s, a) = |grad log pi(a|s)|^2. It minimises the trace of the covariance of the single-step
    score-function estimate grad log pi(a|s) (G - b(s)) over all baselines of s alone. All inputs are
    (..., K); the result is (...).
    """
    weights = probs * score_norms
    return (weights * q_values).sum(-1) / weights.sum(-1).clamp_min(torch.finfo(weights.dtype).tiny)


def weighted_mse(
    predictions: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """mean(w * (prediction - target)^2) / mean(w) over the (masked) batch, targets and weights held constant.

    Regressing b(s) on returns G with weights w = |grad log pi(a|s)|^2 has, in each state, the
    minimiser E[w G | s] / E[w | s]: the optimal baseline (:func:`optimal_baseline`) learned from samples.
    """
    weights = weights.detach()
    return masked_mean(weights * (predictions - targets.detach()) ** 2, mask) / masked_mean(weights, mask).clamp_min(
        torch.finfo(weights.dtype).tiny
    )
