"""Steps per second of the Gumbel agents beside reinforce-value, through the real training loop.

Run by hand (not part of the tests): ``python benchmarks/gumbel_speed.py [--env CartPole-v1]``.
The agents take turns, round after round, so that a machine shared with other work slows them alike;
the table gives each agent's median steps/s and its ratio to reinforce-value's (the issue's goal:
at least 0.7).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pglab

AGENTS = ("reinforce-value", "gumbel-softmax", "gumbel-st", "gumbel-rao")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=100_000, help="environment steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    sps: dict[str, list[float]] = {agent: [] for agent in AGENTS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for agent in AGENTS:
                summary = pglab.train(
                    agent=agent,
                    env=args.env,
                    seed=round_,
                    total_steps=args.steps,
                    run_dir=str(Path(tmp) / f"{agent}-{round_}"),
                    wandb_mode="disabled",
                    progress=False,
                )
                sps[agent].append(summary["sps"])
    reference = statistics.median(sps["reinforce-value"])
    print(f"{args.env}, {args.steps} steps x {args.rounds} rounds")
    print(f"{'agent':<18}{'median steps/s':>16}{'vs reinforce-value':>20}")
    for agent, values in sps.items():
        median = statistics.median(values)
        print(f"{agent:<18}{median:>16,.0f}{median / reference:>20.2f}")


if __name__ == "__main__":
    main()
