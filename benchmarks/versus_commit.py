"""Training throughput of this checkout against another commit's, side by side in one run.

Run by hand (not part of the tests):

    git worktree add --detach /tmp/pglab-old 0a3b1d9     # main before the issue-12 step work
    python benchmarks/versus_commit.py /tmp/pglab-old [--agent reinforce-value] [--steps 50000] [--rounds 3]

Each run is a fresh ``python -m pglab train`` process with W&B disabled; the other commit's code comes
first on PYTHONPATH (the working directory is a scratch folder, so ``-m pglab`` finds no other copy;
its agents/ and envs/ are linked into its pglab/ as the wheel maps them).
Runs alternate old/new so that machine noise hits both alike; reported: each side's median of the
run's own ``sps`` (summary.json) and the ratio of the medians.
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


def one_run(code: Path, args: argparse.Namespace, scratch: Path, name: str) -> float:
    run_dir = scratch / name
    command = [sys.executable, "-m", "pglab", "train", "--agent", args.agent, "--env", args.env, "--seed", "0"]
    command += ["--total-steps", str(args.steps), "--run-dir", str(run_dir), "--wandb-mode", "disabled"]
    command += ["--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(code), "WANDB_MODE": "disabled"}
    subprocess.run(command, check=True, env=env, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((run_dir / "summary.json").read_text())["sps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="a checkout (e.g. a git worktree) of the commit to compare with")
    parser.add_argument("--agent", default="reinforce-value")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for package in ("agents", "envs"):  # where the wheel puts them (package-dir), so the other code finds its own
        link = args.other / "pglab" / package
        if not link.exists():
            link.symlink_to(args.other / package)
    sps: dict[str, list[float]] = {"other": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            for side in ("other", "this") if index % 2 == 0 else ("this", "other"):
                code = args.other.resolve() if side == "other" else HERE
                sps[side].append(one_run(code, args, Path(tmp), f"{side}-{index}"))
                print(f"  {side:<5} round {index}: {sps[side][-1]:9,.0f} steps/s", flush=True)
    other, this = statistics.median(sps["other"]), statistics.median(sps["this"])
    load = os.getloadavg()[0]
    print(f"{args.agent} on {args.env}, {args.steps:,} steps, medians of {args.rounds} (load {load:.1f}):")
    print(f"  {args.other}: {other:,.0f} steps/s; this checkout: {this:,.0f} steps/s; ratio {this / other:.2f}x")


if __name__ == "__main__":
    main()
