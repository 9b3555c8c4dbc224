"""How a comparison grid scales with workers, and what the Ray engine costs over the local one.

Runs the same grid (default: 4 agents x CartPole-v1, Acrobot-v1 x 5 seeds x 200k steps) once per
configuration, each as a fresh ``pglab compare`` process into a fresh directory, and times the whole
command: worker start-up, imports and Ray's start included, as a user waits for it. Targets (issue 6):
``local:2`` at least 1.7x faster than ``local:1`` on a 2-core machine; ``ray:2`` at most 15% slower
than ``local:2``. Usage::

    python benchmarks/grid_scaling.py                                  # the full grid (long: ~1 h on 2 cores)
    python benchmarks/grid_scaling.py --agents reinforce,reinforce-rloo --envs CartPole-v1 \\
        --seeds 0-1 --total-steps 50000                                # a quick check
    pip install -e '.[ray]' to include the ray:2 configuration (skipped where Ray is not installed)

Issue 12's grid (target: local:2 at least 1.9x local:1 on a 2-core machine), with where each grid's fixed
cost goes (``--timeline``: every process traced by benchmarks/timeline/sitecustomize.py, the phases printed
by benchmarks/grid_timeline.py) and three timed reruns of the finished grid (nothing left to do)::

    python benchmarks/grid_scaling.py --seeds 0-3 --total-steps 50000 --configs local:1,local:2 \
        --timeline --reruns 3 --name grid_scaling_issue12
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grid_timeline as timeline
from common import machine, save

AGENTS = "reinforce,reinforce-ema,reinforce-value,reinforce-rloo"
TIMELINE = Path(__file__).parent / "timeline"


def run_grid(engine: str, workers: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pglab", "compare", "--agents", args.agents, "--envs", args.envs,
                   "--seeds", args.seeds, "--total-steps", str(args.total_steps), "--engine", engine,
                   "--workers", str(workers), "--out", tmp, "--wandb-mode", "disabled", "--no-progress"]  # fmt: skip
        env = {**os.environ, "WANDB_MODE": "disabled"}
        trace = Path(tmp) / "timeline.jsonl"
        if args.timeline:
            path = os.pathsep.join([str(TIMELINE), env.get("PYTHONPATH", "")])
            env.update(PGLAB_TIMELINE=str(trace), PYTHONPATH=path)
        reruns = []
        start = time.perf_counter()
        begun = time.time()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        ended = time.time()
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        runs = list(json.loads((Path(tmp) / "status.json").read_text()).values())
        events = timeline.read(trace, begun, ended) if args.timeline else []
        for _ in range(args.reruns):  # the same command again: nothing is left to run
            start = time.perf_counter()
            again = subprocess.run(command, capture_output=True, text=True, env={**env, "PGLAB_TIMELINE": ""})
            reruns.append(time.perf_counter() - start)
            if again.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} (rerun) failed:\n{again.stderr[-2000:]}")
    run_seconds = sum(r["wall_s"] for r in runs)
    return {"engine": engine, "workers": workers, "runs": len(runs), "wall_s": wall, "run_s_total": run_seconds,
            "events": events, "rerun_s": reruns, "walls": {r["run"]: r["wall_s"] for r in runs}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default=AGENTS)
    parser.add_argument("--envs", default="CartPole-v1,Acrobot-v1")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--total-steps", type=int, default=200_000)
    parser.add_argument("--configs", default="local:1,local:2,ray:2", help="engine:workers, comma-separated")
    parser.add_argument("--name", default="grid_scaling", help="results file name under benchmarks/results/")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="trace every process of each grid (benchmarks/timeline/) and print where its time went",
    )
    parser.add_argument("--reruns", type=int, default=0,
                        help="then run the same command N times more (nothing left to do) and time those")  # fmt: skip
    args = parser.parse_args()

    results = []
    for config in args.configs.split(","):
        engine, workers = config.split(":")
        if engine == "ray" and importlib.util.find_spec("ray") is None:
            print(f"skipping {config}: Ray is not installed (pip install -e '.[ray]')", file=sys.stderr)
            continue
        results.append(run_grid(engine, int(workers), args))
        print(f"{config}: {results[-1]['wall_s']:.1f} s", file=sys.stderr)
        if args.timeline:
            print(timeline.render(results[-1]["events"], config, results[-1]["walls"]), file=sys.stderr)

    base = next((r for r in results if r["engine"] == "local" and r["workers"] == 1), None)
    local = {r["workers"]: r for r in results if r["engine"] == "local"}
    lines = [
        f"# Grid scaling: {args.agents} x {args.envs} x seeds {args.seeds} x {args.total_steps:,} steps",
        "",
        f"Machine: {machine()}; load average at the end: {os.getloadavg()[0]:.1f}.",
        "",
        "| engine | workers | runs | grid wall s | sum of run wall s | speed-up vs local:1 | vs local, same workers |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        speedup = f"{base['wall_s'] / r['wall_s']:.2f}x" if base else "-"
        same = local.get(r["workers"])
        overhead = f"{(r['wall_s'] / same['wall_s'] - 1) * 100:+.1f}%" if same and r["engine"] != "local" else "-"
        lines.append(
            f"| {r['engine']} | {r['workers']} | {r['runs']} | {r['wall_s']:.1f} | {r['run_s_total']:.1f} "
            f"| {speedup} | {overhead} |"
        )
    for r in results:
        if r["rerun_s"]:
            lines.append(f"\nRerun of the finished local:{r['workers']} grid (nothing to do): "
                         + ", ".join(f"{s:.2f} s" for s in r["rerun_s"]))  # fmt: skip
        if r["events"]:
            lines += ["", "```", timeline.render(r["events"], f"{r['engine']}:{r['workers']}", r["walls"]), "```"]
    kept = [{k: v for k, v in r.items() if k != "events"} for r in results]  # the timelines are in the markdown
    save(args.name, {"args": vars(args), "machine": machine(), "results": kept}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
