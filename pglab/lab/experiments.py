"""Comparison grids: agents x environments x seeds, one ``pglab.core.train`` call per run.

A grid lives in one directory::

    OUT/grid.json          the grid's settings (a rerun must use the same ones)
    OUT/status.json        every run's state: finished, failed (with its error), interrupted, ...
    OUT/runs/<env>__<agent>__<seed>/   each run's directory (DESIGN.md, "Contracts")
    OUT/attempts/          partial run directories moved aside before a run is started afresh

Running the same grid again skips finished runs, resumes unfinished runs that left a checkpoint and
starts the others afresh, so a grid survives Ctrl-C, a crashed machine and failing runs alike. The
runs themselves are executed by an engine (:mod:`pglab.lab.engines`): a local process pool, or Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglab.errors import ConfigError, RunInterrupted
from pglab.io.checkpoint import CHECKPOINT, DEFAULT_CHECKPOINT_EVERY
from pglab.io.progress import Progress
from pglab.io.rundir import DirectoryLock, check_not_in_use
from pglab.io.runlog import write_json, write_text_atomic
from pglab.lab.runtask import FINISHED, Outcome, RunTask, read_summary

DEFAULT_STEP_TIMEOUT = 60.0  # far above any step of a working environment, short enough not to stall a grid
# TrainConfig fields a grid sets itself; GridSpec.train_options may set any other one
GRID_FIELDS = frozenset(
    [
        "agent",
        "env",
        "seed",
        "total_steps",
        "overrides",
        "protocol",
        "target_return",
        "run_dir",
        "wandb_mode",
        "wandb_project",
        "wandb_entity",
        "wandb_group",
        "checkpoint_every",
        "step_timeout",
        "torch_threads",
        "progress",
    ]
)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-4"`` -> (0, 1, 2, 3, 4); ``"0,3,7-8"`` -> (0, 3, 7, 8); duplicates are dropped, order kept."""
    seeds: dict[int, None] = {}
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise ConfigError(f"--seeds {text!r}: expected numbers and ranges like 0-9 or 0,3,7-8")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ConfigError(f"--seeds {text!r}: the range {part} is empty; write it low-high")
        seeds.update(dict.fromkeys(range(first, last + 1)))
    return tuple(seeds)


def parse_names(text: str, flag: str) -> tuple[str, ...]:
    """``"a, b,a"`` -> ("a", "b"): a comma-separated list without blanks or repeats."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise ConfigError(f"{flag} needs at least one name, comma-separated")
    return names


def pair_key(env: str, agent: str) -> str:
    """The key of one agent on one environment in GridSpec.chosen."""
    return f"{env}|{agent}"


def point_suffix(point: dict[str, str]) -> str:
    """``{"lr": "1e-3"}`` -> ``"__lr=1e-3"``: a sweep point in a run directory's name ("" for none)."""
    return "".join(f"__{re.sub(r'[^A-Za-z0-9_.=-]+', '-', f'{k}={v}')}" for k, v in point.items())


@dataclass
class GridSpec:
    """What a grid runs: every agent on every environment with every seed, under the same settings."""

    agents: tuple[str, ...]
    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    out: Path
    total_steps: int = 500_000
    overrides: dict[str, str] = field(default_factory=dict)
    protocol: str = "matched"  # matched: only the estimator fields differ between agents; presets: tuned presets
    target_return: float | None = None
    name: str | None = None  # the W&B group; default: the name of the output directory
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    step_timeout: float | None = DEFAULT_STEP_TIMEOUT  # seconds an environment step may take (a stuck run fails)
    wandb_mode: str = "offline"
    wandb_project: str = "pglab"
    wandb_entity: str | None = None
    train_options: dict[str, Any] = field(default_factory=dict)  # any other TrainConfig field, same for every run
    # Sweep points (pglab.lab.tuning): every agent on every env runs every point, each point a few --set values.
    points: tuple[dict[str, str], ...] = ({},)
    # Tuned points: "<env>|<agent>" -> the --set values chosen for that agent on that env alone.
    chosen: dict[str, dict[str, str]] = field(default_factory=dict)
    command_toml: str | None = None  # the `pglab compare` options as a --config file, saved as OUT/compare.toml

    @property
    def group(self) -> str:
        return self.name or Path(self.out).resolve().name

    def settings(self) -> dict[str, Any]:
        """The settings every run of the grid shares; a rerun into the same directory must match them."""
        return {
            "total_steps": self.total_steps,
            "overrides": dict(self.overrides),
            "protocol": self.protocol,
            "target_return": self.target_return,
            "train_options": dict(self.train_options),
            "points": [dict(p) for p in self.points],
            "chosen": {k: dict(v) for k, v in self.chosen.items()},
        }

    def extra_overrides(self, env: str, agent: str) -> list[dict[str, str]]:
        """The --set values each run of ``agent`` on ``env`` adds to the grid's own: one per point."""
        chosen = self.chosen.get(pair_key(env, agent), {})
        return [{**chosen, **point} for point in self.points]

    def configs(self) -> list[Any]:
        """One TrainConfig per run, in a stable order (environment, agent, point, seed)."""
        from pglab.core.config import TrainConfig, run_name

        configs = []
        for env, agent in itertools.product(self.envs, self.agents):
            for extra, seed in itertools.product(self.extra_overrides(env, agent), self.seeds):
                config = TrainConfig(
                    agent=agent,
                    env=env,
                    seed=seed,
                    total_steps=self.total_steps,
                    overrides={**self.overrides, **extra},
                    protocol=self.protocol,
                    target_return=self.target_return,
                    wandb_mode=self.wandb_mode,
                    wandb_project=self.wandb_project,
                    wandb_entity=self.wandb_entity,
                    wandb_group=self.group,
                    checkpoint_every=self.checkpoint_every,
                    step_timeout=self.step_timeout,
                    torch_threads=1,
                    progress=False,
                    **self.train_options,
                )
                config.run_dir = str(Path(self.out) / "runs" / (run_name(config) + point_suffix(extra)))
                configs.append(config)
        return configs

    def _check_train_options(self) -> None:
        from pglab.core.config import TrainConfig

        free = {f.name for f in dataclasses.fields(TrainConfig)} - GRID_FIELDS
        for key in self.train_options:
            if key not in free:
                raise ConfigError(f"train option {key!r} is not one a grid passes through; choose from {sorted(free)}")

    def validate(self) -> None:
        """Catch what would make every run of an agent or environment fail, before any run starts."""
        from pglab.core.environment import resolve_env_id
        from pglab.core.plugins import get_agent
        from pglab.core.preset import resolve_preset

        if self.total_steps <= 0:
            raise ConfigError(f"--total-steps must be positive; got {self.total_steps}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint-every must be >= 0; got {self.checkpoint_every}")
        self._check_train_options()
        self.configs()[0].validate()  # the values of train_options included
        bare_ids = [resolve_env_id(env) for env in self.envs]
        for agent in self.agents:
            spec = get_agent(agent)
            for env, bare_id in zip(self.envs, bare_ids, strict=True):
                for extra in self.extra_overrides(env, agent):
                    try:
                        resolve_preset(spec.preset, bare_id, {**self.overrides, **extra}, self.protocol)
                    except ConfigError as exc:
                        raise ConfigError(f"{agent} on {env}: {exc}") from exc


def left_to_run(spec: GridSpec) -> bool:
    """Whether any run of the grid has not finished, by its summary.json; cheap (no torch), so it can
    decide before the grid is validated and planned whether to start the workers' imports at all."""
    spec._check_train_options()  # the only input that stops configs() itself; the rest is validate()'s
    return any((read_summary(Path(c.run_dir)) or {}).get("status") != FINISHED for c in spec.configs())


def plan(spec: GridSpec) -> tuple[list[RunTask], list[Outcome]]:
    """Split the grid into runs to execute and runs already finished.

    An unfinished run with a checkpoint is resumed. One without (it died before its first
    checkpoint) is moved to OUT/attempts/ and started afresh: its files are kept, never deleted.
    """
    tasks, finished = [], []
    for config in spec.configs():
        task = RunTask(config, resume=False)
        run_dir = task.run_dir
        summary = read_summary(run_dir)
        if summary is not None and summary.get("status") == FINISHED:
            finished.append(Outcome.of(task, FINISHED, "skipped", summary))
        elif (run_dir / CHECKPOINT).is_file() and (run_dir / "config.json").is_file():
            tasks.append(RunTask(config, resume=True))
        else:
            if run_dir.exists():
                check_not_in_use(run_dir)  # never move a run directory from under its writer
                _move_aside(run_dir, Path(spec.out) / "attempts")
            tasks.append(task)
    return tasks, finished


def longest_first(tasks: list[RunTask], step_seconds: dict[str, float]) -> list[RunTask]:
    """``tasks`` in the order to start them: the longest expected first, so the grid's tail is short.

    A run's expected time is its remaining environment steps (its budget, less the steps a resumed
    run already has) times ``step_seconds[env]``, the cost of one environment step. The agent's own
    cost is not known before it runs and is left out; equal expectations keep the grid's order.
    """

    def expected(task: RunTask) -> float:
        done = (read_summary(task.run_dir) or {}).get("global_step") if task.resume else 0
        remaining = max(task.config.total_steps - int(done or 0), 0)
        return remaining * step_seconds.get(task.config.env, 1.0)

    return sorted(tasks, key=expected, reverse=True)  # sorted is stable: ties keep their order


def probe_step_seconds(env_ids: Iterable[str], steps: int = 64, num_envs: int = 8) -> dict[str, float]:
    """Seconds per environment step of each environment, timed on a few random vector steps.

    Environments differ by an order of magnitude (Acrobot-v1 integrates its dynamics with RK4 in
    Python, CartPole-v1 steps all copies in numpy at once), which decides most of a run's length at
    an equal budget. An environment that fails here counts as 1 s a step: it fails fast in its run.
    """
    from pglab.core.environment import make_vector_env

    costs = {}
    for env_id in env_ids:
        try:
            envs = make_vector_env(env_id, num_envs)
            try:
                envs.reset(seed=0)
                envs.action_space.seed(0)
                start = time.perf_counter()
                for _ in range(steps):
                    envs.step(envs.action_space.sample())
                costs[env_id] = (time.perf_counter() - start) / (steps * num_envs)
            finally:
                envs.close()
        except Exception:
            costs[env_id] = 1.0
    return costs


def _move_aside(run_dir: Path, attempts: Path) -> Path:
    attempts.mkdir(parents=True, exist_ok=True)
    target = attempts / f"{run_dir.name}__{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while target.exists():
        target = attempts / f"{run_dir.name}__{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
        suffix += 1
    shutil.move(str(run_dir), str(target))
    return target


def _check_settings(spec: GridSpec) -> None:
    """A rerun into the same directory must share the settings; agents, envs and seeds may grow."""
    path = Path(spec.out) / "grid.json"
    if path.is_file():
        saved = json.loads(path.read_text()).get("settings", {})
        for key, value in spec.settings().items():
            if key in saved and saved[key] != value:
                raise ConfigError(
                    f"{spec.out} holds a grid run with {key}={saved[key]!r}, not {value!r}; "
                    "rerun with the same settings to continue it, or choose another --out"
                )


@dataclass
class GridResult:
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def interrupted(self) -> list[Outcome]:
        """Runs stopped before their budget while the grid went on (a Ctrl-C or SIGINT sent to one worker)."""
        return [o for o in self.outcomes if o.status == "interrupted"]

    def table(self) -> str:
        """One line per run: status, steps, final return, wall time, and the error of a failed run."""
        lines = [f"{'run':<48} {'status':<11} {'steps':>9} {'return':>9} {'wall s':>8}  error"]
        for o in sorted(self.outcomes, key=lambda o: (o.env, o.agent, o.seed)):
            ret = "-" if o.final_return is None else f"{o.final_return:.1f}"
            wall = "-" if o.wall_s is None else f"{o.wall_s:.1f}"
            steps = "-" if o.global_step is None else str(o.global_step)
            lines.append(f"{o.run:<48} {o.status:<11} {steps:>9} {ret:>9} {wall:>8}  {o.error or ''}".rstrip())
        return "\n".join(lines)


class StatusFile:
    """OUT/status.json: every run's latest Outcome, rewritten after each one so it is always current."""

    def __init__(self, path: Path, outcomes: Iterable[Outcome]):
        self.path = path
        self.entries = {o.run: o for o in outcomes}

    def record(self, outcome: Outcome) -> None:
        self.entries[outcome.run] = outcome
        tmp = self.path.with_suffix(".json.tmp")
        write_json(tmp, {run: dataclasses.asdict(o) for run, o in sorted(self.entries.items())})
        os.replace(tmp, self.path)


def run_grid(
    spec: GridSpec,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> GridResult:
    """Run every unfinished run of the grid on ``engine``; returns every run's outcome.

    Interrupting the grid (Ctrl-C) lets the running runs save a checkpoint; their outcomes say
    "interrupted" and the same command resumes them.
    """
    from pglab.lab.engines import get_engine, warm_up

    run_tasks = get_engine(engine, workers, ray_address)  # fails fast, e.g. when Ray is not installed
    if left_to_run(spec):  # a finished grid's rerun starts no worker: it ends in a fraction of a second
        warm_up(engine)  # the workers' imports, while the settings are checked and the grid planned
    spec.validate()
    _check_settings(spec)
    # One grid at a time in OUT: planning moves unfinished runs aside and status.json has one writer.
    with DirectoryLock(Path(spec.out), "compare"):
        return _run_planned(spec, run_tasks, workers, ray_address, progress)


def _run_planned(
    spec: GridSpec, run_tasks: Any, workers: int | None, ray_address: str | None, progress: bool
) -> GridResult:
    """run_grid's work, under the grid's lock: plan, record, execute."""
    out = Path(spec.out)
    tasks, finished = plan(spec)
    tasks = longest_first(tasks, probe_step_seconds(dict.fromkeys(task.config.env for task in tasks)))
    grid = {
        "name": spec.group,
        "agents": list(spec.agents),
        "envs": list(spec.envs),
        "seeds": list(spec.seeds),
        "settings": spec.settings(),
    }
    write_json(out / "grid.json", grid)
    if spec.command_toml is not None:
        write_text_atomic(out / "compare.toml", spec.command_toml)
    status = StatusFile(out / "status.json", _previous_outcomes(out / "status.json"))
    for outcome in finished:
        status.record(outcome)
    outcomes = list(finished)
    counts = {"done": len(finished), "failed": 0}
    total = len(tasks) + len(finished)
    bar = Progress(total=total, initial=len(finished), unit="run", enabled=progress)
    bar.update(0, done=counts["done"], failed=0, left=len(tasks))

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        status.record(outcome)
        counts["done"] += outcome.status == FINISHED
        counts["failed"] += outcome.failed
        bar.update(1, done=counts["done"], failed=counts["failed"], left=total - len(outcomes))
        if outcome.error:
            bar.write(f"{outcome.run}: {outcome.status}: {outcome.error}")

    running = run_tasks(tasks, workers=workers, address=ray_address)
    try:
        for outcome in running:
            record(outcome)
    except KeyboardInterrupt:
        # Ctrl-C reached either the engine (which then reported every run still pending and ended) or
        # this loop, between two outcomes: then the engine is told, and reports them now.
        with contextlib.suppress(KeyboardInterrupt, StopIteration):
            record(running.throw(KeyboardInterrupt()))
            for outcome in running:
                record(outcome)
        raise RunInterrupted(
            f"{out / 'status.json'} records every run; the running runs saved their checkpoints; "
            "rerun the same command to continue the grid"
        ) from None
    finally:
        bar.close()
    return GridResult(outcomes)


def _previous_outcomes(path: Path) -> list[Outcome]:
    try:
        return [Outcome(**entry) for entry in json.loads(path.read_text()).values()]
    except (OSError, ValueError, TypeError):
        return []
