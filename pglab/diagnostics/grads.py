"""Estimator diagnostics: bias, variance, signal-to-noise and cost of each agent's policy gradient.

With the policy frozen, every estimator draws ``samples`` independent batches and estimates grad J
once per batch; the estimates are compared with a reference: the exact gradient where the
environment exposes its model (pglab.diagnostics.exact), otherwise the mean of many plain-REINFORCE estimates.

**The hook.** An agent takes part by providing ``policy_loss(batch) -> scalar tensor``: the very
loss its ``update`` minimises (without exploration bonuses), whose gradient with respect to
``agent.policy.parameters()`` is minus its estimate of grad J, averaged over the batch's valid steps.
It must step no optimiser and fit no critic (running statistics such as an EMA baseline may advance,
as they would in training). Agents with a critic may also provide ``use_oracle_critic(critic)``,
which ``--critic oracle`` calls with a pglab.diagnostics.exact.OracleCritic (``critic(features, timesteps)`` is
V_{H-t}(s) with a trailing axis of 1, ``critic.q_values(features, timesteps)`` is Q_{H-t}(s, .): the
exact values with the steps left). An agent may provide ``objective() -> str``, the objective its
estimate is unbiased for in words (pglab.core.agent.objective_of). :func:`estimate_gradient` is the whole
of what pglab does with the gradient hook.

**The batches.** A batch is one complete episode in each of ``batch_episodes`` parallel
environments, from a fresh reset (pglab.core.rollout's whole-episode collection). A batch of fixed-length
windows would cut episodes where the window ends, and the expectation of the estimate would then
depend on where the cuts fall; complete episodes have an exact target. Estimates are reported *per
episode* (the agent's per-step mean times valid steps / episodes), the units of grad J. Advantage
normalisation is off by default here (``--set normalize_advantages=...`` turns it back on): dividing by
a batch statistic rescales every estimate by a random amount.

**The objective of the reference.** J = E[sum_{t<H} gamma^t r_t] from the start state, with H the
time limit (``--horizon N`` gives one to an environment that has none) ending the task. An estimator
is unbiased for it with ``discount_weighting=true`` (or gamma = 1) and, where it bootstraps with a
state-only critic, ``truncation=terminal``; the defaults (weight 1, bootstrap) are the common practice
and the bias norm shows what they cost (Nota & Thomas 2020). Each row names the objective its
estimator targets.

**Where it runs.** ``--device`` (pglab.core.device) is where each agent acts and differentiates its
estimate, as the learner would in training; every agent is built, and its oracle computed, on the CPU
first. The exact reference is computed on a CPU copy of the policy in float64, and every estimate is
copied to the CPU as float64 for the statistics.

**Critics.** A critic that was never trained measures nothing about the agent: it is refused unless
``--critic untrained`` asks for it (then labelled ``untrained``). ``--critic trained`` (the default)
takes the critic from ``--checkpoint``; ``--critic oracle`` the exact values.
"""

from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pglab.core.agent import OBJECTIVE_FINITE_HORIZON, Agent, resolve_preset
from pglab.core.device import DeviceActor, move_agent, resolve_device
from pglab.core.environment import make_vector_env, resolve_env_id
from pglab.core.limits import ENV_BYTES, available_memory, check_run_memory, check_seed, gigabytes
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from pglab.core.reproducibility import seed_everything, versions
from pglab.core.rollout import Collector, RolloutBuffer
from pglab.diagnostics import exact
from pglab.errors import CheckpointError, ConfigError, EnvironmentSetupError
from pglab.io.checkpoint import load_checkpoint
from pglab.io.runlog import write_json

SCHEMA = "pglab.grads/1"
REFERENCE_MODES = ("auto", "exact", "large-batch")
CRITIC_MODES = ("trained", "oracle", "untrained")
LARGE_BATCH_ESTIMATOR = "reinforce"  # plain REINFORCE on complete episodes, gamma^t-weighted: unbiased for J
REFERENCE_OVERRIDES = {"discount_weighting": True, "truncation": "terminal"}
DEFAULT_OVERRIDES = {"normalize_advantages": "off"}

CPU = torch.device("cpu")
MAX_ESTIMATES = 1_000_000  # gradient estimates (each a batch of episodes) one measurement may ask for


@dataclass
class GradsConfig:
    """One ``pglab grads`` run."""

    env: str
    agents: tuple[str, ...]
    seed: int = 0
    checkpoint: str | None = None
    samples: int = 200
    batch_episodes: int = 8
    warmup: int = 5  # batches per agent whose estimates are discarded (they settle running baselines)
    reference: str = "auto"
    reference_samples: int = 1000
    critic: str = "trained"  # trained (from --checkpoint), oracle (exact V/Q) or untrained (fresh, labelled so)
    horizon: int | None = None  # a time limit for an environment without one (gym.make's max_episode_steps)
    overrides: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    device: str = "auto"  # where estimates are drawn and differentiated (pglab.core.device); references: see _reference
    torch_threads: int = 1

    def validate(self) -> None:
        if not self.agents:
            raise ConfigError("--agents names no agent; give a comma-separated list, e.g. reinforce,reinforce-rloo")
        if len(set(self.agents)) != len(self.agents):
            raise ConfigError(f"--agents names an agent twice: {','.join(self.agents)}")
        if self.samples < 2:
            raise ConfigError(f"--samples must be at least 2 (a variance needs two estimates); got {self.samples}")
        if self.batch_episodes < 1:
            raise ConfigError(f"--batch-episodes must be at least 1; got {self.batch_episodes}")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be >= 0; got {self.warmup}")
        if self.reference not in REFERENCE_MODES:
            raise ConfigError(f"--reference must be one of {', '.join(REFERENCE_MODES)}; got {self.reference!r}")
        if self.reference_samples < 2:
            raise ConfigError(f"--reference-samples must be at least 2; got {self.reference_samples}")
        if self.critic not in CRITIC_MODES:
            raise ConfigError(f"--critic must be one of {', '.join(CRITIC_MODES)}; got {self.critic!r}")
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"--horizon must be at least 1; got {self.horizon}")
        check_seed(self.seed)
        for flag, count in (
            ("--samples", self.samples),
            ("--warmup", self.warmup),
            ("--reference-samples", self.reference_samples),
        ):
            if count > MAX_ESTIMATES:  # each is a batch of episodes: more would run for days, not fail
                raise ConfigError(f"{flag} must be at most {MAX_ESTIMATES:,}; got {count}")
        if self.batch_episodes * ENV_BYTES > available_memory():
            raise ConfigError(
                f"--batch-episodes {self.batch_episodes:,} environments need more than the "
                f"{gigabytes(available_memory())} of memory available; lower it"
            )

    def make_kwargs(self) -> dict[str, Any]:
        """gym.make's arguments: ``env_kwargs``, with ``--horizon`` as the time limit."""
        if self.horizon is None:
            return dict(self.env_kwargs)
        return {**self.env_kwargs, "max_episode_steps": self.horizon}


def estimate_gradient(agent: Agent, batch: RolloutBuffer) -> torch.Tensor:
    """The agent's estimate of grad J from one batch: minus the gradient of ``agent.policy_loss(batch)``.

    Flat, float64, in the order of ``agent.policy.parameters()``; parameters the loss does not reach
    get zeros. This is the hook every agent implements (see the module docstring).
    """
    policy_loss = getattr(agent, "policy_loss", None)
    if policy_loss is None:
        raise ConfigError(
            f"agent {type(agent).__name__} has no policy_loss(batch) method, so pglab grads cannot read its "
            "gradient estimate; see pglab.diagnostics.grads for the hook"
        )
    params = list(agent.policy.parameters())
    grads = torch.autograd.grad(policy_loss(batch), params, allow_unused=True)
    flat = [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
    return -torch.cat(flat).double()


def gradient_statistics(samples: torch.Tensor, reference: torch.Tensor, exact_reference: bool) -> dict[str, Any]:
    """Mean, total variance, SNR, cosine to ``reference`` (of single estimates and of the mean), bias.

    ``samples`` is (M, P). The bias norm is ``|mean - reference|``, reported only against an exact
    reference, with ``bias_noise_norm`` = sqrt(trace(Cov) / M), the norm the mean's error would have
    if the estimator were unbiased: a bias norm well above it is real bias. ``along_reference`` is the
    mean's component along the reference direction, with its standard error: a one-dimensional test
    of the estimate's scale, far sharper than the norm (unbiased: it equals the reference's norm).
    """
    mean = samples.mean(0)
    total_variance = float(samples.var(0, unbiased=True).sum())
    cosines = torch.nn.functional.cosine_similarity(samples, reference.expand_as(samples), dim=1).numpy()
    along = samples @ (reference / reference.norm())  # each estimate's component along the reference
    stats: dict[str, Any] = {
        "mean_gradient": mean.tolist(),
        "mean_norm": float(mean.norm()),
        "total_variance": total_variance,
        "snr": float(mean.norm()) / math.sqrt(total_variance) if total_variance > 0 else math.inf,
        "cosine": {
            "mean": float(cosines.mean()),
            "std": float(cosines.std(ddof=1)),
            "p10": float(np.quantile(cosines, 0.1)),
            "p50": float(np.quantile(cosines, 0.5)),
            "p90": float(np.quantile(cosines, 0.9)),
        },
        "cosine_of_mean": float(torch.nn.functional.cosine_similarity(mean, reference, dim=0)),
        "bias_norm": float((mean - reference).norm()) if exact_reference else None,
        "bias_noise_norm": math.sqrt(total_variance / samples.shape[0]),
        "along_reference": float(along.mean()),
        "along_reference_se": float(along.std()) / math.sqrt(samples.shape[0]),
    }
    return stats


@dataclass
class _Contestant:
    name: str
    agent: Agent
    gamma: float
    hyperparameters: dict[str, Any]
    critic: str  # none, checkpoint, oracle or untrained
    objective: str  # what the estimator is unbiased for, in words


class _Lab:
    """The frozen setup shared by every estimator: the env, its model, the initial policy weights."""

    def __init__(self, config: GradsConfig, device: torch.device):
        self.config = config
        self.device = device
        self.env_id = resolve_env_id(config.env)
        kwargs = config.make_kwargs()
        self.horizon, self.model = horizon_and_model(self.env_id, kwargs)
        self.envs = make_vector_env(config.env, config.batch_episodes, "auto", kwargs)
        self.checkpoint = load_checkpoint(config.checkpoint) if config.checkpoint else None
        if self.checkpoint is not None and self.checkpoint.get("env", "").rpartition(":")[2] != self.env_id:
            raise CheckpointError(
                f"{config.checkpoint} was trained on {self.checkpoint.get('env')!r}, not {self.env_id!r}"
            )

    def build(self, name: str, extra: dict[str, Any] | None = None) -> _Contestant:
        """The agent ``name`` on the shared initial (or checkpoint) policy, with its critic in place;
        ``extra`` preset values go over the user's."""
        spec = get_agent(name)
        episodes = self.config.batch_episodes
        overrides = {**DEFAULT_OVERRIDES, **self.config.overrides, **(extra or {}), "num_envs": episodes}
        overrides["batch_episodes"] = episodes
        preset = resolve_preset(spec.preset, self.env_id, overrides)
        space = self.envs.single_observation_space
        check_run_memory(preset, gym.spaces.flatdim(space), int(self.envs.single_action_space.n))
        seed_everything(self.config.seed)  # as in training: the policy is built first from the seed
        policy = PolicyNetwork(
            self.envs.single_observation_space,
            int(self.envs.single_action_space.n),
            preset.hidden_sizes,
            preset.activation,
        )
        agent = spec.build(policy, self.envs.single_observation_space, self.envs.single_action_space, preset)
        critic = "untrained" if getattr(agent, "critic", None) is not None else "none"
        if self.checkpoint is not None:
            critic = self._load(name, agent, critic)
        if self.config.critic == "oracle" and critic != "none":
            if self.model is None:
                raise ConfigError(f"--critic oracle needs an environment with a model; {self.env_id} has none")
            agent.use_oracle_critic(exact.oracle_critic(policy, self.model, preset.gamma))
            critic = "oracle"
        if critic == "untrained" and self.config.critic != "untrained":
            raise ConfigError(
                f"{name}'s critic was never trained, so its estimates would say nothing about the agent; give "
                "--checkpoint RUN/checkpoint.pt of a run of this agent, --critic oracle, or --critic untrained"
            )
        move_agent(agent, self.device)  # built (and its oracle computed) on the CPU: the same start on every device
        objective = agent.objective() if hasattr(agent, "objective") else "not stated by the agent"
        return _Contestant(name, agent, preset.gamma, preset.to_dict(), critic, objective)

    def _load(self, name: str, agent: Agent, critic: str) -> str:
        assert self.checkpoint is not None
        state = self.checkpoint["agent"]
        try:
            if self.checkpoint.get("agent_name") == name:
                agent.load_state_dict(state)
                return "checkpoint" if critic != "none" else critic
            agent.policy.load_state_dict(state["policy"])
        except (RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{self.config.checkpoint} does not fit agent {name!r} (set hidden_sizes/activation as in its run "
                f"with --set): {first}"
            ) from exc
        return critic

    def estimates(self, contestant: _Contestant, count: int, first_seed: int) -> tuple[torch.Tensor, dict[str, float]]:
        return sample_estimates(
            self.envs, self.horizon, contestant.agent, count, first_seed, self.config.warmup, self.device
        )


def sample_estimates(
    envs: gym.vector.VectorEnv,
    horizon: int,
    agent: Agent,
    count: int,
    first_seed: int,
    warmup: int = 0,
    device: torch.device = CPU,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``count`` per-episode gradient estimates of ``agent``, (count, P) float64 on the CPU, and their mean costs.

    Batch i is collected from ``reset(first_seed + i * num_envs)`` with torch seeded alike: common
    random numbers, so every estimator sees the same environment and action seeds. ``warmup``
    batches come first and are discarded. ``device`` is where the agent lives (it acts and
    differentiates there, as the learner does in training).
    """
    n = envs.num_envs
    collector = Collector(envs, agent.policy.encoder, horizon, batch_episodes=n)
    actor = agent if device == CPU else DeviceActor(agent, device)
    rows, collect_s, gradient_s, steps = [], 0.0, 0.0, 0
    for i in range(-warmup, count):
        seed = first_seed + (i + warmup) * n
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        collector.reset(seed)
        batch = collector.collect(actor)
        t1 = time.perf_counter()
        gradient = estimate_gradient(agent, batch.to(device)).cpu() * (float(batch.valid.sum()) / n)
        t2 = time.perf_counter()
        if i >= 0:
            rows.append(gradient)
            collect_s, gradient_s, steps = collect_s + t1 - t0, gradient_s + t2 - t1, steps + int(batch.valid.sum())
    cost = {
        "collect_ms": 1e3 * collect_s / count,
        "gradient_ms": 1e3 * gradient_s / count,
        "wall_ms_per_estimate": 1e3 * (collect_s + gradient_s) / count,
        "mean_episode_length": steps / (count * n),
    }
    return torch.stack(rows), cost


def horizon_and_model(env_id: str, env_kwargs: dict[str, Any]) -> tuple[int, exact.TabularModel | None]:
    """The environment's time limit (required: complete episodes must end) and its model, if exposed."""
    probe = gym.make(env_id, **env_kwargs)
    try:
        horizon = probe.spec.max_episode_steps if probe.spec is not None else None
        if horizon is None:
            raise EnvironmentSetupError(
                f"{env_id} has no time limit, so an episode may never end; give it one with --horizon N"
            )
        return horizon, exact.tabular_model(probe, horizon) if exact.has_model(probe) else None
    finally:
        probe.close()


class TrainingDiagnostics:
    """``pglab train --grad-diagnostics-every N``: the training agent's own estimator, measured mid-run.

    :meth:`measure` draws ``samples`` estimates from the agent as it is configured for training, and
    compares them with the exact gradient where the environment has a model, else with the mean of
    ``4 * samples`` gamma^t-weighted plain-REINFORCE estimates (unbiased for the same J). It runs on its
    own environments and restores the agent's state and torch's RNG afterwards, so that training goes on
    exactly as without it.
    """

    REFERENCE_FACTOR = 4

    def __init__(self, env: str, env_kwargs: dict[str, Any], agent: Agent, gamma: float, samples: int, seed: int):
        if samples < 2:
            raise ConfigError(f"--grad-diagnostics-samples must be at least 2; got {samples}")
        self.env_id = resolve_env_id(env)
        self.horizon, self.model = horizon_and_model(self.env_id, env_kwargs)
        self.envs = make_vector_env(env, 8, "auto", env_kwargs)
        self.gamma, self.samples, self.seed = gamma, samples, seed
        preset = resolve_preset(
            get_agent(LARGE_BATCH_ESTIMATOR).preset,
            self.env_id,
            {**DEFAULT_OVERRIDES, **REFERENCE_OVERRIDES, "gamma": gamma, "num_envs": 8, "batch_episodes": 8},
        )
        self.reference_agent = get_agent(LARGE_BATCH_ESTIMATOR).build(
            agent.policy, self.envs.single_observation_space, self.envs.single_action_space, preset
        )  # shares the live policy; its optimiser never steps

    def measure(self, agent: Agent, update: int) -> dict[str, float]:
        """``grads/estimator_*`` metrics for the agent's current policy."""
        rng, state = torch.get_rng_state(), copy.deepcopy(agent.state_dict())
        seed = self.seed + 10**6 + update * self.samples * (1 + self.REFERENCE_FACTOR) * self.envs.num_envs
        try:
            samples, cost = sample_estimates(self.envs, self.horizon, agent, self.samples, seed)
            if self.model is not None:
                reference = exact.exact_gradient(agent.policy, self.model, self.gamma)[1]
            else:
                count = self.REFERENCE_FACTOR * self.samples
                reference_seed = seed + self.samples * self.envs.num_envs
                reference = sample_estimates(self.envs, self.horizon, self.reference_agent, count, reference_seed)[
                    0
                ].mean(0)
        finally:
            agent.load_state_dict(state)
            torch.set_rng_state(rng)
        stats = gradient_statistics(samples, reference, self.model is not None)
        metrics = {
            "grads/estimator_variance": stats["total_variance"],
            "grads/estimator_snr": stats["snr"],
            "grads/estimator_cosine": stats["cosine"]["mean"],
            "grads/estimator_cosine_of_mean": stats["cosine_of_mean"],
            "grads/estimator_ms": cost["wall_ms_per_estimate"],
        }
        if stats["bias_norm"] is not None:
            metrics["grads/estimator_bias_norm"] = stats["bias_norm"]
        return metrics

    def close(self) -> None:
        self.envs.close()


def run_grads(config: GradsConfig) -> dict[str, Any]:
    """Measure every agent's gradient estimator; writes grads.json, grads.md and grads.png to the out dir.

    Returns the report (the content of grads.json).
    """
    config.validate()
    device = resolve_device(config.device)  # before any environment is made: `cuda` without a GPU is one line
    torch.set_num_threads(config.torch_threads)
    lab = _Lab(config, device)
    try:
        contestants = [lab.build(name) for name in config.agents]
        _check_same_start(contestants)
        gamma = contestants[0].gamma
        reference = _reference(lab, contestants[0].agent, gamma)
        exact_ref = reference["kind"] == "exact"
        ref_gradient = torch.tensor(reference["gradient"], dtype=torch.float64)
        rows, all_samples = [], []
        for contestant in contestants:
            samples, cost = lab.estimates(contestant, config.samples, config.seed + 1)
            all_samples.append(samples)
            rows.append(
                {
                    "agent": contestant.name,
                    "critic": contestant.critic,
                    "objective": contestant.objective,
                    "targets_reference": contestant.objective == OBJECTIVE_FINITE_HORIZON,
                    "hyperparameters": contestant.hyperparameters,
                    **gradient_statistics(samples, ref_gradient, exact_ref),
                    **cost,
                }
            )
    finally:
        lab.envs.close()
    base = next((r["total_variance"] for r in rows if r["agent"] == "reinforce"), None)
    for row in rows:
        row["variance_vs_reinforce"] = row["total_variance"] / base if base else None
    report = {
        "schema": SCHEMA,
        "env": lab.env_id,
        "env_kwargs": config.env_kwargs,
        "seed": config.seed,
        "device": str(lab.device),  # where the estimates were drawn (their ms depend on it); references: CPU
        "checkpoint": config.checkpoint,
        "samples": config.samples,
        "batch_episodes": config.batch_episodes,
        "warmup": config.warmup,
        "gamma": gamma,
        "horizon": lab.horizon,
        "coincidences": coincidences(contestants, all_samples),
        "units": "per episode: minus the gradient of the agent's policy_loss times valid steps / episodes",
        "parameters": int(ref_gradient.numel()),
        "reference": reference,
        "estimators": rows,
        "versions": versions(),
    }
    out = Path(config.out) if config.out else _default_out(lab.env_id)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "grads.json", report)
    (out / "grads.md").write_text(markdown_table(report))
    report["out"] = str(out)
    report["figure"] = str(plot(report, out / "grads.png"))
    return report


def _check_same_start(contestants: list[_Contestant]) -> None:
    first = torch.nn.utils.parameters_to_vector(contestants[0].agent.policy.parameters())
    for other in contestants[1:]:
        vector = torch.nn.utils.parameters_to_vector(other.agent.policy.parameters())
        if vector.shape != first.shape or not torch.equal(vector, first):
            raise ConfigError(
                f"{other.name} and {contestants[0].name} start from different policies (their presets differ in "
                "hidden_sizes or activation); make them equal with --set"
            )
        if other.gamma != contestants[0].gamma:
            raise ConfigError(
                f"{other.name} uses gamma={other.gamma} and {contestants[0].name} gamma={contestants[0].gamma}: "
                "they estimate different gradients; make them equal with --set gamma=..."
            )


def _reference(lab: _Lab, agent: Agent, gamma: float) -> dict[str, Any]:
    """The exact gradient where the env has a model (unless --reference large-batch), else a large batch."""
    mode = lab.config.reference
    if mode == "exact" and lab.model is None:
        raise ConfigError(
            f"--reference exact needs an environment with a model (env.unwrapped.P); {lab.env_id} has none"
        )
    if lab.model is not None and mode != "large-batch":  # on a CPU copy of the policy, in float64, whatever --device
        value, gradient = exact.exact_gradient(copy.deepcopy(agent.policy).cpu(), lab.model, gamma)
        return _reference_entry(
            "exact", gradient, objective=value, noise_norm=0.0, objective_name=OBJECTIVE_FINITE_HORIZON
        )
    contestant = lab.build(LARGE_BATCH_ESTIMATOR, REFERENCE_OVERRIDES)
    samples, _ = lab.estimates(contestant, lab.config.reference_samples, lab.config.seed + 10**6)
    return _reference_entry(
        "large-batch",
        samples.mean(0),
        estimator=LARGE_BATCH_ESTIMATOR,
        samples=lab.config.reference_samples,
        noise_norm=math.sqrt(float(samples.var(0).sum()) / samples.shape[0]),
        objective_name=contestant.objective,
    )


def _reference_entry(
    kind: str,
    gradient: torch.Tensor,
    noise_norm: float,
    objective: float | None = None,
    estimator: str | None = None,
    samples: int | None = None,
    objective_name: str = "",
) -> dict[str, Any]:
    """The ``reference`` object of grads.json (its schema is in README)."""
    return {
        "kind": kind,
        "objective_name": objective_name,
        "estimator": estimator,
        "objective": objective,
        "gradient": gradient.tolist(),
        "norm": float(gradient.norm()),
        "samples": samples,
        "noise_norm": noise_norm,
    }


def coincidences(contestants: list[_Contestant], samples: list[torch.Tensor]) -> list[dict[str, Any]]:
    """Pairs of estimators whose estimates were identical on every batch, with the reason where known.

    Batches share their random numbers (common random numbers), so two estimators that compute the same
    function of a batch give the same numbers; a reader should not take that for two confirmations.
    """
    found = []
    for i, first in enumerate(contestants):
        for j in range(i + 1, len(contestants)):
            a, b = samples[i], samples[j]
            scale = float(a.abs().max()) or 1.0
            if torch.allclose(a, b, rtol=1e-5, atol=1e-6 * scale):
                found.append({"agents": [first.name, contestants[j].name], "why": _why_equal(first, contestants[j])})
    return found


def _why_equal(first: _Contestant, second: _Contestant) -> str:
    names = {first.name, second.name}
    if names == {"gumbel-softmax", "gumbel-st"} and first.critic == second.critic == "oracle":
        return (
            "the oracle critic Q(s, y) = sum_a y_a Q(s, a) is linear in the action y, so its gradient does not "
            "depend on where y lies: the soft sample and straight-through (one-hot forward, the soft sample's "
            "gradient backward) give the same gradient for the same noise"
        )
    if names == {"gumbel-st", "gumbel-rao"}:
        rao = first if first.name == "gumbel-rao" else second
        if rao.hyperparameters.get("rao_samples") == 1:
            return "gumbel-rao with one conditional draw (rao_samples=1) is straight-through itself"
    return "identical on every batch of common random numbers; pglab knows no reason, so check the estimators"


def _default_out(env_id: str) -> Path:
    return Path("grads") / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', env_id)}__{time.strftime('%Y%m%d-%H%M%S')}"


COLUMN_NOTES = (
    "Columns: *total variance* is the trace of the covariance of one estimate (the sum of its parameters' "
    "variances); *vs reinforce* divides it by plain REINFORCE's; *SNR* is |mean estimate| / √(total variance); "
    "*cosine* compares each estimate (mean ± std over estimates), and *cosine of mean* their average, with the "
    "reference; *bias norm* is |mean estimate − reference| (exact references only); *noise norm* is "
    "√(total variance / estimates), the size the bias norm would have from sampling noise alone; "
    "*ms / estimate* is wall time per estimate on this machine.",
)
NOISE_FLOORS = 2.0  # a bias norm beyond this many noise norms is read as bias, not noise


def bias_in_words(report: dict[str, Any]) -> list[str]:
    """One line per estimator: its bias norm read against its noise norm, in words."""
    if report["reference"]["kind"] != "exact":
        return ["Bias is not measured: the reference is itself an estimate (no exact gradient for this env)."]
    lines = []
    for row in report["estimators"]:
        floors = row["bias_norm"] / row["bias_noise_norm"] if row["bias_noise_norm"] > 0 else math.inf
        verdict = (
            f"no bias detectable with {report['samples']} estimates"
            if floors <= NOISE_FLOORS
            else "biased: more than sampling noise explains"
        )
        lines.append(f"- {row['agent']}: bias norm {row['bias_norm']:.3g} = {floors:.1f} noise norms; {verdict}.")
    return lines


def markdown_table(report: dict[str, Any]) -> str:
    """The report as a markdown table, one row per estimator."""
    ref = report["reference"]
    what = "the exact gradient" if ref["kind"] == "exact" else f"{ref['samples']} batches of {ref['estimator']}"
    lines = [
        f"Gradient estimators on {report['env']}: {report['samples']} estimates of {report['batch_episodes']} "
        f"episodes each, gamma {report['gamma']}, horizon {report['horizon']}; reference: {what} "
        f"(norm {ref['norm']:.4g}).",
        "",
        "| estimator | critic | total variance | vs reinforce | SNR | cosine (mean ± std) | cosine of mean "
        "| bias norm | noise norm | ms / estimate |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["estimators"]:
        ratio = "" if row["variance_vs_reinforce"] is None else f"{row['variance_vs_reinforce']:.3f}"
        bias = "" if row["bias_norm"] is None else f"{row['bias_norm']:.4g}"
        lines.append(
            f"| {row['agent']} | {row['critic']} | {row['total_variance']:.4g} | {ratio} | {row['snr']:.3f} | "
            f"{row['cosine']['mean']:.3f} ± {row['cosine']['std']:.3f} | {row['cosine_of_mean']:.3f} | {bias} | "
            f"{row['bias_noise_norm']:.4g} | {row['wall_ms_per_estimate']:.1f} |"
        )
    lines += [
        "",
        *COLUMN_NOTES,
        "",
        *bias_in_words(report),
        "",
        f"Objective of the reference: {ref['objective_name']}.",
    ]
    for row in report["estimators"]:
        if row["objective"] != ref["objective_name"]:
            lines.append(f"- {row['agent']} targets another objective: {row['objective']}.")
    for pair in report["coincidences"]:
        lines.append(f"- {pair['agents'][0]} and {pair['agents'][1]} gave identical estimates: {pair['why']}.")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path:
    """Total variance (log scale) and cosine to the reference per estimator."""
    from pglab.lab.figures import pyplot, readable_log_axis

    plt = pyplot()
    rows = report["estimators"]
    names = [r["agent"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(4 + 1.2 * len(rows), 4), constrained_layout=True)
    left.plot(names, [r["total_variance"] for r in rows], "o", markersize=8)  # markers: bars mislead on a log axis
    left.set_yscale("log")
    readable_log_axis(left.yaxis)
    left.set_ylabel("variance of one estimate\n(sum over parameters, log scale)")
    cos = [r["cosine"] for r in rows]
    right.errorbar(
        names,
        [c["mean"] for c in cos],
        yerr=[c["std"] for c in cos],
        fmt="o",
        capsize=4,
        label="single estimates (mean ± std)",
    )
    right.plot(names, [r["cosine_of_mean"] for r in rows], "s", label="mean of the estimates")
    right.set_ylim(-1.05, 1.05)
    right.set_ylabel(f"cosine to the {report['reference']['kind']} reference")
    right.legend(loc="lower left", fontsize="small")
    for axis in (left, right):
        for label in axis.get_xticklabels():  # long agent names: slanted, anchored at their tick, never clipped
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    fig.suptitle(f"{report['env']}: {report['samples']} estimates x {report['batch_episodes']} episodes")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
