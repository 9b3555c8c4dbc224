"""What W&B logging costs a training run: throughput offline vs disabled, and the start-up wall time.

Run by hand (not part of the tests); it takes a few minutes:

    python benchmarks/wandb_overhead.py [--total-steps 200000] [--repeats 3] [--agent reinforce-value]

Each run is a fresh ``python -m pglab train`` process on CartPole-v1, modes interleaved so that
machine noise hits both alike. Reported, as medians over the repeats:

* throughput: the run's own ``sps`` (summary.json: environment steps per second of the training
  loop, which includes every W&B ``log`` call) and the offline/disabled ratio (target >= 0.90);
* wall time W&B adds to a run: process wall time, offline minus disabled (target <= 1.5 s). W&B
  starts in a background thread (pglab/io/runlog.py), so most of its start overlaps with training;
  the part that does not is also shown on its own: time outside the training loop, offline minus
  disabled (importing wandb and starting its service if training outran it, then the finish, the
  checkpoint artifact and the results table at the end);
* CPU seconds W&B adds (the process and the W&B service it waits for), which depends less on how
  busy the machine is than wall time does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from common import timed_train

MODES = ("disabled", "offline")


def one_run(mode: str, args: argparse.Namespace, scratch: Path, index: int) -> dict[str, float]:
    """Steps per second of the training loop, wall and CPU seconds of one fresh process."""
    flags = ["--agent", args.agent, "--env", "CartPole-v1", "--seed", str(index)]
    flags += ["--total-steps", str(args.total_steps)]
    # W&B's staging and cache folders go to the scratch folder, not the user's home.
    env = {**os.environ, "WANDB_DATA_DIR": str(scratch / "data"), "WANDB_CACHE_DIR": str(scratch / "cache")}
    return timed_train([*flags, "--wandb-mode", mode], scratch / f"{mode}-{index}", env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agent", default="reinforce-value")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="pglab-wandb-bench-") as tmp:
        for index in range(args.repeats):
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                row = one_run(mode, args, Path(tmp), index)
                results[mode].append(row)
                print(
                    f"  {mode:<8} run {index}: {row['sps']:8,.0f} steps/s, wall {row['wall']:6.2f} s "
                    f"({row['outside']:5.2f} s outside the loop), CPU {row['cpu']:6.2f} s",
                    flush=True,
                )
    med = {mode: {key: statistics.median(r[key] for r in rows) for key in rows[0]} for mode, rows in results.items()}
    print(f"{args.agent} on CartPole-v1, {args.total_steps:,} steps, medians of {args.repeats}:")
    for mode in MODES:
        m = med[mode]
        print(
            f"  {mode:<8} {m['sps']:8,.0f} steps/s, wall {m['wall']:6.2f} s ({m['outside']:5.2f} s outside the loop), "
            f"CPU {m['cpu']:6.2f} s"
        )
    off, dis = med["offline"], med["disabled"]
    print(f"throughput ratio offline/disabled: {off['sps'] / dis['sps']:.3f} (target >= 0.90)")
    print(f"wall time W&B adds to the run: {off['wall'] - dis['wall']:.2f} s (target <= 1.5 s)")
    print(f"  of which outside the training loop: {off['outside'] - dis['outside']:.2f} s")
    print(f"CPU time W&B adds: {off['cpu'] - dis['cpu']:.2f} s")


if __name__ == "__main__":
    main()
