"""What W&B logging costs a training run: throughput offline vs disabled, and the start-up wall time.

Run by hand (not part of the tests); it takes a few minutes:

    python benchmarks/wandb_overhead.py [--total-steps 200000] [--repeats 3] [--agent reinforce-value]

Each run is a fresh ``python -m pglab train`` process on CartPole-v1, modes interleaved so that
machine noise hits both alike. Reported, as medians over the repeats:

* throughput: the run's own ``sps`` (summary.json: environment steps per second of the training
  loop, which includes every W&B ``log`` call) and the offline/disabled ratio (target >= 0.90);
* start-up cost: (process wall time - training-loop wall time), offline minus disabled: importing
  wandb, starting its service, and the finish, checkpoint artifact and results table at the end
  (target <= 1.5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("disabled", "offline")


def one_run(mode: str, args: argparse.Namespace, scratch: Path, index: int) -> tuple[float, float]:
    """(steps per second of the training loop, wall seconds outside the loop) of one fresh process."""
    run_dir = scratch / f"{mode}-{index}"
    command = [sys.executable, "-m", "pglab", "train", "--agent", args.agent, "--env", "CartPole-v1"]
    command += ["--seed", str(index), "--total-steps", str(args.total_steps), "--run-dir", str(run_dir)]
    command += ["--wandb-mode", mode, "--no-progress"]
    # W&B's staging and cache folders go to the scratch folder, not the user's home.
    env = {**os.environ, "WANDB_DATA_DIR": str(scratch / "data"), "WANDB_CACHE_DIR": str(scratch / "cache")}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    process_wall = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary["sps"], process_wall - summary["wall_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agent", default="reinforce-value")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="pglab-wandb-bench-") as tmp:
        for index in range(args.repeats):
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                sps, outside = one_run(mode, args, Path(tmp), index)
                results[mode].append((sps, outside))
                print(f"  {mode:<8} run {index}: {sps:8,.0f} steps/s, {outside:5.2f} s outside the loop", flush=True)
    sps = {mode: statistics.median(s for s, _ in rows) for mode, rows in results.items()}
    outside = {mode: statistics.median(o for _, o in rows) for mode, rows in results.items()}
    print(f"{args.agent} on CartPole-v1, {args.total_steps:,} steps, medians of {args.repeats}:")
    for mode in MODES:
        print(f"  {mode:<8} {sps[mode]:8,.0f} steps/s, {outside[mode]:5.2f} s outside the training loop")
    print(f"throughput ratio offline/disabled: {sps['offline'] / sps['disabled']:.3f} (target >= 0.90)")
    print(f"wall time W&B adds outside the loop: {outside['offline'] - outside['disabled']:.2f} s (target <= 1.5 s)")


if __name__ == "__main__":
    main()
