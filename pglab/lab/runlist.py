"""``pglab runs [DIR]``: the runs below a folder, one line each, read from their own files.

A run is a directory with a config.json (written before training starts). Its state comes from
summary.json, written when the run stops; a run with no summary.json, or one whose metrics.jsonl has
gone past its summary (a resumed run under way), is "no summary": running, or killed before it could
write one. Its steps are then those of the last complete metrics row. Runs a grid moved aside to
attempts/ are not runs of the grid any more and are not listed.

Only the tail of metrics.jsonl is read, so listing a folder of long runs stays quick.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pglab.core.limits import fits_type, type_name
from pglab.errors import ConfigError
from pglab.io.rundir import in_use
from pglab.io.runlog import dumps

NO_SUMMARY = "no summary"
IN_USE = "in use"  # a live process holds its lock (pglab.io.rundir): training, resuming or evaluating it
COLUMNS = ("env", "agent", "seed", "status", "steps", "return_last100", "solved_at_step", "wall_s", "run_dir")
_TAIL_BYTES = 64 * 1024  # enough for the last complete row of any metrics file pglab writes


def run_directories(directory: Path) -> list[Path]:
    """The run directory itself, or every run directory below it (attempts/ left out), sorted.

    Raises ConfigError when ``directory`` is not a directory; an empty list when it holds no run.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory; pass a grid's --out, a folder of runs or a run directory")
    if (directory / "summary.json").is_file() or (directory / "config.json").is_file():
        return [directory]
    return sorted(
        p.parent for p in directory.rglob("config.json") if "attempts" not in p.relative_to(directory).parts[:-1]
    )


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or {} if it is missing or unreadable (a run killed mid-write)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# The fields of config.json and summary.json that listing and reporting read, and their types.
RUN_FIELDS: dict[str, Any] = {
    "agent": str,
    "env": str,
    "seed": int,
    "status": str,
    "global_step": int,
    "episodes": int,
    "return_mean_last100": float | None,
    "solved_at_step": int | None,
    "solved_at_wall_s": float | None,
    "wall_s": float,
    "sps": float,
}


def read_run_files(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run directory's config.json and summary.json ({} where missing), each field read checked for its type.

    An edited file (a seed of "x", a global_step of "a") is one ConfigError line naming the file and
    the field, not a traceback in whatever reads it.
    """
    files = {name: read_json(path / name) for name in ("config.json", "summary.json")}
    for name, data in files.items():
        for key, hint in RUN_FIELDS.items():
            if key in data and not fits_type(data[key], hint):
                raise ConfigError(
                    f"{path / name}: {key} must be {type_name(hint)}; got {data[key]!r:.60}; "
                    "this file was not written by pglab or was edited"
                )
    return files["config.json"], files["summary.json"]


def metrics_row(line: str, path: Path, number: int) -> dict[str, Any] | None:
    """Line ``number`` of metrics.jsonl as a row; None for a line that is not JSON (cut short by a kill).

    Valid JSON that is no row (not an object, or without an integer ``global_step``) was not written
    by pglab: a ConfigError naming the line, rather than a traceback wherever the row is used.
    """
    try:
        row = json.loads(line)
    except ValueError:
        return None
    step = row.get("global_step") if isinstance(row, dict) else None
    if not isinstance(step, int) or isinstance(step, bool):
        raise ConfigError(
            f"{path} line {number} is not a metrics row (a JSON object with an integer global_step): "
            f"{line[:60]!r}; remove or repair that line"
        )
    return row


def last_logged_step(metrics: Path) -> int | None:
    """``global_step`` of the last complete row of metrics.jsonl (a row cut short by a kill is skipped)."""
    try:
        with metrics.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            return int(json.loads(line)["global_step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


@dataclass
class RunInfo:
    """One line of ``pglab runs``."""

    env: str
    agent: str
    seed: int | None
    status: str
    steps: int | None
    return_last100: float | None
    solved_at_step: int | None
    wall_s: float | None
    run_dir: str


def run_info(path: Path) -> RunInfo:
    """What a run directory says about itself: its config, its summary, the tail of its metrics."""
    config, summary = read_run_files(path)
    logged = last_logged_step(path / "metrics.jsonl")
    stale = summary and logged is not None and logged > int(summary.get("global_step") or 0)
    busy = in_use(path)  # a live process holds the run's lock: its summary (if any) is an old session's
    if not summary or stale or busy:
        return RunInfo(
            env=str(config.get("env", "?")),
            agent=str(config.get("agent", "?")),
            seed=config.get("seed"),
            status=IN_USE if busy else NO_SUMMARY,
            steps=logged,
            return_last100=None,
            solved_at_step=None,
            wall_s=None,
            run_dir=str(path),
        )
    source = {**config, **summary}
    return RunInfo(
        env=str(source.get("env", "?")),
        agent=str(source.get("agent", "?")),
        seed=source.get("seed"),
        status=str(summary.get("status", NO_SUMMARY)),
        steps=summary.get("global_step"),
        return_last100=summary.get("return_mean_last100"),
        solved_at_step=summary.get("solved_at_step"),
        wall_s=summary.get("wall_s"),
        run_dir=str(path),
    )


def list_runs(
    directory: Path,
    envs: Iterable[str] = (),
    agents: Iterable[str] = (),
    statuses: Iterable[str] = (),
) -> list[RunInfo]:
    """Every run below ``directory``, sorted by env, agent and seed; each filter keeps the runs it names."""
    envs, agents, statuses = set(envs), set(agents), set(statuses)
    runs = [run_info(p) for p in run_directories(directory)]
    kept = [
        r
        for r in runs
        if (not envs or r.env in envs) and (not agents or r.agent in agents) and (not statuses or r.status in statuses)
    ]
    return sorted(kept, key=lambda r: (r.env, r.agent, -1 if r.seed is None else r.seed, r.run_dir))


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def as_table(runs: list[RunInfo]) -> str:
    """Aligned columns for a terminal; the directory last, so long paths do not push the numbers."""
    header = ("env", "agent", "seed", "status", "steps", "return100", "solved at", "wall s", "directory")
    rows = [
        (
            r.env,
            r.agent,
            _cell(r.seed),
            r.status,
            _cell(r.steps),
            _cell(r.return_last100),
            _cell(r.solved_at_step),
            _cell(r.wall_s),
            r.run_dir,
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    numeric = {2, 4, 5, 6, 7}
    lines = []
    for row in [header, *rows]:
        pairs = enumerate(zip(row[:-1], widths, strict=True))
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in pairs]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines) + "\n"


def as_json(runs: list[RunInfo]) -> str:
    """Strict JSON (a NaN read from an old run's summary becomes null), as every file pglab writes."""
    return dumps([asdict(r) for r in runs], indent=2) + "\n"


def as_csv(runs: list[RunInfo]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in asdict(r).items()} for r in runs)
    return buffer.getvalue()
