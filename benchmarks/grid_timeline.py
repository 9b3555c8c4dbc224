"""Where a grid's wall time goes: reads the events benchmarks/timeline/sitecustomize.py traced, prints a timeline.

Used by ``benchmarks/grid_scaling.py --timeline``. Times are seconds since the command started. The fixed
cost of a grid (what more workers cannot shorten) is its head (the command's start until its first run
starts), its tail (the last run's end until the command exits) and what each run costs outside its
training loop (building the run, its logs' opening and closing, the gap before a worker's next run).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from pathlib import Path


def read(path: Path, begun: float, ended: float) -> list[dict]:
    """The traced events, with the command's own start and exit (times taken by the benchmark) around them."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    events += [{"t": begun, "pid": 0, "ppid": 0, "event": "command start"},
               {"t": ended, "pid": 0, "ppid": 0, "event": "command exit"}]  # fmt: skip
    for event in events:
        event["t"] -= begun
    return sorted(events, key=lambda e: e["t"])


def _first(events: list[dict], pid: int | None, name: str, last: bool = False) -> float | None:
    times = [e["t"] for e in events if e["event"] == name and (pid is None or e["pid"] == pid)]
    return (max(times) if last else min(times)) if times else None


def _spans(events: list[dict], name: str) -> list[tuple[int, str | None, float, float]]:
    """(pid, run, start, end) of every call of the traced function ``name``."""
    open_calls: dict[tuple[int, str | None], list[float]] = defaultdict(list)
    spans = []
    for e in events:
        key = (e["pid"], e.get("run"))
        if e["event"] == f"{name} >":
            open_calls[key].append(e["t"])
        elif e["event"] == f"{name} <" and open_calls[key]:
            spans.append((e["pid"], e.get("run"), open_calls[key].pop(), e["t"]))
    return spans


def render(events: list[dict], label: str, walls: dict[str, float] | None = None) -> str:
    """The grid's phases, then its fixed cost: head, tail and the per-run costs outside training
    (``walls``: each run's own wall_s from status.json, the time its summary counts)."""
    parent = next(e["pid"] for e in events if "pglab compare" in e.get("argv", "") or " compare " in e.get("argv", ""))
    server = next((e["pid"] for e in events if e["event"] == "imported torch" and e["ppid"] == parent), None)
    executes = _spans(events, "execute")
    workers = sorted({pid for pid, *_ in executes})
    lines = [f"timeline of {label} (s since the command started; parent {parent}, fork server {server})"]
    phases: list[tuple[float, str]] = []

    def row(when: float | None, what: str) -> None:
        if when is not None:
            phases.append((when, what))

    row(0.0, "command start")
    row(_first(events, parent, "python start"), "parent: python started (site imported)")
    row(_first(events, parent, "imported pglab.cli"), "parent: pglab.cli imported")
    row(_first(events, parent, "run_grid >"), "parent: run_grid called (options parsed)")
    row(_first(events, parent, "warm_up <"), "parent: fork server launched (warm_up returned)")
    row(_first(events, parent, "imported torch"), "parent: torch imported")
    row(_first(events, parent, "_run_planned >"), "parent: settings checked, lock taken")
    row(_first(events, parent, "probe_step_seconds <"), "parent: planned (plan + step probe)")
    row(_first(events, parent, "run_local first next"), "parent: engine started (pool created)")
    if server is not None:
        row(_first(events, server, "python start"), "fork server: python started")
        for module in ("torch", "pglab.core.train", "torch._dynamo", "torch.utils.tensorboard", "pglab.lab.preload"):
            row(_first(events, server, f"imported {module}"), f"fork server: {module} imported")
        row(_first(events, server, "python exit"), "fork server: python exiting (atexit)")
    exits = [e["t"] for e in events if e["event"] == "python exit" and e["ppid"] == parent and e["pid"] != server]
    row(min(exits, default=None), "resource tracker exiting (the parent has exited)")
    starts = sorted(start for _, _, start, _ in executes)
    ends = sorted(end for *_, end in executes)
    row(min((_first(events, w, "_init_local_worker >") or 1e9) for w in workers) if workers else None,
        "first worker started")  # fmt: skip
    row(starts[0] if starts else None, "first run started")
    row(ends[-1] if ends else None, f"last run ended ({len(executes)} runs on {len(workers)} workers)")
    row(_first(events, parent, "StatusFile.record <", last=True), "parent: last outcome recorded")
    row(_first(events, parent, "run_grid <"), "parent: run_grid returned")
    row(_first(events, parent, "python exit"), "parent: python exiting (atexit)")
    end = _first(events, 0, "command exit")
    row(end, "command exit")
    lines += [f"  {when:7.3f}  {what}" for when, what in sorted(phases, key=lambda phase: phase[0])]
    if not executes or end is None:
        return "\n".join(lines)

    loops = {(pid, run): (start, stop) for pid, run, start, stop in _spans(events, "run_loop")}
    builds = {(pid, run): stop - start for pid, run, start, stop in _spans(events, "build_run")}
    closes = [stop - start for *_, start, stop in _spans(events, "RunLog.close")]
    opens = [stop - start for *_, start, stop in _spans(events, "RunLog.__init__")]
    inside = [loops[(p, r)][1] - loops[(p, r)][0] for p, r, *_ in executes if (p, r) in loops]
    outside = [
        (stop - start) - (loops[(p, r)][1] - loops[(p, r)][0]) for p, r, start, stop in executes if (p, r) in loops
    ]
    gaps = []
    for worker in workers:
        mine = sorted((start, stop) for pid, _, start, stop in executes if pid == worker)
        gaps += [b[0] - a[1] for a, b in itertools.pairwise(mine)]
    last_ends = [max(stop for pid, *_, stop in executes if pid == worker) for worker in workers]
    busy = sum(stop - start for *_, start, stop in executes)

    def stats(values: list[float]) -> str:
        if not values:
            return "-"
        median, most = statistics.median(values) * 1000, max(values) * 1000
        return f"median {median:.0f} ms, max {most:.0f} ms, sum {sum(values):.2f} s"

    head, tail = starts[0], end - ends[-1]
    beyond = [stop - start - walls[run] for _, run, start, stop in executes if run in (walls or {})]
    lines += [
        f"  head (command start -> first run): {head:.2f} s; tail (last run end -> command exit): {tail:.2f} s",
        f"  workers busy {busy:.2f} s in all: run_loop {sum(inside):.2f} s + outside it {sum(outside):.2f} s",
        f"  per run outside its own wall_s (what status.json sums): {stats(beyond)}",
        f"  per run outside run_loop: {stats(outside)}",
        f"    of which build_run (env, agent): {stats(list(builds.values()))}",
        f"    RunLog open {stats(opens)}; RunLog close {stats(closes)}",
        f"  gap between a worker's runs: {stats(gaps)}",
        f"  the last run: {ends[-1] - starts[-1]:.2f} s; "
        f"the first worker to finish idles {ends[-1] - min(last_ends):.2f} s",
    ]
    return "\n".join(lines)
