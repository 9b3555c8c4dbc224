"""Where a training run's time goes: cProfile of one run, the top functions by own time.

Run by hand (not part of the tests):

    python benchmarks/profile_training.py [--agent reinforce-value] [--env CartPole-v1] [--total-steps 65536]
    python benchmarks/profile_training.py --agent gumbel-st --sort cumulative --top 40

A short warm-up run goes first (imports, torch's first optimiser step), so the profile shows the
steady state of the loop: acting, stepping the environments, bookkeeping and the agent's update.
cProfile's own overhead inflates the cost of small Python calls, so read the profile for shares and
call counts, and time the loop itself without the profiler (``charts/SPS``, or the other benchmarks).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile

import pglab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="reinforce-value")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--total-steps", type=int, default=65_536)
    parser.add_argument("--sort", default="tottime", help="a pstats sort key: tottime, cumulative, ncalls")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    options = {"agent": args.agent, "env": args.env, "wandb_mode": "disabled", "progress": False}
    with tempfile.TemporaryDirectory() as tmp:
        pglab.train(total_steps=4096, run_dir=f"{tmp}/warm-up", **options)
        profiler = cProfile.Profile()
        profiler.enable()
        summary = pglab.train(total_steps=args.total_steps, run_dir=f"{tmp}/run", **options)
        profiler.disable()
    print(f"{args.agent} on {args.env}: {summary['global_step']:,} steps at {summary['sps']:,.0f} steps/s (profiled)")
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
