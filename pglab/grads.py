"""Estimator diagnostics: bias, variance, signal-to-noise and cost of each agent's policy gradient.

With the policy frozen, every estimator draws ``samples`` independent batches and estimates grad J
once per batch; the estimates are compared with a reference: the exact gradient where the
environment exposes its model (pglab.exact), otherwise the mean of many plain-REINFORCE estimates.

**The hook.** An agent takes part by providing ``policy_loss(batch) -> scalar tensor``: the very
loss its ``update`` minimises (without exploration bonuses), whose gradient with respect to
``agent.policy.parameters()`` is minus its estimate of grad J, averaged over the batch's valid steps.
It must step no optimiser and fit no critic (running statistics such as an EMA baseline may advance,
as they would in training). Agents with a critic may also provide ``use_oracle_critic(critic)``,
which ``--oracle-critic`` calls with a pglab.exact.OracleCritic (``critic(features)`` is V(s) with a
trailing axis of 1, ``critic.q_values(features)`` is Q(s, .)). :func:`estimate_gradient` is the
whole of what pglab does with the hook.

**The batches.** A batch is one complete episode in each of ``batch_episodes`` parallel
environments, from a fresh reset (steps after an environment's first episode are masked out). A
batch of fixed-length windows would cut episodes where the window ends, and the expectation of
the estimate would then depend on where the cuts fall; complete episodes have an exact target.
Estimates are reported *per episode* (the agent's per-step mean times valid steps / episodes), the
units of grad J. Advantage normalisation is off by default here (``--set normalize_advantages=...``
turns it back on): dividing by a batch statistic rescales every estimate by a random amount.

**What "exact" means.** J = E[sum_{t<H} gamma^t r_t]. Like most implementations, pglab's
score-function agents weight step t by 1 rather than gamma^t; with gamma < 1 that is a real bias
(Nota & Thomas 2020) and the bias norm shows it; with gamma = 1 they are unbiased.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pglab import exact
from pglab.agent import Agent, resolve_preset
from pglab.checkpoint import load_checkpoint
from pglab.environment import make_vector_env, resolve_env_id
from pglab.errors import CheckpointError, ConfigError, EnvironmentSetupError
from pglab.plugins import get_agent
from pglab.policy import ObservationEncoder, PolicyNetwork
from pglab.rollout import RolloutBuffer
from pglab.runlog import write_json
from pglab.train import seed_everything, versions

SCHEMA = "pglab.grads/1"
REFERENCE_MODES = ("auto", "exact", "large-batch")
LARGE_BATCH_ESTIMATOR = "reinforce"  # plain REINFORCE: unbiased for what every score-function agent targets
DEFAULT_OVERRIDES = {"normalize_advantages": "off"}


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
    oracle_critic: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
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


def estimate_gradient(agent: Agent, batch: RolloutBuffer) -> torch.Tensor:
    """The agent's estimate of grad J from one batch: minus the gradient of ``agent.policy_loss(batch)``.

    Flat, float64, in the order of ``agent.policy.parameters()``; parameters the loss does not reach
    get zeros. This is the hook every agent implements (see the module docstring).
    """
    policy_loss = getattr(agent, "policy_loss", None)
    if policy_loss is None:
        raise ConfigError(
            f"agent {type(agent).__name__} has no policy_loss(batch) method, so pglab grads cannot read its "
            "gradient estimate; see pglab.grads for the hook"
        )
    params = list(agent.policy.parameters())
    grads = torch.autograd.grad(policy_loss(batch), params, allow_unused=True)
    flat = [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
    return -torch.cat(flat).double()


def collect_episodes(
    envs: gym.vector.VectorEnv, encoder: ObservationEncoder, agent: Agent, seed: int, max_steps: int
) -> RolloutBuffer:
    """One complete episode in every environment of ``envs``, from ``reset(seed)``.

    ``valid`` marks the steps of each environment's first episode; collection stops as soon as all
    have ended (at the latest after ``max_steps``, the time limit, when every episode is truncated).
    """
    buf = RolloutBuffer.allocate(max_steps, envs.num_envs, encoder.width)
    observations, _ = envs.reset(seed=seed)
    features = encoder(observations)
    running = np.ones(envs.num_envs, dtype=bool)
    steps = 0
    while running.any() and steps < max_steps:
        buf.features[steps] = features
        buf.valid[steps] = torch.from_numpy(running.copy())
        with torch.inference_mode():
            actions = agent.act(features)
        buf.actions[steps] = actions
        observations, rewards, terminated, truncated, _ = envs.step(actions.numpy())
        buf.rewards[steps] = torch.from_numpy(np.asarray(rewards, dtype=np.float32))
        buf.terminated[steps] = torch.from_numpy(np.asarray(terminated, dtype=bool))
        buf.truncated[steps] = torch.from_numpy(np.asarray(truncated, dtype=bool))
        running &= ~(np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        features = encoder(observations)
        steps += 1
    if running.any():
        raise EnvironmentSetupError(f"an episode ran past {max_steps} steps although the time limit is {max_steps}")
    kept = {f.name: getattr(buf, f.name)[:steps] for f in dataclasses.fields(buf) if f.name != "next_features"}
    return RolloutBuffer(**kept, next_features=features)


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
    critic: str  # none, learned, checkpoint or oracle


class _Lab:
    """The frozen setup shared by every estimator: the env, its model, the initial policy weights."""

    def __init__(self, config: GradsConfig):
        self.config = config
        self.env_id = resolve_env_id(config.env)
        self.horizon, self.model = horizon_and_model(self.env_id, config.env_kwargs)
        self.envs = make_vector_env(config.env, config.batch_episodes, "auto", config.env_kwargs)
        self.checkpoint = load_checkpoint(config.checkpoint) if config.checkpoint else None
        if self.checkpoint is not None and self.checkpoint.get("env", "").rpartition(":")[2] != self.env_id:
            raise CheckpointError(
                f"{config.checkpoint} was trained on {self.checkpoint.get('env')!r}, not {self.env_id!r}"
            )

    def build(self, name: str) -> _Contestant:
        """The agent ``name`` on the shared initial (or checkpoint) policy, with its critic in place."""
        spec = get_agent(name)
        overrides = {**DEFAULT_OVERRIDES, **self.config.overrides, "num_envs": self.config.batch_episodes}
        preset = resolve_preset(spec.preset, self.env_id, overrides)
        seed_everything(self.config.seed)  # as in training: the policy is built first from the seed
        policy = PolicyNetwork(
            self.envs.single_observation_space,
            int(self.envs.single_action_space.n),
            preset.hidden_sizes,
            preset.activation,
        )
        agent = spec.build(policy, self.envs.single_observation_space, self.envs.single_action_space, preset)
        critic = "learned" if getattr(agent, "critic", None) is not None else "none"
        if self.checkpoint is not None:
            critic = self._load(name, agent, critic)
        if self.config.oracle_critic and critic != "none":
            if self.model is None:
                raise ConfigError(f"--oracle-critic needs an environment with a model; {self.env_id} has none")
            agent.use_oracle_critic(exact.oracle_critic(policy, self.model, preset.gamma))
            critic = "oracle"
        return _Contestant(name, agent, preset.gamma, preset.to_dict(), critic)

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
        return sample_estimates(self.envs, self.horizon, contestant.agent, count, first_seed, self.config.warmup)


def sample_estimates(
    envs: gym.vector.VectorEnv, horizon: int, agent: Agent, count: int, first_seed: int, warmup: int = 0
) -> tuple[torch.Tensor, dict[str, float]]:
    """``count`` per-episode gradient estimates of ``agent``, (count, P), and their mean costs.

    Batch i is collected from ``reset(first_seed + i * num_envs)`` with torch seeded alike: common
    random numbers, so every estimator sees the same environment and action seeds. ``warmup``
    batches come first and are discarded.
    """
    n = envs.num_envs
    rows, collect_s, gradient_s, steps = [], 0.0, 0.0, 0
    for i in range(-warmup, count):
        seed = first_seed + (i + warmup) * n
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        batch = collect_episodes(envs, agent.policy.encoder, agent, seed, horizon)
        t1 = time.perf_counter()
        gradient = estimate_gradient(agent, batch) * (float(batch.valid.sum()) / n)
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
                f"{env_id} has no time limit, so an episode may never end; set one with --env-kwarg max_episode_steps=N"
            )
        return horizon, exact.tabular_model(probe) if exact.has_model(probe) else None
    finally:
        probe.close()


class TrainingDiagnostics:
    """``pglab train --grad-diagnostics-every N``: the training agent's own estimator, measured mid-run.

    :meth:`measure` draws ``samples`` estimates from the agent as it is configured for training, and
    compares them with the exact gradient where the environment has a model, else with the mean of
    ``4 * samples`` plain-REINFORCE estimates. It runs on its own environments and restores the
    agent's state and torch's RNG afterwards, so that training goes on exactly as without it.
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
            get_agent(LARGE_BATCH_ESTIMATOR).preset, self.env_id, {**DEFAULT_OVERRIDES, "gamma": gamma}
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
    torch.set_num_threads(config.torch_threads)
    lab = _Lab(config)
    try:
        contestants = [lab.build(name) for name in config.agents]
        _check_same_start(contestants)
        gamma = contestants[0].gamma
        reference = _reference(lab, contestants[0].agent, gamma)
        exact_ref = reference["kind"] == "exact"
        ref_gradient = torch.tensor(reference["gradient"], dtype=torch.float64)
        rows = []
        for contestant in contestants:
            samples, cost = lab.estimates(contestant, config.samples, config.seed + 1)
            rows.append(
                {
                    "agent": contestant.name,
                    "critic": contestant.critic,
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
        "checkpoint": config.checkpoint,
        "samples": config.samples,
        "batch_episodes": config.batch_episodes,
        "warmup": config.warmup,
        "gamma": gamma,
        "horizon": lab.horizon,
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
    if lab.model is not None and mode != "large-batch":
        value, gradient = exact.exact_gradient(agent.policy, lab.model, gamma)
        return _reference_entry("exact", gradient, objective=value, noise_norm=0.0)
    contestant = lab.build(LARGE_BATCH_ESTIMATOR)
    samples, _ = lab.estimates(contestant, lab.config.reference_samples, lab.config.seed + 10**6)
    return _reference_entry(
        "large-batch",
        samples.mean(0),
        estimator=LARGE_BATCH_ESTIMATOR,
        samples=lab.config.reference_samples,
        noise_norm=math.sqrt(float(samples.var(0).sum()) / samples.shape[0]),
    )


def _reference_entry(
    kind: str,
    gradient: torch.Tensor,
    noise_norm: float,
    objective: float | None = None,
    estimator: str | None = None,
    samples: int | None = None,
) -> dict[str, Any]:
    """The ``reference`` object of grads.json (its schema is in README)."""
    return {
        "kind": kind,
        "estimator": estimator,
        "objective": objective,
        "gradient": gradient.tolist(),
        "norm": float(gradient.norm()),
        "samples": samples,
        "noise_norm": noise_norm,
    }


def _default_out(env_id: str) -> Path:
    return Path("grads") / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', env_id)}__{time.strftime('%Y%m%d-%H%M%S')}"


def markdown_table(report: dict[str, Any]) -> str:
    """The report as a markdown table, one row per estimator."""
    ref = report["reference"]
    what = "the exact gradient" if ref["kind"] == "exact" else f"{ref['samples']} batches of {ref['estimator']}"
    lines = [
        f"Gradient estimators on {report['env']}: {report['samples']} estimates of {report['batch_episodes']} "
        f"episodes each, gamma {report['gamma']}; reference: {what} (norm {ref['norm']:.4g}).",
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
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path:
    """Total variance (log scale) and cosine to the reference per estimator."""
    from pglab.figures import pyplot

    plt = pyplot()
    rows = report["estimators"]
    names = [r["agent"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(4 + 1.2 * len(rows), 4), constrained_layout=True)
    left.plot(names, [r["total_variance"] for r in rows], "o", markersize=8)  # markers: bars mislead on a log axis
    left.set_yscale("log")
    left.set_ylabel("total variance of one estimate (log)")
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
        axis.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{report['env']}: {report['samples']} estimates x {report['batch_episodes']} episodes")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
