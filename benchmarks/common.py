"""Helpers shared by the benchmark scripts: one run per fresh subprocess, results as JSON + markdown.

Every run starts in its own Python process, so import time, thread pools and allocator state are
the same for every library and every seed. Benchmarks are run by hand, never by the test suite.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def run_worker(script: Path, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``script --worker ARGS`` in a new process; it prints one JSON object as its last line."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run(
        [sys.executable, str(script), "--worker", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_train(flags: list[str], run_dir: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """``pglab train FLAGS --run-dir RUN_DIR`` in a fresh process: the training loop's steps per second
    (summary.json's ``sps``), the process's wall seconds, those outside the training loop, and its CPU seconds."""
    import time

    command = [sys.executable, "-m", "pglab", "train", *flags, "--run-dir", str(run_dir), "--no-progress"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    summary = json.loads((run_dir / "summary.json").read_text())
    cpu = usage.ru_utime + usage.ru_stime
    return {"sps": summary["sps"], "wall": wall, "outside": wall - summary["wall_s"], "cpu": cpu}


def pglab_run(agent: str, env: str, seed: int, total_steps: int, target: float | None, sets: dict[str, str]) -> dict:
    """One pglab training run in this process; the fields the benchmark tables use."""
    import tempfile
    import time

    import torch._dynamo  # noqa: F401  (torch.optim imports it with the first optimiser: seconds, once)

    import pglab
    import pglab.core.train  # torch and the training code: imported before the clocks start, as SB3's

    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        s = pglab.train(
            agent=agent, env=env, seed=seed, total_steps=total_steps, target_return=target, overrides=sets,
            run_dir=f"{tmp}/run", wandb_mode="disabled", progress=False,
        )  # fmt: skip
    cpu = time.process_time() - cpu  # the whole run, building and closing it included: what it costs the machine
    return {
        "library": "pglab", "agent": agent, "env": env, "seed": seed, "steps": s["global_step"],
        "solved_at_step": s["solved_at_step"], "solved_at_wall_s": s["solved_at_wall_s"], "wall_s": s["wall_s"],
        "sps": s["sps"], "return_mean_last100": s["return_mean_last100"], "episodes": s["episodes"],
        "cpu_s": cpu, "steps_per_cpu_s": s["global_step"] / cpu,
    }  # fmt: skip


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def save(name: str, payload: dict[str, Any], markdown: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
