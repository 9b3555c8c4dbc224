"""An equal tuning budget: ``pglab compare --sweep KEY=v1,v2 --tune-seeds A-B --seeds C-D``.

Comparing agents at one setting favours whichever agent that setting happens to suit. Here every
agent gets the same budget instead: every agent runs every sweep point (the product of the
``--sweep`` values) on the tuning seeds; per agent and environment, the point with the best mean
criterion over those seeds is chosen, and only the chosen point runs on the evaluation seeds, which
never overlap the tuning seeds (a point chosen on a seed must not be judged on it again). The layout::

    OUT/tune/      a grid (pglab.lab.experiments): every agent x env x point x tuning seed
    OUT/eval/      a grid: every agent x env at its chosen point x evaluation seed
    OUT/tuning.json, OUT/tuning.md   each agent's criterion at every point (mean, 95% CI), the choice

Both grids are resumable as any grid is and share one W&B group. Criteria (higher is better, but
steps to target, where fewer is better):

* ``auc``: the area under the learning curve divided by the step budget, i.e. the mean return over
  training (``charts/episodic_return`` interpolated onto 101 evenly spaced steps from 0 to the
  budget; before a run's first episode it holds its first value, after its last row its last, so a
  run stopped at the target keeps its final level). It rewards learning early *and* well.
* ``final``: the mean return of the last 100 episodes (summary.json's ``return_mean_last100``).
* ``steps-to-target``: the step at which ``--target-return`` was reached; a run that never reached
  it counts as the whole budget.

**Ties.** Points whose mean criteria are equal (all runs of a saturated task at 500, or none reaching
the target) cannot be told apart by the tuning runs; of them the one listed first in the sweep is
chosen (the order of ``--sweep`` values, the first key varying slowest): the same command always
chooses the same point, and tuning.json (``ties``) and tuning.md say the choice was a tie.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pglab.errors import ConfigError
from pglab.io.runlog import write_json, write_text_atomic
from pglab.lab import stats
from pglab.lab.experiments import GridResult, GridSpec, pair_key, run_grid
from pglab.lab.results import FEW_SEEDS
from pglab.lab.runtask import FINISHED

CRITERIA = ("auc", "final", "steps-to-target")
CRITERION_TEXT = {
    "auc": "area under the learning curve / step budget (mean return over training; higher is better)",
    "final": "final return, the mean of the last 100 episodes (higher is better)",
    "steps-to-target": "steps until the target return (the budget if never reached; lower is better)",
}
AUC_POINTS = 101


def parse_sweep(pairs: tuple[str, ...] | list[str]) -> dict[str, tuple[str, ...]]:
    """``["lr=1e-3,3e-3"]`` -> ``{"lr": ("1e-3", "3e-3")}``; ConfigError for a malformed or repeated key."""
    sweep: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        parsed = tuple(dict.fromkeys(v.strip() for v in values.split(",") if v.strip()))
        if not sep or not key or not parsed:
            raise ConfigError(f"--sweep {pair!r}: expected KEY=v1,v2,... (e.g. --sweep lr=3e-4,1e-3,3e-3)")
        if key in sweep:
            raise ConfigError(f"--sweep {key} is given twice; list all its values in one --sweep {key}=v1,v2")
        sweep[key] = parsed
    return sweep


def sweep_points(sweep: dict[str, tuple[str, ...]]) -> tuple[dict[str, str], ...]:
    """Every combination of the swept values, in the order given."""
    keys = list(sweep)
    return tuple(dict(zip(keys, values, strict=True)) for values in itertools.product(*sweep.values()))


@dataclass
class SweepSpec:
    """An equal-budget comparison: ``grid`` names the agents, envs, evaluation seeds and shared settings."""

    grid: GridSpec
    sweep: dict[str, tuple[str, ...]]
    tune_seeds: tuple[int, ...]
    criterion: str = "auc"

    def validate(self) -> None:
        if not self.sweep:
            raise ConfigError("an equal tuning budget needs at least one --sweep KEY=v1,v2,...")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"--criterion must be one of {', '.join(CRITERIA)}; got {self.criterion!r}")
        if self.criterion == "steps-to-target" and self.grid.target_return is None:
            raise ConfigError("--criterion steps-to-target needs --target-return")
        overlap = sorted(set(self.tune_seeds) & set(self.grid.seeds))
        if overlap:
            raise ConfigError(
                f"--tune-seeds and --seeds overlap in {', '.join(map(str, overlap))}: a point chosen on a seed must "
                "not be evaluated on it; choose disjoint ranges, e.g. --tune-seeds 100-102 --seeds 0-9"
            )
        if self.grid.points != ({},) or self.grid.chosen:
            raise ConfigError("a sweep's grid must not carry points of its own")
        self.tuning_grid().validate()

    def tuning_grid(self) -> GridSpec:
        return dataclasses.replace(
            self.grid,
            seeds=self.tune_seeds,
            out=Path(self.grid.out) / "tune",
            name=self.grid.group,
            points=sweep_points(self.sweep),
        )

    def eval_grid(self, chosen: dict[str, dict[str, str]]) -> GridSpec:
        return dataclasses.replace(self.grid, out=Path(self.grid.out) / "eval", name=self.grid.group, chosen=chosen)


def criterion_value(run_dir: Path, criterion: str, budget: int) -> float | None:
    """The run's criterion (see the module docstring), or None if the run has no finished summary."""
    from pglab.lab.results import RETURN, load_run

    run = load_run(run_dir)
    if run.status != FINISHED:
        return None
    if criterion == "final":
        return run.final_return
    if criterion == "steps-to-target":
        solved = run.summary.get("solved_at_step")
        return float(budget if solved is None else solved)
    if RETURN not in run.curves:
        return None
    steps, values = run.curves[RETURN]
    grid = np.linspace(0.0, float(budget), AUC_POINTS)
    return float(np.interp(grid, steps, values, left=values[0], right=values[-1]).mean())


@dataclass
class PointScore:
    """One agent's criterion at one sweep point over the tuning seeds."""

    point: dict[str, str]
    values: list[float]  # one per finished tuning run
    mean: float
    low: float  # 95% Student-t interval of the mean; NaN with one seed
    high: float


def score_points(tuning: GridSpec, criterion: str) -> dict[str, list[PointScore]]:
    """``"<env>|<agent>"`` -> that agent's PointScore at every point, in sweep order."""
    runs: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Path]] = {}
    for config in tuning.configs():
        point = tuple((k, config.overrides[k]) for k in tuning.points[0])
        runs.setdefault((config.env, config.agent, point), []).append(Path(config.run_dir))
    scores: dict[str, list[PointScore]] = {}
    for (env, agent, point), dirs in runs.items():
        values = [v for v in (criterion_value(d, criterion, tuning.total_steps) for d in dirs) if v is not None]
        mean, _, low, high = stats.t_interval(values) if values else (math.nan, 0.0, math.nan, math.nan)
        scores.setdefault(pair_key(env, agent), []).append(PointScore(dict(point), values, mean, low, high))
    return scores


def best_points(scores: list[PointScore], criterion: str) -> list[PointScore]:
    """The points that share the best mean, in sweep order; points without a finished run are not eligible."""
    eligible = [s for s in scores if s.values]
    if not eligible:
        raise ConfigError("no sweep point has a finished tuning run; rerun the same command to retry them")
    sign = -1.0 if criterion == "steps-to-target" else 1.0
    best = max(sign * s.mean for s in eligible)
    return [s for s in eligible if sign * s.mean == best]


def choose(scores: list[PointScore], criterion: str) -> PointScore:
    """The point with the best mean; of tied points the first in sweep order (the module docstring's rule)."""
    return best_points(scores, criterion)[0]


@dataclass
class SweepResult:
    tuning: GridResult
    evaluation: GridResult | None  # None when tuning runs failed: the budget would not be equal
    chosen: dict[str, dict[str, str]]

    @property
    def failed(self) -> list[Any]:
        return self.tuning.failed + (self.evaluation.failed if self.evaluation else [])

    @property
    def interrupted(self) -> list[Any]:
        return self.tuning.interrupted + (self.evaluation.interrupted if self.evaluation else [])

    @property
    def outcomes(self) -> list[Any]:
        return self.tuning.outcomes + (self.evaluation.outcomes if self.evaluation else [])

    def table(self) -> str:
        parts = ["tuning runs:", self.tuning.table()]
        if self.chosen:
            parts.append("chosen points:")
            parts += [f"  {key.replace('|', ' / ')}: {point}" for key, point in self.chosen.items()]
        if self.evaluation is not None:
            parts += ["evaluation runs:", self.evaluation.table()]
        return "\n".join(parts)


def run_sweep(
    spec: SweepSpec, engine: str = "local", workers: int | None = None, ray_address: str | None = None,
    progress: bool = True,
) -> SweepResult:  # fmt: skip
    """Tune every agent alike, choose per agent and env, evaluate the choices; resumable as a grid is."""
    spec.validate()
    tuning = spec.tuning_grid()
    tuned = run_grid(tuning, engine=engine, workers=workers, ray_address=ray_address, progress=progress)
    if tuned.failed or tuned.interrupted:  # choosing without them would give the agents unequal budgets
        return SweepResult(tuned, None, {})
    scores = score_points(tuning, spec.criterion)
    chosen = {key: choose(rows, spec.criterion).point for key, rows in scores.items()}
    write_tuning(spec, scores, chosen)
    evaluated = run_grid(spec.eval_grid(chosen), engine=engine, workers=workers, ray_address=ray_address,
                         progress=progress)  # fmt: skip
    return SweepResult(tuned, evaluated, chosen)


def write_tuning(spec: SweepSpec, scores: dict[str, list[PointScore]], chosen: dict[str, dict[str, str]]) -> None:
    """OUT/tuning.json (every number) and OUT/tuning.md (the sensitivity tables, read by pglab report)."""
    out = Path(spec.grid.out)
    payload = {
        "criterion": spec.criterion,
        "criterion_text": CRITERION_TEXT[spec.criterion],
        "sweep": {k: list(v) for k, v in spec.sweep.items()},
        "tune_seeds": list(spec.tune_seeds),
        "eval_seeds": list(spec.grid.seeds),
        "total_steps": spec.grid.total_steps,
        "chosen": chosen,
        "ties": {  # "<env>|<agent>" -> the points that shared the best mean, where more than one did
            key: [s.point for s in tied]
            for key, rows in scores.items()
            if len(tied := best_points(rows, spec.criterion)) > 1
        },
        "scores": {key: [dataclasses.asdict(s) for s in rows] for key, rows in scores.items()},
    }
    write_json(out / "tuning.json", _finite(payload))
    write_text_atomic(out / "tuning.md", tuning_markdown(payload))


def _finite(value: Any) -> Any:
    """NaN -> None, so that tuning.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def tuning_markdown(payload: dict[str, Any]) -> str:
    """The sensitivity of every agent to the swept values, and the point chosen, as markdown tables."""
    seeds = payload["tune_seeds"]
    lines = [
        "## Equal tuning budget",
        "",
        f"Every agent ran every point of the sweep {json.dumps(payload['sweep'])} on the tuning seeds "
        f"{', '.join(map(str, seeds))}, {payload['total_steps']:,} steps per run; per agent and environment the "
        f"point with the best mean criterion was run on the evaluation seeds {_seed_text(payload['eval_seeds'])}. "
        f"Criterion: {payload['criterion_text']}. Cells: mean over the tuning seeds [95% Student-t CI]; "
        "**bold**: the chosen point.",
    ]
    if len(seeds) < FEW_SEEDS:
        lines += ["", f"Caveat: {len(seeds)} tuning seeds per point; the intervals are wide and the choice is noisy."]
    edges = at_the_edge(payload["sweep"], payload["chosen"])
    if edges:
        lines += ["", f"Chosen at the edge of the sweep ({'; '.join(edges)}): the best value may lie beyond the "
                  "values swept; widen the sweep to find out."]  # fmt: skip
    for key, points in payload.get("ties", {}).items():
        texts = [", ".join(f"{k}={v}" for k, v in p.items()) for p in points]
        lines += ["", f"Tie: {key.replace('|', ' / ')} has the same mean at {' and '.join(texts)}; the tuning runs "
                  "cannot tell them apart, and the first in sweep order was chosen."]  # fmt: skip
    by_env: dict[str, dict[str, list[dict]]] = {}
    for key, rows in payload["scores"].items():
        env, _, agent = key.partition("|")
        by_env.setdefault(env, {})[agent] = rows
    for env, agents in by_env.items():
        points = [row["point"] for row in next(iter(agents.values()))]
        header = ["agent", *(", ".join(f"{k}={v}" for k, v in p.items()) for p in points)]
        lines += ["", f"### {env}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for agent, rows in agents.items():
            best = payload["chosen"].get(f"{env}|{agent}")
            cells = [agent]
            for row in rows:
                cell = _score_text(row)
                cells.append(f"**{cell}**" if row["point"] == best else cell)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def at_the_edge(sweep: dict[str, list[str]], chosen: dict[str, dict[str, str]]) -> list[str]:
    """``"<env>|<agent>: key=value"`` for every chosen value that is the first or last of 3+ swept values."""
    return [
        f"{key.replace('|', ' / ')}: {name}={value}"
        for key, point in chosen.items()
        for name, value in point.items()
        if len(sweep[name]) >= 3 and value in (sweep[name][0], sweep[name][-1])
    ]


def _score_text(row: dict[str, Any]) -> str:
    if not row["values"]:
        return "no finished run"
    mean, low, high = row["mean"], row["low"], row["high"]
    interval = "" if low is None or high is None else f" [{low:,.1f}, {high:,.1f}]"
    return f"{mean:,.1f}{interval} (n={len(row['values'])})"


def _seed_text(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) if len(seeds) <= 6 else f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
