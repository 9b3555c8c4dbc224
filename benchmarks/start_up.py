"""Time to the first update: how long `pglab train --env ENV` takes from the command to training.

Run by hand (not part of the tests; it needs the extras: pip install -e '.[minatar,atari]'):

    python benchmarks/start_up.py [--repeats 5] [--envs MinAtar/Breakout-v1,ALE/Pong-v5]

Each run is a fresh ``python -m pglab train --env ENV --total-steps 1`` process (one update: the
budget rounds up to one batch) with the default flags otherwise (W&B offline, TensorBoard on), as a
user's shell starts it, minus the console script's few milliseconds. The clock starts when the process
is spawned; two marks are polled every 5 ms: *training starts* when summary.json appears (written with
status "running" once the environments are made and the agent built, right before the first step), and
the *first update* when the first row of metrics.jsonl appears (written, flushed, right after it: one
batch collected and learned from, which on the CPU is most of Atari's time). Environments are
interleaved so that machine noise hits them alike; reported per environment: the median and the
minimum of both marks, the CPU seconds the process had used when training started (from /proc: what
start-up costs whatever else the machine runs; on a quiet machine the wall time is about this), the
median wall time of the whole command, and its median CPU time (rusage). Target (issue 14): MinAtar/Breakout-v1 and
ALE/Pong-v5 start training within 10 s. ``python -c "import torch"`` is timed alongside: a floor no
change to pglab can remove.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH_FLOOR = "python -c 'import torch'"


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def first_update(env_id: str, run_dir: Path) -> tuple[float, float, float, float, float]:
    """Seconds from the command to training (summary.json says "running": the environments are made, the
    agent built, the first step comes next) with the CPU seconds the process had used by then, to the first
    update (the first metrics row), to the end of the command; and the command's CPU seconds."""
    command = [sys.executable, "-m", "pglab", "train", "--env", env_id, "--total-steps", "1", "--no-progress"]
    marks = {"start": run_dir / "summary.json", "update": run_dir / "metrics.jsonl"}
    seen: dict[str, float] = {}
    cpu_at_start = math.nan
    start = time.perf_counter()
    process = subprocess.Popen([*command, "--run-dir", str(run_dir)], stdout=subprocess.DEVNULL)
    while len(seen) < len(marks):
        for name, path in marks.items():
            if name not in seen and path.exists() and path.stat().st_size > 0:
                seen[name] = time.perf_counter() - start
                if name == "start":
                    cpu_at_start = cpu_seconds(process.pid)
        if len(seen) < len(marks):
            if process.poll() is not None:
                raise SystemExit(f"pglab train --env {env_id} ended (exit {process.returncode}) before training")
            time.sleep(0.005)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"pglab train --env {env_id} failed")
    return seen["start"], cpu_at_start, seen["update"], time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def torch_floor() -> tuple[float, float, float, float, float]:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "import torch"])
    _, _, usage = os.wait4(process.pid, 0)
    wall, cpu = time.perf_counter() - start, usage.ru_utime + usage.ru_stime
    return wall, cpu, wall, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--envs", default="CartPole-v1,MinAtar/Breakout-v1,ALE/Pong-v5")
    args = parser.parse_args()
    envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    results: dict[str, list[tuple[float, float, float, float, float]]] = {name: [] for name in [TORCH_FLOOR, *envs]}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            results[TORCH_FLOOR].append(torch_floor())
            for i, env_id in enumerate(envs):
                results[env_id].append(first_update(env_id, Path(tmp) / f"{repeat}-{i}"))
            load.append(os.getloadavg()[0])
    print(f"load average (1 min) {min(load):.1f} to {max(load):.1f} on {os.cpu_count()} cores; {args.repeats} runs")
    for name, rows in results.items():
        starts, start_cpus, firsts, walls, cpus = zip(*rows, strict=True)
        print(
            f"{name:<24} training starts: median {statistics.median(starts):5.2f} s, min {min(starts):5.2f} s "
            f"(CPU {statistics.median(start_cpus):5.2f} s); "
            f"first update: median {statistics.median(firsts):5.2f} s, min {min(firsts):5.2f} s; "
            f"whole command {statistics.median(walls):5.2f} s; CPU {statistics.median(cpus):5.2f} s"
        )

if __name__ == "__main__":
    main()
