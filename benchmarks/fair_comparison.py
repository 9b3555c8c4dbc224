"""Learning tables under the three protocols of `pglab compare`: presets, matched, equal tuning budget.

Runs, for one environment and every agent, three `pglab compare` commands into OUT (each resumable:
rerun the same command to continue):

* ``presets``: each agent's tuned preset, on the evaluation seeds;
* ``matched``: the matched protocol (only the estimator fields differ), on the evaluation seeds;
* ``tuned``:   the matched protocol with an equal tuning budget: ``--sweep`` on the tuning seeds, each
               agent's best point (criterion ``auc``) on the evaluation seeds.

Then it tables, per agent and protocol, the IQM of the final return (last-100 mean) and of the AUC
(the mean return over training, pglab.lab.tuning) with 95% bootstrap CIs over the evaluation seeds, the
seeds reaching the target, and the rank by final-return IQM. Per-run numbers go to
``benchmarks/results/<name>.json``, the tables to ``<name>.md``. Usage (what was run is in the .md)::

    python benchmarks/fair_comparison.py --env CartPole-v1 --seeds 0-4 --tune-seeds 100-102 \\
        --sweep lr=3e-4,1e-3,3e-3 --total-steps 100000 --workers 2 --out /tmp/fair --name fair_cartpole
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, save

from pglab.lab import stats
from pglab.lab.results import find_runs
from pglab.lab.tuning import criterion_value

AGENTS = "reinforce,reinforce-ema,reinforce-value,reinforce-rloo,gumbel-softmax,gumbel-st,gumbel-rao"
PROTOCOLS = ("matched", "tuned", "presets")  # the order they run in


def compare(args: argparse.Namespace, protocol: str) -> Path:
    out = Path(args.out) / protocol
    command = [sys.executable, "-m", "pglab", "compare", "--agents", args.agents, "--envs", args.env,
               "--seeds", args.seeds, "--total-steps", str(args.total_steps), "--workers", str(args.workers),
               "--out", str(out), "--wandb-mode", "disabled", "--no-progress",
               "--protocol", "presets" if protocol == "presets" else "matched"]  # fmt: skip
    if args.target is not None:
        command += ["--target-return", str(args.target)]
    if protocol == "tuned":
        command += ["--sweep", args.sweep, "--tune-seeds", args.tune_seeds, "--criterion", "auc"]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "WANDB_MODE": "disabled"})
    return out / "eval" if protocol == "tuned" else out


def per_run(directory: Path, total_steps: int) -> list[dict]:
    return [
        {
            "agent": r.agent,
            "seed": r.seed,
            "status": r.status,
            "final": r.final_return,
            "auc": criterion_value(r.path, "auc", total_steps),
            "solved_at_step": r.summary.get("solved_at_step"),
            "wall_s": r.summary.get("wall_s"),
            "run": r.path.name,
        }
        for r in find_runs(directory)
    ]


def _iqm(values: list[float]) -> str:
    if not values:
        return "-"
    est = stats.bootstrap_iqm(np.array(values))
    return f"{est.value:.1f}" if len(values) == 1 else f"{est.value:.1f} [{est.low:.1f}, {est.high:.1f}]"


def table(results: dict[str, list[dict]], agents: list[str], chosen: dict[str, str]) -> str:
    ranks = {}
    for protocol, runs in results.items():
        iqms = {a: float(stats.iqm(np.array([r["final"] for r in runs if r["agent"] == a]))) for a in agents}
        order = sorted(agents, key=lambda a: -iqms[a])
        ranks[protocol] = {a: order.index(a) + 1 for a in agents}
    header = ["agent"]
    for protocol in results:
        header += [f"{protocol}: final IQM [95% CI]", f"{protocol}: AUC IQM [95% CI]", f"{protocol}: rank"]
    header.append("tuned: chosen point")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for agent in agents:
        cells = [agent]
        for protocol, runs in results.items():
            mine = [r for r in runs if r["agent"] == agent and r["status"] == "finished"]
            cells += [_iqm([r["final"] for r in mine]), _iqm([r["auc"] for r in mine]), str(ranks[protocol][agent])]
        cells.append(chosen.get(agent, "-"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--agents", default=AGENTS)
    parser.add_argument("--seeds", default="0-4", help="evaluation seeds")
    parser.add_argument("--tune-seeds", default="100-102")
    parser.add_argument("--sweep", default="lr=3e-4,1e-3,3e-3")
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="which of presets,matched,tuned to run")
    parser.add_argument("--out", default="/tmp/pglab-fair")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    agents = args.agents.split(",")
    results, chosen = {}, {}
    for protocol in args.protocols.split(","):
        results[protocol] = per_run(compare(args, protocol), args.total_steps)
    tuning = Path(args.out) / "tuned" / "tuning.json"
    if tuning.is_file():
        import json

        points = json.loads(tuning.read_text())["chosen"]
        chosen = {key.partition("|")[2]: ", ".join(f"{k}={v}" for k, v in p.items()) for key, p in points.items()}
        tuning_md = tuning.with_suffix(".md").read_text()
    else:
        tuning_md = ""
    name = args.name or f"fair_{args.env.replace('/', '-')}"
    header = (
        f"{args.env}, machine: {machine()}, {args.workers} run(s) at a time while other engineers loaded the "
        f"machine. Evaluation seeds {args.seeds}, {args.total_steps:,} steps per run"
        + (f", target {args.target}" if args.target is not None else "")
        + f"; tuned: --sweep {args.sweep} on tuning seeds {args.tune_seeds}, criterion auc. Final: last-100 "
        "mean return; AUC: mean return over training (pglab.lab.tuning); IQM with 95% percentile-bootstrap CI over "
        "the evaluation seeds; rank by final-return IQM.\n\n"
    )
    payload = {"machine": machine(), "args": vars(args), "chosen": chosen, "runs": results}
    save(name, payload, header + table(results, agents, chosen) + "\n" + tuning_md)


if __name__ == "__main__":
    main()
