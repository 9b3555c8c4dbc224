"""How long `pglab grads` takes, and how close the estimators' means come to the exact gradient.

Run by hand (not part of the test suite):

    python benchmarks/grads_cost.py                      # CartPole-v1, every installed agent x 200
    python benchmarks/grads_cost.py --env FrozenLake-v1 --samples 1000

Targets (issue 5): 6 estimators x 200 samples on CartPole-v1 within 2 minutes on a 2-core machine;
on slippery FrozenLake-v1 at a fresh policy, every unbiased estimator's mean over 1000 samples has
cosine >= 0.95 with the exact gradient.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from pglab.core.plugins import load_agents
from pglab.diagnostics.grads import GradsConfig, markdown_table, run_grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--agents", default=None, help="comma-separated; default: every installed agent")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--batch-episodes", type=int, default=8)
    args = parser.parse_args()
    agents = tuple(args.agents.split(",")) if args.agents else tuple(sorted(load_agents()))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = run_grads(
            GradsConfig(env=args.env, agents=agents, samples=args.samples, batch_episodes=args.batch_episodes, out=out)
        )
        wall = time.perf_counter() - start
    print(markdown_table(report))
    print(f"{len(agents)} estimators x {args.samples} samples on {args.env}: {wall:.1f} s wall in all")


if __name__ == "__main__":
    main()
