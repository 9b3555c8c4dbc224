"""Where a training run's time goes: cProfile of one run, the top functions by own time.

Run by hand (not part of the tests):

    python benchmarks/profile_training.py [--agent reinforce-value] [--env CartPole-v1] [--total-steps 65536]
    python benchmarks/profile_training.py --agent gumbel-st --sort cumulative --top 40
    python benchmarks/profile_training.py --budget --env MinAtar/Breakout-v1 --protocol matched

A short warm-up run goes first (imports, torch's first optimiser step), so the profile shows the
steady state of the loop: acting, stepping the environments, bookkeeping and the agent's update.
cProfile's own overhead inflates the cost of small Python calls, so read the profile for shares and
call counts, and time the loop itself without the profiler (``charts/SPS``, or the other benchmarks).

``--budget`` times instead, without the profiler, the CPU milliseconds per 1024 environment steps of
each part of the loop: the vector environment's steps alone (random actions), the agent's acts alone,
the whole collection (acts, steps and bookkeeping) and the update, with the cost per element of
torch.tanh (on some builds of torch most of a tanh network's forward pass) and of pglab's numpy
fast_tanh beside them. CPU time, not wall time, so a machine loaded by other work changes it little.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

# Run as a script, this file's folder comes first on the path, where benchmarks/minatar.py would shadow the
# MinAtar package (`import minatar` would find it): the folder leaves the path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import pglab  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="reinforce-value")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--total-steps", type=int, default=65_536)
    parser.add_argument("--sort", default="tottime", help="a pstats sort key: tottime, cumulative, ncalls")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--protocol", default="presets", help="presets (the agent's tuned values) or matched")
    parser.add_argument("--budget", action="store_true", help="CPU ms per 1024 steps of each part, no profiler")
    args = parser.parse_args()
    if args.budget:
        budget(args.agent, args.env, args.protocol)
        return
    options = {
        "agent": args.agent, "env": args.env, "protocol": args.protocol, "wandb_mode": "disabled", "progress": False,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        pglab.train(total_steps=4096, run_dir=f"{tmp}/warm-up", **options)
        profiler = cProfile.Profile()
        profiler.enable()
        summary = pglab.train(total_steps=args.total_steps, run_dir=f"{tmp}/run", **options)
        profiler.disable()
    print(f"{args.agent} on {args.env}: {summary['global_step']:,} steps at {summary['sps']:,.0f} steps/s (profiled)")
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


def budget(agent: str, env: str, protocol: str = "presets", updates: int = 40) -> None:
    """Print the CPU milliseconds per 1024 environment steps of the loop's parts (medians over ``updates``)."""
    import statistics
    import time

    import numpy as np
    import torch

    from pglab.core.train import TrainConfig, build_run

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(agent=agent, env=env, protocol=protocol, wandb_mode="disabled", progress=False)
        run = build_run(config, Path(tmp) / "run")
        run.collector.reset(0)
        for _ in range(3):  # warm-up: first optimiser steps, allocations
            run.agent.update(run.collector.collect(run.agent))
        batch = run.collector.collect(run.agent)
        scale = 1024 / (batch.num_steps * batch.num_envs) * 1e3  # seconds per batch -> ms per 1024 steps
        envs, features = run.envs, batch.features[0].clone()
        actions = np.zeros(envs.num_envs, dtype=np.int64)

        def cpu_ms(work: object, repeats: int = updates) -> float:
            times = []
            for _ in range(repeats):
                start = time.process_time()
                work()  # type: ignore[operator]
                times.append((time.process_time() - start) * scale)
            return statistics.median(times)

        def act_window() -> None:
            with torch.inference_mode():
                for _ in range(batch.num_steps):
                    run.agent.act(features)

        def env_window() -> None:
            for _ in range(batch.num_steps):
                envs.step(actions)

        parts = {
            "environment steps alone": cpu_ms(env_window),
            "acts alone": cpu_ms(act_window),
            "collection (acts, steps, bookkeeping)": cpu_ms(lambda: run.collector.collect(run.agent)),
            "update": cpu_ms(lambda: run.agent.update(batch)),
        }
        run.envs.close()
    from pglab.core.policy import fast_tanh

    x = torch.randn(1024, 64)
    tanh_ns = {}
    for tanh in (torch.tanh, fast_tanh):
        start = time.process_time()
        for _ in range(200):
            tanh(x)
        tanh_ns[tanh.__name__] = (time.process_time() - start) / (200 * x.numel()) * 1e9
    shape = f"{batch.num_envs} envs x {batch.num_steps} steps"
    print(f"{agent} on {env} ({protocol} protocol), {shape}; CPU ms per 1024 steps (medians):")
    for name, ms in parts.items():
        print(f"  {name:<40} {ms:7.2f}")
    total = parts["collection (acts, steps, bookkeeping)"] + parts["update"]
    print(f"  {'collection + update':<40} {total:7.2f}  ({1024 / total * 1e3:,.0f} steps per CPU-second)")
    print(
        f"tanh, float32, one thread: torch.tanh {tanh_ns['tanh']:.1f} ns an element, "
        f"fast_tanh (numpy's, what pglab's networks use) {tanh_ns['fast_tanh']:.1f} ns"
    )


if __name__ == "__main__":
    main()
