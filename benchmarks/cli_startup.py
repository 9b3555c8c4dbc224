"""How long the command line takes to answer: ``pglab --help``, ``pglab train --help``, ``pglab list``.

Run by hand (not part of the tests):

    python benchmarks/cli_startup.py [--repeats 15]

Each command is a fresh ``python -m pglab`` process (what a user's shell starts, minus the console
script's own few milliseconds), commands interleaved so that machine noise hits them alike; reported
as the median and the minimum wall time, and the median CPU time (user + system, from the process's
rusage: what the command costs whatever else the machine runs). ``python -c pass`` is timed
alongside: the interpreter's own start, which no change to pglab can remove. Target: ``pglab --help``
<= 0.3 s.
"""

from __future__ import annotations

import argparse
import os
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
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            times[name].append(time.perf_counter() - start)
            cpu[name].append(usage.ru_utime + usage.ru_stime)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{name} failed")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, values in times.items():
        print(
            f"{name:<20} wall median {statistics.median(values):.3f} s, min {min(values):.3f} s; "
            f"CPU median {statistics.median(cpu[name]):.3f} s ({args.repeats} runs)"
        )


if __name__ == "__main__":
    main()
