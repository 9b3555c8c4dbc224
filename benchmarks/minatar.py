"""MinAtar: every agent on Breakout-v1 and SpaceInvaders-v1, reinforce-value for longer, and SB3 A2C beside it.

The full protocol of issue 14 (hours of CPU per phase; run them on a machine that has them)::

    pip install -e '.[minatar,bench]'
    python benchmarks/minatar.py grid   # every agent x Breakout-v1, SpaceInvaders-v1 x seeds 0-2 x 1M steps
    python benchmarks/minatar.py long   # reinforce-value x both games x seeds 0-2 x 3M steps
    python benchmarks/minatar.py sb3    # reinforce-value beside SB3 A2C (MinAtar-sized CNN) on Breakout-v1

``grid`` and ``long`` are ``pglab compare`` grids under the matched protocol (resumable: run the same
command again after an interruption), each followed by ``pglab report`` (curves with bootstrap CIs,
IQM, performance profiles, steps/s per run) into benchmarks/results/minatar_<phase>/. Every network
is the MinAtar paper's (Young & Tian 2019), the matched protocol's on MinAtar: the conv torso, then
the output layer (``hidden_sizes=()``, ``critic_hidden_sizes=()`` for the agents with a critic); the
other MinAtar settings are pglab.core.preset.MINATAR_SETTINGS (16 x 16-step batches, unnormalised
advantages, entropy 0.05), and reinforce-value's own MinAtar lambda is 0.95.

``sb3`` runs, seed by seed and each in a fresh process, pglab reinforce-value and Stable-Baselines3
A2C (its ActorCriticPolicy with the same MinAtar torso as features extractor and no further layers,
as many environments as pglab (16), SB3's A2C defaults otherwise: n_steps 5, RMSprop 7e-4, ent_coef 0.01),
each on one torch thread, and tabulates steps/s (the issue's target: pglab >= 3x SB3) and the
last-100 return at the end of each library's budget and, for pglab, at SB3's budget.

Every phase scales down with --steps, --seeds, --agents, --envs (and --sb3-steps), and says in its
results file exactly what ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, median, run_worker, save

from pglab.core.preset import MINATAR_SETTINGS, parse_assignments
from pglab.lab.experiments import parse_seeds

# This file's name would shadow the MinAtar package (`import minatar` would find it): its folder leaves the path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

ENVS = ("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1")
NUM_ENVS = MINATAR_SETTINGS["num_envs"]  # the matched protocol's, and SB3's here


def grid(args: argparse.Namespace, phase: str) -> None:
    """A pglab compare grid and its report (``grid``: every agent; ``long``: reinforce-value alone)."""
    import pglab
    from pglab.core.plugins import load_agents

    agents = args.agents or (sorted(load_agents()) if phase == "grid" else ["reinforce-value"])
    steps = args.steps or (1_000_000 if phase == "grid" else 3_000_000)
    out = RESULTS / f"minatar_{phase}"
    start = time.perf_counter()
    result = pglab.compare(
        agents, args.envs or ENVS, args.seeds, out=out, total_steps=steps, overrides=args.set,
        workers=args.workers, wandb_mode="disabled", progress=True,
    )  # fmt: skip
    pglab.report(out)
    interrupted = sum(o.status == "interrupted" for o in result.outcomes)
    note = (
        f"Machine: {machine()}\n\n{phase}: agents {', '.join(agents)}; envs {', '.join(args.envs or ENVS)}; "
        f"seeds {args.seeds}; {steps:,} steps per run; matched protocol with the MinAtar paper's network"
        f"{''.join(f', {k}={v}' for k, v in args.set.items())}; "
        f"{len(result.outcomes)} runs, {len(result.failed)} failed, {interrupted} interrupted"
        f"{' (rerun the command to finish them)' if interrupted else ''}; "
        f"{time.perf_counter() - start:,.0f} s wall.\n"
        f"Curves, IQM with CIs and steps/s: {out.relative_to(RESULTS.parent)}/report/.\n\n"
        f"Each run's last-100 mean return where it stopped:\n\n```\n{result.table()}\n```\n"
    )
    (out / "README.md").write_text(note)
    print(note)


def pglab_worker(seed: int, steps: int, compare_at: int) -> dict:
    import pglab

    options = {"agent": "reinforce-value", "env": ENVS[0], "protocol": "matched"}
    with tempfile.TemporaryDirectory() as tmp:  # MinAtar's import (seconds) and torch's first steps, untimed as SB3's
        pglab.train(
            seed=seed, total_steps=1024, run_dir=f"{tmp}/warm", wandb_mode="disabled", progress=False, **options
        )
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        s = pglab.train(
            seed=seed, total_steps=steps, run_dir=f"{tmp}/run", wandb_mode="disabled", progress=False, **options
        )
        rows = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
    cpu = time.process_time() - cpu
    curve = [(r["global_step"], r["charts/episodic_return"]) for r in rows if "charts/episodic_return" in r]
    # the mean of the returns logged in the last 100 episodes' worth of rows up to SB3's budget (approximate)
    upto = [ret for step, ret in curve if step <= compare_at][-20:]
    return {
        "library": "pglab", "seed": seed, "steps": s["global_step"], "wall_s": s["wall_s"], "sps": s["sps"],
        "cpu_s": cpu, "steps_per_cpu_s": s["global_step"] / cpu,
        "return_mean_last100": s["return_mean_last100"], "episodes": s["episodes"],
        "return_near_sb3_budget": sum(upto) / len(upto) if upto else None, "curve": curve[:: max(1, len(curve) // 200)],
    }  # fmt: skip


def sb3_worker(seed: int, steps: int) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    from pglab.core.environment import require_extra
    from pglab.core.policy import ConvTorso

    class MinAtarTorso(BaseFeaturesExtractor):
        """pglab's MinAtar torso (conv 16 3x3, dense 128) as SB3's features extractor."""

        def __init__(self, observation_space) -> None:
            torso = ConvTorso(observation_space)
            super().__init__(observation_space, torso.width)
            self.torso = torso

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.torso(observations)

    torch.set_num_threads(1)
    require_extra(ENVS[0])  # registers the MinAtar ids (Gymnasium 1.x ignores MinAtar's own entry point)
    env = make_vec_env(ENVS[0], n_envs=NUM_ENVS, seed=seed)
    model = A2C(
        "MlpPolicy", env, seed=seed, ent_coef=0.01, verbose=0,
        policy_kwargs={"features_extractor_class": MinAtarTorso, "net_arch": [], "share_features_extractor": False},
    )  # fmt: skip
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    returns = [e["r"] for e in model.ep_info_buffer]
    return {
        "library": "sb3", "seed": seed, "steps": model.num_timesteps, "wall_s": wall,
        "sps": model.num_timesteps / wall, "return_mean_last100": float(np.mean(returns)) if returns else None,
        "cpu_s": cpu, "steps_per_cpu_s": model.num_timesteps / cpu,
    }  # fmt: skip


def sb3(args: argparse.Namespace) -> None:
    steps, sb3_steps = args.steps or 1_000_000, args.sb3_steps or args.steps or 1_000_000
    runs = []
    for seed in parse_seeds(args.seeds):
        for library in ("pglab", "sb3"):
            worker_args = [library, str(seed), str(steps if library == "pglab" else sb3_steps), str(sb3_steps)]
            result = run_worker(Path(__file__), *worker_args, timeout=24 * 3600)
            runs.append(result)
            print(f"{library:5} seed {seed}: {result['steps']:,} steps, {result['sps']:,.0f} steps/s, "
                  f"last-100 return {result['return_mean_last100']}", flush=True)  # fmt: skip
    pg = [r for r in runs if r["library"] == "pglab"]
    sb = [r for r in runs if r["library"] == "sb3"]
    pg_sps, sb_sps = median([r["sps"] for r in pg]), median([r["sps"] for r in sb])
    pg_cpu, sb_cpu = median([r["steps_per_cpu_s"] for r in pg]), median([r["steps_per_cpu_s"] for r in sb])
    lines = [
        f"Machine: {machine()}",
        "",
        f"MinAtar/Breakout-v1, seeds {args.seeds}: pglab reinforce-value (matched protocol, MinAtar network) for "
        f"{steps:,} steps; SB3 A2C (same torso, {NUM_ENVS} envs, n_steps 5) for {sb3_steps:,} steps; "
        "one torch thread each.",
        "",
        "| library | steps | median steps/s (wall) | median steps per CPU-second | median last-100 return at its "
        "budget | return at SB3's budget (last 20 logged rows) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| pglab reinforce-value | {steps:,} | {pg_sps:,.0f} | {pg_cpu:,.0f} | "
        f"{median([r['return_mean_last100'] for r in pg])} | {median([r['return_near_sb3_budget'] for r in pg])} |",
        f"| SB3 A2C | {sb3_steps:,} | {sb_sps:,.0f} | {sb_cpu:,.0f} | "
        f"{median([r['return_mean_last100'] for r in sb])} | {median([r['return_mean_last100'] for r in sb])} |",
        "",
        f"Ratios pglab / SB3: steps/s (wall) {pg_sps / sb_sps:.2f}x, steps per CPU-second {pg_cpu / sb_cpu:.2f}x",
    ]
    save("minatar_vs_sb3", {"machine": machine(), "args": vars(args), "runs": runs}, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", nargs="?", choices=("grid", "long", "sb3"), default="sb3")
    parser.add_argument("--steps", type=int, help="steps per run [grid 1M, long 3M, sb3 1M]")
    parser.add_argument("--sb3-steps", type=int, help="SB3's budget in the sb3 phase [--steps]")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument(
        "--agents", type=lambda s: s.split(","), help="comma-separated [grid: all; long: reinforce-value]"
    )
    parser.add_argument("--envs", type=lambda s: s.split(","), help=f"comma-separated [{','.join(ENVS)}]")
    parser.add_argument("--workers", type=int, help="grid runs at once [one per core]")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a preset field for every grid/long run"
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.set = parse_assignments(args.set)
    if args.worker:
        library, seed, steps, compare_at = args.worker[0], *map(int, args.worker[1:])
        result = pglab_worker(seed, steps, compare_at) if library == "pglab" else sb3_worker(seed, steps)
        print(json.dumps(result))
    elif args.phase == "sb3":
        sb3(args)
    else:
        grid(args, args.phase)


if __name__ == "__main__":
    main()
