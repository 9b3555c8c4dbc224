"""What TensorBoard logging costs a training run: throughput with --tensorboard beside --no-tensorboard.

Run by hand (not part of the tests); about two minutes on an idle 2-core machine:

    python benchmarks/tensorboard_overhead.py [--total-steps 100000] [--repeats 5]

Each run is a fresh ``python -m pglab train`` process (W&B disabled, so TensorBoard is the only
sink besides metrics.jsonl), the two settings interleaved so that machine noise hits both alike.
Two workloads: the agent's preset (reinforce-value on CartPole-v1: 1024 steps per update, one
metrics row each) and a worst case of one row every 32 steps (2 envs x 16 steps), 32 times as many
rows per step. First, the CPU cost per row of ``RunLog.log`` with and without TensorBoard in this
process (best of two, machine load hardly changes it). Then, as medians over the repeats: the
training loop's steps per second (every TensorBoard write is inside it), the process's wall and CPU
seconds (which include importing the writer, about 0.3 s once torch is loaded), and the ratios on/off
(target: throughput >= 0.97).
On a machine other work keeps busy, the CPU seconds are the steadier measure of the cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from common import machine, timed_train

SETTINGS = ("--no-tensorboard", "--tensorboard")
# name -> (extra flags, fraction of --total-steps): the worst case runs a quarter of the steps, its loop being slower.
WORKLOADS = {
    "preset (1024 steps per row)": ([], 1.0),
    "worst case (32 steps per row)": (["--num-envs", "2", "--set", "num_steps=16"], 0.25),
}


def row_cost(rows: int = 5000) -> dict[str, float]:
    """CPU seconds per metrics row of RunLog.log with and without TensorBoard, in this process (the
    writer thread's serialisation included: process time counts every thread), and the one-off cost
    of opening the writer (importing tensorboard). CPU time, unlike wall time, hardly depends on what
    else the machine runs."""
    import math
    import time

    import torch  # noqa: F401  (a training process has torch loaded before it opens the writer)

    from pglab.io.runlog import RunLog

    row = {"global_step": 0, "charts/episodic_return": 21.5, "charts/episodic_length": 21.5, "charts/SPS": 30000.0}
    row |= {f"losses/{name}": 0.1 for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "grad_norm")}
    cost = {}
    with tempfile.TemporaryDirectory(prefix="pglab-tb-rows-") as tmp:
        for setting in (False, True, False, True):
            run_dir = Path(tmp) / f"{setting}-{len(cost)}"
            run_dir.mkdir()
            start = time.process_time()
            log = RunLog(run_dir, {}, "disabled", {}, tensorboard=setting)
            opened = time.process_time()
            for step in range(rows):
                log.log({**row, "global_step": step})
            log.close(None)
            per_row, first_open = cost.get(setting, (math.inf, opened - start))
            cost[setting] = min(per_row, (time.process_time() - opened) / rows), first_open
    return {"off_us": cost[False][0] * 1e6, "on_us": cost[True][0] * 1e6, "open_s": cost[True][1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    cost = row_cost()
    print(
        f"RunLog.log, CPU per row of 9 numbers: {cost['off_us']:.0f} us without TensorBoard, {cost['on_us']:.0f} us "
        f"with it (+{cost['on_us'] - cost['off_us']:.0f} us); opening the writer (importing tensorboard): "
        f"{cost['open_s']:.2f} s",
        flush=True,
    )
    print(f"reinforce-value on CartPole-v1, fresh processes, medians of {args.repeats}:")
    with tempfile.TemporaryDirectory(prefix="pglab-tb-bench-") as tmp:
        for name, (extra, fraction) in WORKLOADS.items():
            steps = int(args.total_steps * fraction)
            results: dict[str, list[dict[str, float]]] = {setting: [] for setting in SETTINGS}
            for index in range(args.repeats):
                for setting in SETTINGS if index % 2 == 0 else SETTINGS[::-1]:
                    flags = ["--agent", "reinforce-value", "--env", "CartPole-v1", "--seed", str(index)]
                    flags += ["--total-steps", str(steps), "--wandb-mode", "disabled", setting, *extra]
                    results[setting].append(timed_train(flags, Path(tmp) / f"{name[:5]}{setting}-{index}"))
            med = {s: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for s, rows in results.items()}
            off, on = med["--no-tensorboard"], med["--tensorboard"]
            print(f"{name}, {steps:,} steps:")
            for setting, m in med.items():
                print(f"  {setting:<17} {m['sps']:8,.0f} steps/s, wall {m['wall']:6.2f} s, CPU {m['cpu']:6.2f} s")
            print(
                f"  on/off: throughput {on['sps'] / off['sps']:.3f} (target >= 0.97), "
                f"wall {on['wall'] / off['wall']:.3f}, CPU {on['cpu'] / off['cpu']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
