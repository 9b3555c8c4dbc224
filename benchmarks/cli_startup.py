"""How long the command line takes to answer: ``pglab --help``, ``pglab train --help``, ``pglab list``.

Run by hand (not part of the tests):

    python benchmarks/cli_startup.py [--repeats 15]

Each command is a fresh ``python -m pglab`` process (what a user's shell starts, minus the console
script's own few milliseconds), commands interleaved so that machine noise hits them alike; reported
as the median and the minimum wall time. ``python -c pass`` is timed alongside: the interpreter's own
start, which no change to pglab can remove. Target: ``pglab --help`` <= 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "pglab --help": [sys.executable, "-m", "pglab", "--help"],
    "pglab train --help": [sys.executable, "-m", "pglab", "train", "--help"],
    "pglab list": [sys.executable, "-m", "pglab", "list"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name:<20} median {statistics.median(values):.3f} s, min {min(values):.3f} s ({args.repeats} runs)")


if __name__ == "__main__":
    main()
