"""``pglab report DIR``: the statistics of a grid (or of one run) as figures, report.md and results.csv.

Per environment and agent: the learning curve (mean over seeds with a 95% bootstrap band, on a
common step grid), the final return's IQM with a 95% bootstrap CI, a performance profile, the steps
and wall seconds until the target return with how many seeds got there, and the ``grads/*``
diagnostics as curves. The statistics are in :mod:`pglab.lab.stats`, the figures in :mod:`pglab.lab.figures`.

Only finished runs enter the statistics: a failed or unfinished run would bias every number towards
whatever made it stop. Excluded runs are listed in report.md with their status.

Only runs that share everything but the seed are pooled: the environment with its keyword arguments
(``module:Env-v0`` and ``Env-v0`` are one environment), the agent and every setting of config.json
(budget, target, protocol, every hyperparameter, ...). Runs of one agent that differ in a setting form
separate groups, labelled with their differences; report.md shows each environment's settings side by
side and marks the fields that differ, says when a folder mixes runs that differ in more than the
estimator, and puts a caveat on statistics from fewer than 5 seeds (one seed gets no interval).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pglab.lab.results import (
    AGGREGATE_COLUMNS,
    FEW_SEEDS,
    METHODS,
    RESULT_COLUMNS,
    AgentResult,
    Report,
    RunRecord,
    _value_text,
    compare_settings,
    find_runs,
    group_runs,
    result_table,
    slug,
    summarize,
)
from pglab.lab.runlist import read_json


def build_report(directory: Path, out: Path | None = None, html: bool = False) -> Report:
    """Compute everything and write the figures, report.md, results.csv and aggregates.csv to ``out``;
    with ``html``, also the interactive report.html (:mod:`pglab.lab.htmlreport`), listed last in ``files``.

    A sweep's folder (``pglab compare --sweep``, with tuning.json) is reported by its evaluation runs,
    with the tuning tables appended: its tuning runs are the choice's, not the comparison's.
    """
    from pglab.lab import figures

    evaluation = Path(directory) / "eval"
    sweep = (Path(directory) / "tuning.json").is_file() and evaluation.is_dir()
    runs = find_runs(evaluation if sweep else Path(directory))
    out = Path(out) if out else Path(directory) / "report"
    out.mkdir(parents=True, exist_ok=True)
    finished = [r for r in runs if r.finished and r.final_return is not None]
    groups = group_runs(finished)
    results, sections, files, mixed = [], [], [], {}
    for env, by_group in groups.items():
        env_results = [summarize(env, group[0].agent, group, label) for label, group in by_group.items()]
        results += env_results
        env_files = figures.environment_figures(env, by_group, out / slug(env))
        files += env_files.values()
        settings, beyond = _settings_table(by_group)
        if beyond:
            mixed[env] = beyond
        images = {k: p.relative_to(out) for k, p in env_files.items()}
        sections.append(_section(env, env_results, images) + "\n" + settings)
    files.append(_write_csv(out / "results.csv", RESULT_COLUMNS, [r.row() for r in runs]))
    files.append(_write_csv(out / "aggregates.csv", AGGREGATE_COLUMNS, [r.row() for r in results]))
    report_md = out / "report.md"
    header = _markdown(Path(directory), runs, finished, mixed, results) + _grid_settings(Path(directory))
    report_md.write_text(header + "\n" + "\n".join(sections) + _tuning_section(Path(directory)))
    files.append(report_md)
    report = Report(runs, results, files, groups)
    if html:
        from pglab.lab.htmlreport import write_html

        files.append(write_html(report, Path(directory), out))
    return report


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return path


def _section(env: str, results: list[AgentResult], images: dict[str, Path]) -> str:
    lines = [f"## {env}", ""]
    if "curves" in images:
        lines += [f"![learning curves on {env}]({images['curves']})", ""]
    header, rows = result_table(results)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    if any(r.seeds < FEW_SEEDS for r in results):
        lines += ["", f"⚠ fewer than {FEW_SEEDS} seeds: an IQM and its bootstrap interval over so few seeds are "
                  "unreliable (the interval is too narrow more often than 5% of the time); treat these rows as "
                  "tentative."]  # fmt: skip
    if all(r.target_return is None for r in results):
        lines += ["", "No target return was set (`--target-return`), so there is no steps-to-target table."]
    for key, title in (
        ("profile", "performance profile"),
        ("grads", "gradient diagnostics"),
        ("grads_cost", "cost of the gradient diagnostics"),
    ):
        if key in images:
            lines += ["", f"![{title} on {env}]({images[key]})"]
    return "\n".join(lines) + "\n"


def _settings_table(by_group: dict[str, list[RunRecord]]) -> tuple[str, list[str]]:
    """The settings comparison as markdown, and the fields that differ beyond the estimator."""
    comparison = compare_settings(by_group)
    lines = ["### Settings", "", "Every run's resolved settings (config.json) side by side; **≠** marks a field that "
             "differs between the groups above, *(estimator)* one that belongs to the estimators compared; "
             "n/a: the agent has no such field.", ""]  # fmt: skip
    lines += [
        "| field | differs | " + " | ".join(comparison.labels) + " |",
        "|" + "---|" * (len(comparison.labels) + 2),
    ]
    marks = {"": "", "estimator": "≠ *(estimator)*", "beyond": "**≠**"}
    lines += [f"| {key} | {marks[mark]} | " + " | ".join(cells) + " |" for key, mark, cells in comparison.rows]
    return "\n".join(lines) + "\n", comparison.beyond


def _grid_settings(directory: Path) -> str:
    """What a grid's grid.json says every run of it shared (a sweep's from its evaluation grid)."""
    grid = read_json(directory / "grid.json") or read_json(directory / "eval" / "grid.json")
    if not grid:
        return ""
    settings = grid.get("settings", {})
    shared = ", ".join(f"{k}={_value_text(v)}" for k, v in settings.items() if v not in (None, {}, [], [{}]))
    return (
        f"Grid settings (grid.json): agents {', '.join(grid.get('agents', []))}; envs "
        f"{', '.join(grid.get('envs', []))}; seeds {', '.join(map(str, grid.get('seeds', [])))}; {shared}.\n"
    )


def _tuning_section(directory: Path) -> str:
    path = directory / "tuning.md"
    return "\n" + path.read_text() if path.is_file() else ""


def _markdown(
    directory: Path,
    runs: list[RunRecord],
    finished: list[RunRecord],
    mixed: dict[str, list[str]],
    results: list[AgentResult],
) -> str:
    excluded = [r for r in runs if r not in finished]
    lines = [f"# pglab report: {directory}", "", f"{len(finished)} finished runs of {len(runs)}. {METHODS}", ""]
    if len(finished) == 1:
        lines += ["One run: it has no confidence interval and says nothing about seed variation.", ""]
    few = [f"{r.env} / {r.label}" for r in results if r.seeds < FEW_SEEDS]
    if few:
        lines += [f"⚠ Fewer than {FEW_SEEDS} seeds behind {len(few)} of {len(results)} rows ({'; '.join(few)}): "
                  "their statistics are tentative.", ""]  # fmt: skip
    if mixed:
        lines += ["**Mixed folder**: runs compared below differ in more than the estimator; the comparison "
                  "includes these differences (see each environment's settings table):", ""]  # fmt: skip
        lines += [f"- {env}: {', '.join(fields)}" for env, fields in mixed.items()]
        lines.append("")
    if excluded:
        lines += ["Runs left out of the statistics (not finished):", ""]
        lines += [f"- {r.path.name}: {r.status}" for r in excluded]
        lines.append("")
    return "\n".join(lines)
