"""The Python API: one function per ``pglab`` command, the same names and the same options.

Each command line is a thin wrapper around these functions (``pglab train`` parses its flags and
calls :func:`train`, and so on), so a notebook and a shell get the same behaviour and the same
one-line errors (:class:`pglab.errors.PglabError`). Heavy modules (torch, matplotlib) are imported
inside the functions, so ``import pglab`` stays light.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pglab.errors import ConfigError


def split_options(cls: type, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` split into the fields of dataclass ``cls`` and the rest."""
    names = {f.name for f in dataclasses.fields(cls)}
    own = {k: v for k, v in options.items() if k in names}
    return own, {k: v for k, v in options.items() if k not in names}


def refuse_unknown(rest: Mapping[str, Any], known: Iterable[str], what: str) -> None:
    """ConfigError naming the first unknown keyword and its close matches."""
    for key in rest:
        close = difflib.get_close_matches(key, sorted(known), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"
        raise ConfigError(f"{what}: unknown option {key!r}; {hint}")


def names(value: str | Iterable[str], what: str) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` -> ("a", "b")."""
    from pglab.lab.experiments import parse_names

    return parse_names(value if isinstance(value, str) else ",".join(value), what)


def train(config: Any = None, /, **options: Any) -> dict[str, Any]:
    """Train one agent on one environment; returns the summary, with its ``run_dir``.

    ``options`` are :class:`pglab.core.train.TrainConfig` fields (agent, env, seed, total_steps, run_dir,
    target_return, ...) and the agent's preset fields (``lr=1e-3``, ``num_steps=64``: as ``--set``)::

        pglab.train(agent="reinforce-rloo", env="CartPole-v1", total_steps=50_000, lr=2e-3)
    """
    from pglab.core.train import TrainConfig
    from pglab.core.train import train as run_training

    if config is None:
        fields, preset_fields = split_options(TrainConfig, options)
        config = TrainConfig(**fields)
        config.overrides = {**config.overrides, **preset_fields}
    elif options:
        raise ConfigError("pglab.train: give either a TrainConfig or keyword options, not both")
    return run_training(config)


def resume(
    run_dir: str | Path, total_steps: int | None = None, progress: bool = True, trusted_modules: Iterable[str] = ()
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its last checkpoint (as ``pglab train --resume``).

    ``trusted_modules``: plug-in modules the run's ``module:EnvId`` may import (``--trust-env-module``).
    """
    from pglab.core.train import resume as resume_run

    return resume_run(run_dir, total_steps=total_steps, progress=progress, trusted_modules=tuple(trusted_modules))


def evaluate(source: str | Path, **options: Any) -> dict[str, Any]:
    """Evaluate a run directory's (or checkpoint file's) policy; writes and returns the result.

    Options: ``episodes``, ``greedy``, ``env_id``, ``seed``, ``video``, ``trusted_modules`` and ``json_path`` (default:
    one file per mode beside the checkpoint, see :func:`pglab.lab.evaluate.default_result_path`).
    """
    from pglab.lab.evaluate import evaluate_and_save

    return evaluate_and_save(source, **options)


def grads(env: str, agents: str | Iterable[str], **options: Any) -> dict[str, Any]:
    """Measure agents' gradient estimators on a frozen policy (as ``pglab grads``); returns the report.

    ``options`` are :class:`pglab.diagnostics.grads.GradsConfig` fields (samples, batch_episodes, reference, ...).
    """
    from pglab.diagnostics.grads import GradsConfig, run_grads

    fields, rest = split_options(GradsConfig, options)
    refuse_unknown(rest, [f.name for f in dataclasses.fields(GradsConfig)], "pglab.grads")
    listed = agents.split(",") if isinstance(agents, str) else agents
    return run_grads(GradsConfig(env=env, agents=tuple(a.strip() for a in listed if a.strip()), **fields))


def compare(
    agents: str | Iterable[str],
    envs: str | Iterable[str],
    seeds: str | Iterable[int] = "0-4",
    *,
    out: str | Path,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    sweep: Mapping[str, Iterable[str]] | None = None,
    tune_seeds: str | Iterable[int] | None = None,
    criterion: str = "auc",
    **options: Any,
) -> Any:
    """Run every agent on every environment with every seed (as ``pglab compare``); resumable.

    ``options`` are :class:`pglab.lab.experiments.GridSpec` fields (total_steps, overrides, protocol,
    target_return, name, checkpoint_every, train_options, wandb_*). Returns the grid's
    :class:`~pglab.lab.experiments.GridResult`. With ``sweep`` (``{"lr": ["3e-4", "1e-3"]}``) and
    ``tune_seeds``, every agent gets an equal tuning budget first (:mod:`pglab.lab.tuning`); ``seeds``
    are then the evaluation seeds, and the result a :class:`~pglab.lab.tuning.SweepResult`.
    """
    from pglab.lab.experiments import GridSpec, parse_seeds, run_grid

    fields, rest = split_options(GridSpec, options)
    refuse_unknown(rest, [f.name for f in dataclasses.fields(GridSpec)], "pglab.compare")
    spec = GridSpec(
        agents=names(agents, "agents"),
        envs=names(envs, "envs"),
        seeds=parse_seeds(seeds) if isinstance(seeds, str) else tuple(int(s) for s in seeds),
        out=Path(out),
        **fields,
    )
    if sweep is None and tune_seeds is None:
        return run_grid(spec, engine=engine, workers=workers, ray_address=ray_address, progress=progress)
    from pglab.lab.tuning import SweepSpec, run_sweep

    if not sweep or tune_seeds is None:
        raise ConfigError("an equal tuning budget needs both --sweep KEY=v1,v2,... and --tune-seeds, e.g. 100-102")
    tuning = SweepSpec(
        spec,
        {key: tuple(str(v) for v in values) for key, values in sweep.items()},
        parse_seeds(tune_seeds) if isinstance(tune_seeds, str) else tuple(int(s) for s in tune_seeds),
        criterion,
    )
    return run_sweep(tuning, engine=engine, workers=workers, ray_address=ray_address, progress=progress)


def report(directory: str | Path, out: str | Path | None = None, html: bool = False) -> Any:
    """Figures, report.md and CSVs for a grid's or a run's directory (as ``pglab report``); with ``html``,
    also the interactive report.html (as ``pglab report --html``)."""
    from pglab.lab.report import build_report

    return build_report(Path(directory), Path(out) if out else None, html=html)
