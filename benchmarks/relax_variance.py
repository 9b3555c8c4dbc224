"""Gradient variance at a trained CartPole policy, every critic fitted at that very policy.

``pglab grads --checkpoint`` gives each agent the checkpoint's policy, but a critic only to the agent
that trained it: comparing RELAX's variance with reinforce-value's there would pit a trained control
variate against an untrained value network (or the reverse). Here a policy is trained with
``--train-agent`` (reinforce-value or relax), which is measured with its critic as trained; every other
critic starts from the trained agent's V(s) (reinforce-value's critic, or the state term of RELAX's
control variate): reinforce-value's as it is, the optimal baseline's network, and the state term v(s) of
RELAX's control variate and of all-action's Q(s, a) (c(s, z) = v(s) + mlp(s, z): c = V + c-hat, the
paper's form for its continuous tasks). Then every agent with a critic, on that policy, takes
``--fit-batches`` updates of complete-episode batches with its policy restored after each (only its
critic learns), and finally draws ``--samples`` gradient estimates, compared with the mean of
``4 x samples`` plain-REINFORCE estimates (pglab.diagnostics.grads: the same statistics as ``pglab grads``;
common random numbers). ``NAME/KEY=VALUE`` in ``--agents`` measures a variant (e.g.
``relax/state_term=variance``); ``--set KEY=VALUE`` sets a field for every agent.

    python benchmarks/relax_variance.py --agents reinforce,reinforce-value,relax --set critic_lr=0.003 \
        --set critic_epochs=4
    python benchmarks/relax_variance.py --train-agent relax --fit-batches 0 --agents reinforce,reinforce-value,relax
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from math import nan
from pathlib import Path

import gymnasium as gym
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, save

import pglab
from pglab.core.agent import Agent, resolve_preset
from pglab.core.environment import make_vector_env
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from pglab.core.rollout import Collector
from pglab.diagnostics.grads import DEFAULT_OVERRIDES, gradient_statistics, horizon_and_model, sample_estimates
from pglab.io.checkpoint import CHECKPOINT, load_checkpoint

AGENTS = ("reinforce", "reinforce-value", "reinforce-optimal", "relax", "all-action")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--agents", default=",".join(AGENTS), help="NAME or NAME/KEY=VALUE/... (a variant)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=30_000)
    parser.add_argument("--train-agent", default="reinforce-value", choices=("reinforce-value", "relax"),
                        help="the agent that trains the policy; it is measured with its critic as trained")  # fmt: skip
    parser.add_argument("--fit-batches", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--batch-episodes", type=int, default=8)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a preset field for each agent that has it (e.g. critic_epochs=4)")  # fmt: skip
    parser.add_argument("--zero-action-term", action="store_true",
                        help="also measure each RELAX agent with its action term set to zero")  # fmt: skip
    parser.add_argument("--name", default="relax_variance")
    args = parser.parse_args()
    shared = dict(item.split("=", 1) for item in args.sets)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        summary = pglab.train(agent=args.train_agent, env=args.env, seed=args.seed, total_steps=args.train_steps,
                              run_dir=f"{tmp}/run", wandb_mode="disabled", progress=False)  # fmt: skip
        trained = load_checkpoint(Path(tmp) / "run" / CHECKPOINT)["agent"]
    horizon, _ = horizon_and_model(args.env, {})
    envs = make_vector_env(args.env, args.batch_episodes)
    rows = {}
    for label in args.agents.split(","):
        name, _, own = label.partition("/")  # relax/state_term=variance: a variant with its own preset fields
        spec = get_agent(name)
        variant = dict(item.split("=", 1) for item in own.split("/") if item)
        fields = {f.name for f in dataclasses.fields(spec.preset)}
        own_shared = {key: value for key, value in shared.items() if key in fields}  # critic fields: critics only
        overrides = {**DEFAULT_OVERRIDES, **own_shared, **variant, "num_envs": args.batch_episodes}
        preset = resolve_preset(spec.preset, args.env, overrides)
        torch.manual_seed(args.seed)
        policy = PolicyNetwork(envs.single_observation_space, int(envs.single_action_space.n), preset.hidden_sizes)
        agent = spec.build(policy, envs.single_observation_space, envs.single_action_space, preset)
        if label == args.train_agent:
            agent.load_state_dict(trained)
        elif getattr(agent, "critic", None) is not None:  # every other critic's state term: the same trained V
            state_term(agent).load_state_dict(value_network(trained))
        policy.load_state_dict(trained["policy"])
        if getattr(agent, "critic", None) is not None:
            collector = Collector(envs, policy.encoder, horizon, batch_episodes=args.batch_episodes)
            for i in range(args.fit_batches):
                collector.reset(10**7 + i * args.batch_episodes)
                agent.update(collector.collect(agent))
                policy.load_state_dict(trained["policy"])  # only the critic learns
        samples, cost = sample_estimates(envs, horizon, agent, args.samples, first_seed=10**6)
        rows[label] = (samples, cost)
        print(f"{label}: total variance {float(samples.var(0).sum()):.4g}", flush=True)
        if args.zero_action_term and hasattr(agent, "control"):  # RELAX less its action term: v(s) as a baseline
            head = agent.control.critic.action_value[-1]
            with torch.no_grad():
                head.weight.zero_()
                head.bias.zero_()
            rows[f"{label} (action term zeroed)"] = sample_estimates(envs, horizon, agent, args.samples, 10**6)
    reference_agent = reference_agent_for(envs, trained, args)
    reference = sample_estimates(envs, horizon, reference_agent, 4 * args.samples, first_seed=2 * 10**6)[0].mean(0)
    envs.close()
    results = []
    for name, (samples, cost) in rows.items():
        stats = gradient_statistics(samples, reference, exact_reference=False)
        interval = paired_ratio_interval(samples, rows["reinforce-value"][0]) if "reinforce-value" in rows else None
        results.append({"agent": name, **{k: v for k, v in stats.items() if k != "mean_gradient"}, **cost,
                        "vs_value_interval": interval})  # fmt: skip
    base = next(r["total_variance"] for r in results if r["agent"] == "reinforce")
    value = next((r["total_variance"] for r in results if r["agent"] == "reinforce-value"), nan)
    lines = [
        f"{args.env}: policy trained {args.train_steps} steps with {args.train_agent} (last-100 mean "
        f"{summary['return_mean_last100']:.1f}); critics fitted {args.fit_batches} batches at it"
        f"{' (shared settings: ' + ', '.join(args.sets) + ')' if args.sets else ''}; "
        f"{args.samples} estimates of {args.batch_episodes} episodes; reference: {4 * args.samples} reinforce "
        f"batches. Machine: {machine()}.",
        "",
        "| estimator | total variance | vs reinforce | vs reinforce-value (95% paired bootstrap) | SNR | cosine (mean) "
        "| cosine of mean | ms / estimate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        low, high = r["vs_value_interval"] or (nan, nan)
        lines.append(
            f"| {r['agent']} | {r['total_variance']:.4g} | {r['total_variance'] / base:.3f} | "
            f"{r['total_variance'] / value:.3f} ({low:.3f}-{high:.3f}) | "
            f"{r['snr']:.3f} | "
            f"{r['cosine']['mean']:.3f} | {r['cosine_of_mean']:.3f} | {r['wall_ms_per_estimate']:.1f} |"
        )
    save(args.name, {"machine": machine(), "args": vars(args), "rows": results}, "\n".join(lines) + "\n")


def paired_ratio_interval(samples: torch.Tensor, value: torch.Tensor, draws: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of total variance(samples) / total variance(value), resampling the
    batches jointly: estimate i of every estimator comes from the same episodes (common random numbers)."""
    generator = torch.Generator().manual_seed(0)
    ratios = []
    for _ in range(draws):
        index = torch.randint(len(samples), (len(samples),), generator=generator)
        ratios.append(float(samples[index].var(0).sum() / value[index].var(0).sum()))
    quantiles = torch.tensor([0.025, 0.975], dtype=torch.float64)
    low, high = torch.tensor(ratios, dtype=torch.float64).quantile(quantiles).tolist()
    return low, high


def value_network(trained: dict) -> dict:
    """The trained agent's V(s): reinforce-value's critic, or the state term of RELAX's control variate."""
    if "control" not in trained:
        return trained["critic"]
    prefix = "critic.state_value."
    return {key[len(prefix) :]: value for key, value in trained["control"].items() if key.startswith(prefix)}


def state_term(agent: Agent) -> torch.nn.Module:
    """The part of an agent's critic that is a function of the state alone (the value network's shape)."""
    critic = agent.critic
    return getattr(critic, "state_value", critic)


def reference_agent_for(envs: gym.vector.VectorEnv, trained: dict, args: argparse.Namespace) -> Agent:
    """Plain REINFORCE on the trained policy: the estimator of the large-batch reference."""
    spec = get_agent("reinforce")
    preset = resolve_preset(spec.preset, args.env, {**DEFAULT_OVERRIDES, "num_envs": args.batch_episodes})
    policy = PolicyNetwork(envs.single_observation_space, int(envs.single_action_space.n), preset.hidden_sizes)
    policy.load_state_dict(trained["policy"])
    return spec.build(policy, envs.single_observation_space, envs.single_action_space, preset)


if __name__ == "__main__":
    main()
