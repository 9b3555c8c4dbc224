"""Per-seed learning results of pglab agents: steps and wall time until a target return.

Every run is one fresh process (``pglab.core.train`` with W&B disabled) that stops once the mean return
of its last 100 episodes reaches the target, or at the step budget. ``--parallel 2`` runs two at a
time on a 2-core machine: steps-to-target are unaffected, wall times then include the sharing.
Usage::

    python benchmarks/learning_table.py --env CartPole-v1 --agents reinforce,reinforce-value \\
        --seeds 0-9 --target 475 --budget 500000 --name cartpole_reinforce
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, median, pglab_run, run_worker, save

from pglab.lab.experiments import parse_seeds


def table(runs: list[dict], target: float, budget: int) -> str:
    agents = sorted({r["agent"] for r in runs}, key=[r["agent"] for r in runs].index)
    seeds = sorted({r["seed"] for r in runs})
    lines = [
        f"Target: last-100 mean >= {target} within {budget:,} steps. Cells: steps to target (k) / wall s; "
        "'-' = not reached (final last-100 mean in brackets).",
        "",
        "| agent | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | reached | median steps | median wall s | median steps/s |",
        "| --- | " + " | ".join("---" for _ in seeds) + " | --- | --- | --- | --- |",
    ]
    for agent in agents:
        mine = {r["seed"]: r for r in runs if r["agent"] == agent}
        cells = []
        for seed in seeds:
            r = mine[seed]
            if r["solved_at_step"] is None:
                cells.append(f"- ({r['return_mean_last100']:.0f})")
            else:
                cells.append(f"{r['solved_at_step'] / 1000:.0f}k / {r['solved_at_wall_s']:.1f}")
        steps = median([r["solved_at_step"] for r in mine.values()])
        wall = median([r["solved_at_wall_s"] for r in mine.values()])
        sps = median([r["sps"] for r in mine.values()])
        reached = sum(r["solved_at_step"] is not None for r in mine.values())
        steps_text = "-" if steps is None else f"{steps / 1000:.0f}k"
        wall_text = "-" if wall is None else f"{wall:.1f}"
        lines.append(
            f"| {agent} | "
            + " | ".join(cells)
            + f" | {reached}/{len(seeds)} | {steps_text} | {wall_text} | {sps:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--agents", default="reinforce,reinforce-ema,reinforce-value,reinforce-rloo")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--target", type=float, default=475.0)
    parser.add_argument("--budget", type=int, default=500_000)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--name", default=None, help="results file name (default: <env>_learning)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        agent, env, seed, budget, target = args.worker
        print(json.dumps(pglab_run(agent, env, int(seed), int(budget), float(target), {})))
        return
    jobs = [(a, s) for a in args.agents.split(",") for s in parse_seeds(args.seeds)]

    def one(job: tuple[str, int]) -> dict:
        agent, seed = job
        result = run_worker(Path(__file__), agent, args.env, str(seed), str(args.budget), str(args.target))
        print(f"{agent} seed {seed}: {result['solved_at_step']} steps, {result['wall_s']:.1f} s", flush=True)
        return result

    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(one, jobs))
    name = args.name or f"{args.env.replace('/', '-')}_learning"
    header = f"{args.env}, machine: {machine()}, {args.parallel} run(s) at a time\n\n"
    save(name, {"machine": machine(), "env": args.env, "parallel": args.parallel, "runs": runs},
         header + table(runs, args.target, args.budget))  # fmt: skip


if __name__ == "__main__":
    main()
