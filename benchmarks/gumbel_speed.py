"""Steps per second of the Gumbel agents beside reinforce-value, through the real training loop.

Run by hand (not part of the tests): ``python benchmarks/gumbel_speed.py [--env CartPole-v1] [--previous]``.
The agents take turns, round after round, so that a machine shared with other work slows them alike;
the table gives each agent's median steps/s and its ratio to reinforce-value's (the issue's goal:
at least 0.7). ``--previous`` adds each Gumbel agent at its preset before issue 12 (8 x 128 steps,
the critic fitted with 10 passes at lr 1e-3) to the same rounds, so one run gives before and after.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pglab

AGENTS = ("reinforce-value", "gumbel-softmax", "gumbel-st", "gumbel-rao")
# The Gumbel presets' values before issue 12 made their critic cheaper (agents/gumbel.py, GumbelPreset).
PREVIOUS = {"num_envs": 8, "num_steps": 128, "critic_epochs": 10, "critic_lr": 1e-3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=100_000, help="environment steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--previous", action="store_true", help="also run the Gumbel agents' previous preset")
    args = parser.parse_args()

    variants = [(agent, agent, {}) for agent in AGENTS]
    if args.previous:
        variants += [(f"{agent} (previous)", agent, PREVIOUS) for agent in AGENTS if agent.startswith("gumbel")]
    sps: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for index, (name, agent, overrides) in enumerate(variants):
                summary = pglab.train(
                    agent=agent,
                    env=args.env,
                    seed=round_,
                    total_steps=args.steps,
                    overrides=overrides,
                    run_dir=str(Path(tmp) / f"{index}-{round_}"),
                    wandb_mode="disabled",
                    progress=False,
                )
                sps[name].append(summary["sps"])
    reference = statistics.median(sps["reinforce-value"])
    print(f"{args.env}, {args.steps} steps x {args.rounds} rounds")
    print(f"{'agent':<30}{'median steps/s':>16}{'vs reinforce-value':>20}")
    for name, values in sps.items():
        median = statistics.median(values)
        print(f"{name:<30}{median:>16,.0f}{median / reference:>20.2f}")


if __name__ == "__main__":
    main()
