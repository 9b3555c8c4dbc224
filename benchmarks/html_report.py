"""report.html of a 7-agent x 2-env x 10-seed grid: its size, and how fast headless Chromium draws it.

Run by hand (not part of the tests); about a minute:

    python benchmarks/html_report.py [--agents 7] [--envs 2] [--seeds 10] [--rows 500] [--fresh 3] [--reloads 5]

The grid is synthetic: run directories written the way ``pglab train`` writes them (config.json,
summary.json, metrics.jsonl with a row every 1000 steps holding the return, SPS, two losses and,
every 10th row, four ``grads/*`` diagnostics), so nothing is trained. Then ``pglab report --html``
(timed), the file's size (target <= 10 MB), and Debian's headless Chromium (tests/browser.py) loads
it: the page's own clock from navigation start until every figure is drawn (``data-render-ms``,
target <= 2 s), in ``--fresh`` fresh browsers (a reader opening the file: most of it is compiling the
inlined plotly.js), then the median of ``--reloads`` reloads (plotly.js compiled code cached).
Wall time on a busy machine says little, so the CPU seconds Chromium's processes spend on the first
load are measured too. Every figure is checked drawn and the console free of errors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.browser: the browser the tests use

from common import machine

from pglab.lab.report import build_report
from tests.browser import chromium, load

GRADS = ("grads/policy_grad_norm", "grads/grad_var", "grads/snr", "grads/cosine_to_reference")


def write_grid(root: Path, agents: int, envs: int, seeds: int, rows: int) -> None:
    rng = np.random.default_rng(0)
    for e in range(envs):
        env = ("CartPole-v1", "Acrobot-v1", "LunarLander-v3", "MountainCar-v0")[e % 4] + ("" if e < 4 else f"-{e}")
        for a in range(agents):
            agent = f"agent-{a}"
            for seed in range(seeds):
                run = root / "runs" / f"{env}__{agent}__{seed}"
                run.mkdir(parents=True)
                speed = 0.5 + a / agents + 0.1 * rng.standard_normal()
                lines = []
                for i in range(1, rows + 1):
                    row = {"global_step": 1000 * i, "charts/episodic_return": 500 * (1 - np.exp(-speed * i / rows * 5))
                           + 20 * rng.standard_normal(), "charts/episodic_length": 100.0, "charts/SPS": 20_000.0,
                           "losses/policy_loss": float(rng.standard_normal()), "losses/entropy": 0.6}  # fmt: skip
                    if i % 10 == 0:
                        row |= {name: float(abs(rng.standard_normal()) + 0.1) for name in GRADS}
                    lines.append(json.dumps(row))
                (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
                final = json.loads(lines[-1])["charts/episodic_return"]
                (run / "config.json").write_text(json.dumps({"agent": agent, "env": env, "seed": seed}))
                summary = {"agent": agent, "env": env, "seed": seed, "status": "finished", "global_step": 1000 * rows,
                           "wall_s": 60.0, "sps": 1000 * rows / 60, "episodes": 900, "return_mean_last100": final,
                           "return_std_last100": 5.0, "solved_at_step": None, "solved_at_wall_s": None,
                           "target_return": None}  # fmt: skip
                (run / "summary.json").write_text(json.dumps(summary))


def browser_cpu_s(driver: object) -> float:
    """CPU seconds used so far by every process under chromedriver (Chromium's browser, renderer, GPU
    and utility processes): what a page load costs, whatever else the machine is running."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, list(children.get(driver.service.process.pid, []))
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        todo += children.get(pid, [])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=7)
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=500, help="metrics rows per run (one per 1000 steps)")
    parser.add_argument("--fresh", type=int, default=3, help="fresh browsers (a new profile each)")
    parser.add_argument("--reloads", type=int, default=5, help="reloads in the last fresh browser")
    args = parser.parse_args()
    print(f"{args.agents} agents x {args.envs} envs x {args.seeds} seeds, {args.rows} rows per run; {machine()}")
    with tempfile.TemporaryDirectory(prefix="pglab-html-bench-") as tmp:
        root = Path(tmp) / "grid"
        write_grid(root, args.agents, args.envs, args.seeds, args.rows)
        start = time.perf_counter()
        report = build_report(root, html=True)
        built = time.perf_counter() - start
        page = report.files[-1]
        print(f"pglab report --html: {built:.1f} s (PNG figures and report.md included); "
              f"report.html {page.stat().st_size / 1e6:.2f} MB (target <= 10 MB)")  # fmt: skip
        fresh, walls, cpus = [], [], []
        for _ in range(args.fresh):
            with chromium() as driver:
                start, cpu = time.perf_counter(), browser_cpu_s(driver)
                fresh.append(load(driver, page))
                walls.append(time.perf_counter() - start)
                cpus.append(browser_cpu_s(driver) - cpu)
                reloads = [load(driver, page) for _ in range(args.reloads)]
        for result in (*fresh, *reloads):
            drawn = sum(f["drawn"] for f in result.figures)
            if result.render_error or result.console_errors or drawn != len(result.figures) != result.rendered:
                raise SystemExit(f"not every figure rendered: {result}")
        print(f"figures: {fresh[0].rendered}, all drawn, no console error")
        firsts = [r.render_ms / 1000 for r in fresh]
        print(f"fresh browser ({args.fresh}): every figure drawn {statistics.median(firsts):.2f} s (median; "
              f"{', '.join(f'{t:.2f}' for t in firsts)}) after navigation started (target <= 2 s); "
              f"{statistics.median(walls):.2f} s as Selenium saw it")  # fmt: skip
        print(f"CPU seconds Chromium's processes spent on that first load: median {statistics.median(cpus):.2f} "
              f"({', '.join(f'{t:.2f}' for t in cpus)}): on an idle machine the load takes about this or less "
              "(the processes partly run in parallel)")  # fmt: skip
        ms = [r.render_ms / 1000 for r in reloads]
        print(f"reloads: median {statistics.median(ms):.2f} s (min {min(ms):.2f}, max {max(ms):.2f})")


if __name__ == "__main__":
    main()
