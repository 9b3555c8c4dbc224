"""pglab reinforce-value against Stable-Baselines3 A2C on CartPole-v1, side by side in one run.

SB3 A2C uses the rl-baselines3-zoo hyperparameters for CartPole-v1 (8 envs, MlpPolicy,
ent_coef 0, SB3 defaults otherwise: n_steps 5, RMSprop lr 7e-4). Both stop once the mean return of
their last 100 episodes reaches 475 (SB3: its 100-episode ep_info_buffer, checked every rollout),
with a budget of 500k steps. Runs alternate between the libraries seed by seed, each in a fresh
process with one torch thread (pglab's default; for these small networks a second thread only adds
synchronisation). Both import their libraries, torch and torch._dynamo (which torch.optim imports when
the first optimiser is built: seconds of a process's start) before their clocks start. pglab's wall
time to 475 is its training loop's; SB3's starts before its environments and model are built. Besides
wall times it reports steps per CPU-second (the process's CPU time from building the run to its end),
which a machine loaded by other work changes much less. Usage::

    pip install -e '.[bench]'
    python benchmarks/cartpole_vs_sb3.py --seeds 0-4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, median, pglab_run, run_worker, save

from pglab.lab.experiments import parse_seeds

TARGET, BUDGET = 475.0, 500_000


def sb3_run(seed: int) -> dict:
    import numpy as np
    import torch
    import torch._dynamo  # imported by the first optimiser: before the clocks start, as pglab's
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class StopAtTarget(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.solved_at_step: int | None = None
            self.solved_at_wall_s: float | None = None

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            buffer = self.model.ep_info_buffer
            if len(buffer) == 100 and np.mean([e["r"] for e in buffer]) >= TARGET and self.solved_at_step is None:
                self.solved_at_step = self.num_timesteps
                self.solved_at_wall_s = time.perf_counter() - start
                self.model._stop_training = True  # checked below

    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, verbose=0)
    callback = StopAtTarget()

    class Stopper(BaseCallback):
        def _on_step(self) -> bool:
            return not getattr(self.model, "_stop_training", False)

    model.learn(total_timesteps=BUDGET, callback=[callback, Stopper()])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    buffer = model.ep_info_buffer
    return {
        "library": "sb3", "agent": "a2c", "env": "CartPole-v1", "seed": seed, "steps": model.num_timesteps,
        "solved_at_step": callback.solved_at_step, "solved_at_wall_s": callback.solved_at_wall_s, "wall_s": wall,
        "sps": model.num_timesteps / wall, "return_mean_last100": float(np.mean([e["r"] for e in buffer])),
        "cpu_s": cpu, "steps_per_cpu_s": model.num_timesteps / cpu,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        library, seed = args.worker[0], int(args.worker[1])
        if library == "sb3":
            result = sb3_run(seed)
        else:
            result = pglab_run("reinforce-value", "CartPole-v1", seed, BUDGET, TARGET, {})
        print(json.dumps(result))
        return

    runs = []
    for seed in parse_seeds(args.seeds):
        for library in ("pglab", "sb3"):
            result = run_worker(Path(__file__), library, str(seed))
            runs.append(result)
            print(
                f"{library:5} seed {seed}: solved at {result['solved_at_step']} steps, "
                f"{result['solved_at_wall_s'] or float('nan'):.1f} s, {result['sps']:,.0f} steps/s, "
                f"{result['steps_per_cpu_s']:,.0f} steps per CPU-second",
                flush=True,
            )

    def stats(library: str) -> dict:
        mine = [r for r in runs if r["library"] == library]
        return {
            "solved": sum(r["solved_at_step"] is not None for r in mine), "seeds": len(mine),
            "median_sps": median([r["sps"] for r in mine]),
            "median_steps_to_475": median([r["solved_at_step"] for r in mine]),
            "median_wall_s_to_475": median([r["solved_at_wall_s"] for r in mine]),
            "median_steps_per_cpu_s": median([r["steps_per_cpu_s"] for r in mine]),
        }  # fmt: skip

    pg, sb = stats("pglab"), stats("sb3")
    lines = [
        f"Machine: {machine()}",
        "",
        f"Load average at the end: {os.getloadavg()[0]:.1f} (steps per CPU-second do not depend on it; wall times do)",
        "",
        "| library | solved (>= 475) | median steps to 475 | median wall s to 475 | median steps/s | "
        "median steps per CPU-second |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in (("pglab reinforce-value", pg), ("SB3 A2C (zoo)", sb)):
        lines.append(
            f"| {name} | {s['solved']}/{s['seeds']} | {s['median_steps_to_475']} | "
            f"{s['median_wall_s_to_475'] and round(s['median_wall_s_to_475'], 1)} | {s['median_sps']:,.0f} | "
            f"{s['median_steps_per_cpu_s']:,.0f} |"
        )
    if pg["median_wall_s_to_475"] and sb["median_wall_s_to_475"]:
        lines += [
            "",
            f"Ratios (pglab / SB3): wall time to 475 {pg['median_wall_s_to_475'] / sb['median_wall_s_to_475']:.2f}x, "
            f"steps/s {pg['median_sps'] / sb['median_sps']:.1f}x, "
            f"steps per CPU-second {pg['median_steps_per_cpu_s'] / sb['median_steps_per_cpu_s']:.1f}x",
        ]
    save("cartpole_vs_sb3", {"machine": machine(), "runs": runs, "pglab": pg, "sb3": sb}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
