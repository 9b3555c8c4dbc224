"""Runs as data, shared by the markdown and HTML reports and the figures: reading run directories,
grouping the runs that may be aggregated, their statistics, curves and bands.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pglab.errors import ConfigError
from pglab.io.runlog import note
from pglab.lab import stats
from pglab.lab.runlist import metrics_row, read_run_files, run_directories

RETURN = "charts/episodic_return"


FEW_SEEDS = 5  # statistics over fewer seeds carry a caveat


# config.json keys that are not settings of the experiment: the seed, bookkeeping, and keys that
# other entries already hold (env and agent are the group's own; overrides and num_envs resolve into
# the hyperparameters, which are compared field by field)
NOT_SETTINGS = frozenset(
    [
        "agent",
        "env",
        "env_kwargs",
        "seed",
        "run_dir",
        "overrides",
        "num_envs",
        "hyperparameters",
        "estimator_fields",
        "observation_space",
        "action_space",
        "versions",
        "wandb_mode",
        "wandb_project",
        "wandb_entity",
        "wandb_group",
        "wandb_tags",
        "wandb_run_id",
        "checkpoint_every",
        "torch_threads",
        "progress",
        "capture_video",
    ]
)


GRADS_PREFIX = "grads/"


# Plain names (with units) of the estimator diagnostics pglab.diagnostics.grads logs, for figure axes and tables
GRADS_LABELS = {
    "grads/estimator_variance": "variance of one estimate (sum over parameters)",
    "grads/estimator_snr": "signal-to-noise ratio |mean| / √variance",
    "grads/estimator_cosine": "cosine of one estimate to the reference",
    "grads/estimator_cosine_of_mean": "cosine of the mean estimate to the reference",
    "grads/estimator_bias_norm": "bias norm |mean − exact gradient|",
    "grads/estimator_ms": "time per estimate (ms)",
}


GRADS_TIMINGS = frozenset(["grads/estimator_ms"])  # costs, drawn apart from the statistics


RESULT_COLUMNS = (
    "env",
    "agent",
    "seed",
    "status",
    "global_step",
    "wall_s",
    "sps",
    "episodes",
    "final_return",
    "final_return_std",
    "target_return",
    "solved_at_step",
    "solved_at_wall_s",
    "run_dir",
)


AGGREGATE_COLUMNS = (
    "env",
    "agent",
    "group",
    "runs",
    "seeds",
    "final_return_iqm",
    "final_return_iqm_low",
    "final_return_iqm_high",
    "final_return_mean",
    "final_return_std",
    "target_return",
    "solved",
    "steps_to_target_median",
    "wall_s_to_target_median",
)


# How every number of the report is made; both report.md and report.html say it.
METHODS = (
    "Final return: the mean return of the last 100 episodes of a run (summary.json's return_mean_last100). "
    "IQM: the mean of the middle 50% of the seeds' final returns; its 95% CI and every band are percentile "
    f"bootstraps over seeds ({stats.BOOTSTRAP_SAMPLES} resamples, fixed seed). Learning curves: each run's "
    "`charts/episodic_return` linearly interpolated onto a common step grid, never extrapolated, and drawn where "
    "at least half of the seeds have a value (runs stopped by the target return end early). Performance profile: "
    "the fraction of runs whose final return exceeds each threshold. Per-run numbers: results.csv; per-agent "
    "numbers: aggregates.csv."
)


@dataclass
class RunRecord:
    """One run directory as the report sees it."""

    path: Path
    env: str
    agent: str
    seed: int
    status: str
    summary: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # metric -> (steps, values)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting of the run but its seed: config.json's own keys and each hyperparameter."""
        own = {k: v for k, v in self.config.items() if k not in NOT_SETTINGS}
        hyperparameters = self.config.get("hyperparameters")
        return {**own, **(hyperparameters if isinstance(hyperparameters, dict) else {})}

    @property
    def estimator_fields(self) -> set[str]:
        return set(self.config.get("estimator_fields") or ())

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def final_return(self) -> float | None:
        return self.summary.get("return_mean_last100")

    def row(self) -> dict[str, Any]:
        s = self.summary
        return {
            "env": self.env,
            "agent": self.agent,
            "seed": self.seed,
            "status": self.status,
            "global_step": s.get("global_step"),
            "wall_s": s.get("wall_s"),
            "sps": s.get("sps"),
            "episodes": s.get("episodes"),
            "final_return": self.final_return,
            "final_return_std": s.get("return_std_last100"),
            "target_return": s.get("target_return"),
            "solved_at_step": s.get("solved_at_step"),
            "solved_at_wall_s": s.get("solved_at_wall_s"),
            "run_dir": str(self.path),
        }


def _read_curves(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The episodic return and every grads/* metric as (steps, values), skipping rows without them."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    cut = []
    for number, line in enumerate(lines, 1):
        row = metrics_row(line, path, number)
        if row is None:  # a row cut short by a kill or a full disk: kept in the file, left out of the curves
            cut.append(str(number))
            continue
        for key, value in row.items():
            if (key == RETURN or key.startswith(GRADS_PREFIX)) and isinstance(value, (int, float)):
                steps, values = series.setdefault(key, ([], []))
                steps.append(float(row["global_step"]))
                values.append(float(value))
    if cut:
        note(f"{path}: line {', '.join(cut)} cut mid-write, left out of the curves (the file is left as it is)")
    return {key: (np.array(steps), np.array(values)) for key, (steps, values) in series.items()}


def env_label(env: str, env_kwargs: dict[str, Any] | None) -> str:
    """The environment a run trained on: its id without a ``module:`` prefix (the module only registers
    the id), with its keyword arguments, e.g. ``FrozenLake-v1 (is_slippery=false, map_name="8x8")``."""
    bare = str(env).rpartition(":")[2]
    if not env_kwargs:
        return bare
    return f"{bare} ({', '.join(f'{k}={_value_text(v)}' for k, v in sorted(env_kwargs.items()))})"


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) and " " not in value else json.dumps(value)


def load_run(path: Path) -> RunRecord:
    config, summary = read_run_files(path)
    source = {**config, **summary}
    if not {"agent", "env", "seed"} <= source.keys():
        raise ConfigError(f"{path} is not a pglab run directory (no config.json or summary.json)")
    return RunRecord(
        path=path,
        env=env_label(source["env"], config.get("env_kwargs")),
        agent=str(source["agent"]),
        seed=int(source["seed"]),
        status=summary.get("status", "no summary"),
        summary=summary,
        curves=_read_curves(path / "metrics.jsonl"),
        config=config,
    )


def find_runs(directory: Path) -> list[RunRecord]:
    """The run directory itself, or every run below it (a grid's runs/, or any folder of runs).

    Runs a grid moved aside to attempts/ are not runs of the grid any more and are skipped.
    """
    paths = run_directories(directory)
    if not paths:
        raise ConfigError(f"{directory} holds no pglab run; pass a grid's --out or a run directory")
    return sorted((load_run(p) for p in paths), key=lambda r: (r.env, r.agent, r.seed))


@dataclass
class AgentResult:
    """The statistics of one agent on one environment, over its finished runs (one per seed)."""

    env: str
    agent: str
    runs: list[RunRecord]
    final: stats.Estimate
    target_return: float | None
    solved_steps: list[float]
    solved_wall_s: list[float]
    label: str = ""  # the agent, with the settings that set this group apart from its other groups

    @property
    def finals(self) -> np.ndarray:
        return np.array([r.final_return for r in self.runs], dtype=np.float64)

    @property
    def seeds(self) -> int:
        return len({r.seed for r in self.runs})

    def row(self) -> dict[str, Any]:
        finals = self.finals
        one = len(self.runs) == 1  # one seed has no interval
        return {
            "env": self.env,
            "agent": self.agent,
            "group": self.label or self.agent,
            "runs": len(self.runs),
            "seeds": self.seeds,
            "final_return_iqm": self.final.value,
            "final_return_iqm_low": None if one else self.final.low,
            "final_return_iqm_high": None if one else self.final.high,
            "final_return_mean": float(finals.mean()),
            "final_return_std": float(finals.std(ddof=1)) if finals.size > 1 else 0.0,
            "target_return": self.target_return,
            "solved": len(self.solved_steps),
            "steps_to_target_median": float(np.median(self.solved_steps)) if self.solved_steps else None,
            "wall_s_to_target_median": float(np.median(self.solved_wall_s)) if self.solved_wall_s else None,
        }


def summarize(env: str, agent: str, runs: list[RunRecord], label: str = "") -> AgentResult:
    """IQM of the final returns with its bootstrap CI, and who reached the target and when."""
    finals = np.array([r.final_return for r in runs], dtype=np.float64)
    targets = {r.summary.get("target_return") for r in runs} - {None}
    solved = [r for r in runs if r.summary.get("solved_at_step") is not None]
    return AgentResult(
        env=env,
        agent=agent,
        runs=runs,
        final=stats.bootstrap_iqm(finals),
        target_return=targets.pop() if len(targets) == 1 else None,
        solved_steps=[float(r.summary["solved_at_step"]) for r in solved],
        solved_wall_s=[
            float(r.summary["solved_at_wall_s"]) for r in solved if r.summary.get("solved_at_wall_s") is not None
        ],  # 0.0 s is a time, not a missing one
        label=label or agent,
    )


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def group_runs(runs: list[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """env -> group label -> runs: runs pooled only when they share env, agent and every setting but the seed.

    An agent with runs of several settings on one environment gets one group per setting, labelled
    ``agent [key=value, ...]`` with the settings that tell its groups apart.
    """
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault((run.env, run.agent, _key(run.settings)), []).append(run)
    labelled: dict[str, dict[str, list[RunRecord]]] = {}
    for (env, agent, _), members in sorted(groups.items(), key=lambda item: item[0]):
        siblings = [m for (e, a, _), m in groups.items() if (e, a) == (env, agent)]
        label = agent
        if len(siblings) > 1:
            differing = differing_fields([g[0].settings for g in siblings])
            label += " [" + ", ".join(f"{k}={_value_text(members[0].settings.get(k))}" for k in differing) + "]"
        labelled.setdefault(env, {})[label] = members
    return labelled


def differing_fields(settings: list[dict[str, Any]]) -> list[str]:
    """The fields whose values differ among the settings that have them, sorted."""
    keys = sorted({k for s in settings for k in s})
    return [k for k in keys if len({_key(s[k]) for s in settings if k in s}) > 1]


def curve_band(runs: list[RunRecord], metric: str, grid: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """Mean of ``metric`` over the runs on ``grid`` with its 95% bootstrap band; None if no run logged it.

    A step is left out (NaN) where fewer than half of the runs have a value: runs stopped early by
    --target-return would otherwise leave the tail of the curve to the slowest seed or two.
    """
    curves = [stats.interpolate_onto(*r.curves[metric], grid) for r in runs if metric in r.curves]
    if not curves:
        return None
    stacked = np.stack(curves)
    thin = np.isfinite(stacked).sum(axis=0) < math.ceil(len(curves) / 2)
    band = stats.bootstrap_mean_curve(stacked)
    for values in band:
        values[thin] = np.nan
    return band


def step_grid(runs: Iterable[RunRecord], metric: str = RETURN) -> np.ndarray:
    logged = [r.curves[metric][0] for r in runs if metric in r.curves and r.curves[metric][0].size]
    if not logged:
        return np.array([])
    return stats.common_grid([s[0] for s in logged], [s[-1] for s in logged])


def curve_bands(
    by_agent: dict[str, list[RunRecord]], metric: str
) -> tuple[np.ndarray, dict[str, tuple[tuple[np.ndarray, ...], int]]]:
    """Every agent's mean curve of ``metric`` with its band on one common grid: (grid, agent -> (band, runs)).

    Agents none of whose runs logged ``metric`` are left out; the figures of both reports draw these.
    """
    grid = step_grid([r for runs in by_agent.values() for r in runs], metric)
    bands = {}
    for agent, runs in by_agent.items():
        band = curve_band(runs, metric, grid) if grid.size else None
        if band is not None:
            bands[agent] = (band, sum(metric in r.curves for r in runs))
    return grid, bands


def profile_bands(by_agent: dict[str, list[RunRecord]]) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, ...]]]:
    """Performance profiles: 101 thresholds spanning every final return, and per agent the fraction of
    its runs above each threshold with a 95% bootstrap band."""
    finals = {agent: np.array([r.final_return for r in runs], dtype=np.float64) for agent, runs in by_agent.items()}
    every = np.concatenate(list(finals.values()))
    thresholds = np.linspace(every.min(), every.max(), 101) if every.max() > every.min() else every[:1]
    return thresholds, {agent: stats.performance_profile(scores, thresholds) for agent, scores in finals.items()}


def grads_metrics(by_agent: dict[str, list[RunRecord]]) -> list[str]:
    """The ``grads/*`` metrics any of the runs logged, sorted."""
    return sorted({k for runs in by_agent.values() for r in runs for k in r.curves if k.startswith(GRADS_PREFIX)})


def positive(by_agent: dict[str, list[RunRecord]], metric: str) -> bool:
    """Whether every logged value of ``metric`` is > 0: a log axis can show it."""
    return all((r.curves[metric][1] > 0).all() for runs in by_agent.values() for r in runs if metric in r.curves)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@dataclass
class Report:
    runs: list[RunRecord]
    results: list[AgentResult]
    files: list[Path]
    groups: dict[str, dict[str, list[RunRecord]]] = field(default_factory=dict)  # env -> agent -> finished runs


def fmt(value: float | None, digits: int = 1) -> str:
    """A number as the report prints it (thousands separated), '-' where there is none."""
    return "-" if value is None else f"{value:,.{digits}f}"


def _interval(r: AgentResult) -> str:
    if len(r.runs) == 1:
        return f"{fmt(r.final.value)} (one seed: no interval)"
    return f"{fmt(r.final.value)} [{fmt(r.final.low)}, {fmt(r.final.high)}]"


def result_table(results: list[AgentResult]) -> tuple[list[str], list[list[str]]]:
    """The per-group table of one environment, as text cells: (header, rows). Each group's own target
    where the runs had one (another group's target is never borrowed); ⚠ marks fewer than 5 seeds.
    report.md and report.html both show it."""
    targets = any(r.target_return is not None for r in results)
    header = ["agent", "seeds", "final return IQM [95% CI]", "mean ± std"]
    if targets:
        header += ["target", "seeds reaching it", "steps to target (median [min, max])", "wall s to target (median)"]
    rows = []
    for r in results:
        row = r.row()
        seeds = str(r.seeds) + (f" ({len(r.runs)} runs)" if len(r.runs) != r.seeds else "")
        cells = [
            r.label,
            seeds + (" ⚠" if r.seeds < FEW_SEEDS else ""),
            _interval(r),
            f"{fmt(row['final_return_mean'])} ± {fmt(row['final_return_std'])}",
        ]
        if targets and r.target_return is None:
            cells += ["none", "-", "-", "-"]
        elif targets:
            steps = r.solved_steps
            cells += [
                f"{r.target_return:g}",
                f"{len(steps)}/{len(r.runs)}",
                f"{fmt(np.median(steps), 0)} [{fmt(min(steps), 0)}, {fmt(max(steps), 0)}]" if steps else "-",
                fmt(row["wall_s_to_target_median"]),
            ]
        rows.append(cells)
    return header, rows


@dataclass
class SettingsComparison:
    """The groups of one environment, their resolved settings side by side."""

    labels: list[str]
    rows: list[tuple[str, str, list[str]]]  # (field, "" | "estimator" | "beyond", one cell per group)
    beyond: list[str]  # the fields that differ beyond the estimator


def compare_settings(by_group: dict[str, list[RunRecord]]) -> SettingsComparison:
    """Every field of the groups' settings with its value per group ("n/a" where a group has no such field),
    marked "estimator" where it differs and every group having it declares it an estimator field, "beyond"
    where it differs otherwise; report.md and report.html both show it."""
    labels = list(by_group)
    settings = {label: runs[0].settings for label, runs in by_group.items()}
    estimator = {label: runs[0].estimator_fields for label, runs in by_group.items()}
    differing = set(differing_fields(list(settings.values())))
    beyond = sorted(k for k in differing if not all(k in estimator[label] for label in labels if k in settings[label]))
    rows = []
    for key in sorted({k for s in settings.values() for k in s}):
        mark = ("beyond" if key in beyond else "estimator") if key in differing else ""
        rows.append(
            (key, mark, [_value_text(settings[label][key]) if key in settings[label] else "n/a" for label in labels])
        )
    return SettingsComparison(labels, rows, beyond)
