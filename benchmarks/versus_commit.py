"""Training throughput of this checkout against another commit's, side by side in one run.

Run by hand (not part of the tests):

    git worktree add --detach /tmp/pglab-old 0a3b1d9     # main before the issue-12 step work
    python benchmarks/versus_commit.py /tmp/pglab-old [--agents reinforce-value] [--steps 50000] [--rounds 3]
    python benchmarks/versus_commit.py /tmp/pglab-old --agents reinforce-value,gumbel-softmax,gumbel-st,gumbel-rao

Each run is a fresh ``python -m pglab train`` process with W&B disabled; the other commit's code comes
first on PYTHONPATH (the working directory is a scratch folder, so ``-m pglab`` finds no other copy;
its agents/ and envs/ are linked into its pglab/ as the wheel maps them).
Runs alternate old/new (and the agents take turns within a round) so that machine noise hits both alike;
reported per agent: each side's median of the run's own ``sps`` (summary.json) and the ratio of the medians,
and, when reinforce-value is among the agents, each side's ratio to reinforce-value's median (issue 12's
target for the Gumbel agents: at least 0.7x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def one_run(code: Path, agent: str, args: argparse.Namespace, scratch: Path, name: str) -> float:
    run_dir = scratch / name
    command = [sys.executable, "-m", "pglab", "train", "--agent", agent, "--env", args.env, "--seed", "0"]
    command += ["--total-steps", str(args.steps), "--run-dir", str(run_dir), "--wandb-mode", "disabled"]
    command += ["--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(code), "WANDB_MODE": "disabled"}
    subprocess.run(command, check=True, env=env, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((run_dir / "summary.json").read_text())["sps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="a checkout (e.g. a git worktree) of the commit to compare with")
    parser.add_argument("--agents", "--agent", default="reinforce-value", help="comma-separated agent names")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for package in ("agents", "envs"):  # where the wheel puts them (package-dir), so the other code finds its own
        link = args.other / "pglab" / package
        if not link.exists():
            link.symlink_to(args.other / package)
    agents = args.agents.split(",")
    sps: dict[tuple[str, str], list[float]] = {(side, a): [] for side in ("other", "this") for a in agents}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            for agent in agents:
                for side in ("other", "this") if index % 2 == 0 else ("this", "other"):
                    code = args.other.resolve() if side == "other" else HERE
                    sps[side, agent].append(one_run(code, agent, args, Path(tmp), f"{side}-{agent}-{index}"))
                    print(f"  {side:<5} {agent:<16} round {index}: {sps[side, agent][-1]:9,.0f} steps/s", flush=True)
    median = {key: statistics.median(values) for key, values in sps.items()}
    load = os.getloadavg()[0]
    print(f"{args.env}, {args.steps:,} steps, medians of {args.rounds} (load {load:.1f}); other: {args.other}")
    reference = "reinforce-value" if "reinforce-value" in agents else None
    print(f"{'agent':<18}{'other':>10}{'this':>10}{'this/other':>12}", end="")
    print(f"{'other vs ' + reference:>28}{'this vs ' + reference:>28}" if reference else "")
    for agent in agents:
        other, this = median["other", agent], median["this", agent]
        print(f"{agent:<18}{other:>10,.0f}{this:>10,.0f}{this / other:>11.2f}x", end="")
        if reference:
            print(f"{other / median['other', reference]:>27.2f}x{this / median['this', reference]:>27.2f}x", end="")
        print()


if __name__ == "__main__":
    main()
