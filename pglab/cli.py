"""The ``pglab`` command line.

Every problem the user can fix ends as one line on stderr, ``error: <what is wrong and how to fix
it>``, and exit code 2; Ctrl-C ends with exit code 130 and one line saying truthfully what was
saved (a run interrupted before its directory was written saved nothing).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from typing import Any

import click

from pglab.core.preset import parse_assignments
from pglab.errors import PglabError, RunInterrupted
from pglab.io.configfile import config_option, dumps, merged_pairs, option_key
from pglab.io.runlog import WANDB_MODES, default_wandb_mode


def _parse_env_kwargs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--env-kwarg is_slippery=false`` -> ``{"is_slippery": False}`` (JSON values, else strings)."""
    parsed: dict[str, Any] = {}
    for key, text in parse_assignments(pairs, flag="--env-kwarg").items():
        try:
            parsed[key] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key] = text
    return parsed


def examples(*lines: str) -> str:
    """A command's help epilog: example command lines, kept as written (click's \\b stops rewrapping)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _given(**options: Any) -> dict[str, Any]:
    """The options the user set (not None): the others keep the defaults of the function they go to."""
    return {key: value for key, value in options.items() if value is not None}


def _wandb_options(command: Any) -> Any:
    """The W&B flags train and compare share."""
    for option in reversed(
        (
            click.option(
                "--wandb-mode",
                type=click.Choice(WANDB_MODES),
                default=default_wandb_mode,
                show_default="offline, or $WANDB_MODE",
            ),
            click.option("--wandb-project", default="pglab", show_default=True),
            click.option("--wandb-entity", default=None),
        )
    ):
        command = option(command)
    return command


# pglab.core.device.DEVICES, spelled here so that `pglab --help` imports no torch (a test keeps the two equal)
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def device_option(default: str | None, what: str) -> Any:
    """``--device``, one option for train, compare and grads: ``what`` says what runs there.

    ``default=None`` leaves the choice to the function the command calls (``auto`` there).
    """
    return click.option(
        "--device",
        type=click.Choice(DEVICE_CHOICES),
        default=default,
        show_default=default is not None,
        help=f"{what}: auto takes a GPU when torch sees one; cuda without a GPU is an error."
        + ("" if default else "  [default: auto]"),
    )


# A run directory may name its environment as module:EnvId; importing that module would run its code,
# so pglab does it only for a module the user names here (or in --env).
TRUST_OPTION = click.option(
    "--trust-env-module",
    "trusted_modules",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE when the run's environment id (module:EnvId) names it; repeatable.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pglab")
def cli() -> None:
    """pglab: compare policy-gradient estimators for discrete actions."""


@cli.command(
    epilog=examples(
        "pglab train --agent reinforce-value --env CartPole-v1 --target-return 475",
        "pglab train --agent gumbel-rao --env Acrobot-v1 --seed 3 --set tau=0.5 --set lr=3e-3",
        "pglab train --config run.toml --seed 4",
        "pglab train --resume runs/CartPole-v1__reinforce-value__0__20261126-010203",
    )
)
@config_option
@click.option("--agent", default="reinforce-value", show_default=True, help="Agent name (see `pglab list`).")
@click.option(
    "--env",
    "env_id",
    default="CartPole-v1",
    show_default=True,
    help="Gymnasium id, or module:EnvId.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seeds the initial weights, the envs and sampling."
)
@click.option("--total-steps", type=int, help="Environment steps  [default: 500000; on --resume, the run's].")
@click.option("--num-envs", type=int, help="Parallel environments (default: the preset's).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any preset field (see `pglab list --agent NAME`); repeat it for several.",
)
@click.option(
    "--env-kwarg",
    "env_kwargs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to gym.make; repeat it for several.",
)
@click.option(
    "--protocol",
    type=click.Choice(["presets", "matched"]),
    default="presets",
    show_default=True,
    help="presets: the agent's tuned values; matched: the shared table of `pglab compare` (README).",
)
@click.option(
    "--target-return",
    type=float,
    help="Stop once the mean return of the last 100 episodes reaches this.",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    help="Default: runs/<env>__<agent>__<seed>__<time>.",
)
@_wandb_options
@click.option("--wandb-group", default=None, help="Default: the environment id.")
@click.option("--wandb-tag", "wandb_tags", multiple=True, help="Default: the agent and the env; repeatable.")
@click.option(
    "--tensorboard/--no-tensorboard",
    default=True,
    show_default=True,
    help="Also write every metrics row as TensorBoard scalars in the run directory (tensorboard --logdir runs).",
)
@click.option(
    "--capture-video",
    is_flag=True,
    help="Record one episode of the trained policy (videos/eval.mp4, and W&B); needs pglab[video].",
)
@click.option(
    "--vectorization",
    type=click.Choice(["auto", "sync", "async"]),
    default="auto",
    show_default=True,
    help="auto: the env's numpy-vectorised twin where it has one, else sync.",
)
@click.option(
    "--checkpoint-every",
    type=int,
    help="Steps between periodic checkpoints; 0: only at the end  [default: 20000].",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@device_option("auto", "Where the update runs")
@click.option(
    "--grad-diagnostics-every",
    type=int,
    default=0,
    show_default=True,
    help="Updates between measurements of the agent's gradient estimator (see pglab grads); 0: never.",
)
@click.option(
    "--step-timeout",
    type=float,
    help="Seconds one environment step may take; a stuck environment then fails the run  [default: no limit].",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    help="Continue the run in this directory from its last checkpoint (other flags but --total-steps are ignored).",
)
@TRUST_OPTION
def train(
    agent: str,
    env_id: str,
    seed: int,
    total_steps: int | None,
    num_envs: int | None,
    sets: tuple[str, ...],
    env_kwargs: tuple[str, ...],
    protocol: str,
    target_return: float | None,
    run_dir: str | None,
    wandb_mode: str,
    wandb_project: str,
    wandb_entity: str | None,
    wandb_group: str | None,
    wandb_tags: tuple[str, ...],
    tensorboard: bool,
    capture_video: bool,
    vectorization: str,
    checkpoint_every: int | None,
    progress: bool,
    device: str,
    grad_diagnostics_every: int,
    step_timeout: float | None,
    resume_dir: str | None,
    trusted_modules: tuple[str, ...],
) -> None:
    """Train one agent on one environment and write its run directory."""
    ctx = click.get_current_context()
    from pglab import api
    from pglab.core.train import TrainConfig

    if resume_dir is not None:
        _report(api.resume(resume_dir, total_steps=total_steps, progress=progress, trusted_modules=trusted_modules))
        return
    config = TrainConfig(
        agent=agent,
        env=env_id,
        seed=seed,
        total_steps=500_000 if total_steps is None else total_steps,
        num_envs=num_envs,
        overrides=merged_pairs(ctx, "sets", parse_assignments(sets)),
        env_kwargs=merged_pairs(ctx, "env_kwargs", _parse_env_kwargs(env_kwargs)),
        protocol=protocol,
        target_return=target_return,
        run_dir=run_dir,
        wandb_mode=wandb_mode,
        wandb_project=wandb_project,
        wandb_entity=wandb_entity,
        wandb_group=wandb_group,
        wandb_tags=wandb_tags,
        tensorboard=tensorboard,
        capture_video=capture_video,
        vectorization=vectorization,
        progress=progress,
        device=device,
        grad_diagnostics_every=grad_diagnostics_every,
        **_given(checkpoint_every=checkpoint_every),
        step_timeout=step_timeout,
    )
    _report(api.train(config))


def _resolved_options(ctx: click.Context, **tables: dict[str, Any]) -> dict[str, Any]:
    """The command's final option values under their config-file keys (``tables`` replace repeated pairs)."""
    values = {}
    for param in ctx.command.params:
        if isinstance(param, click.Option) and param.expose_value and param.name in ctx.params:
            values[option_key(param)] = tables.get(param.name, ctx.params[param.name])
    return {key: list(v) if isinstance(v, tuple) else v for key, v in values.items()}


def _report(summary: dict[str, Any]) -> None:
    ret = summary["return_mean_last100"]
    click.echo(
        f"{summary['agent']} on {summary['env']} (seed {summary['seed']}): {summary['global_step']} steps "
        f"in {summary['wall_s']:.1f} s ({summary['sps']:,.0f} steps/s), last-100 mean return "
        f"{'n/a' if ret is None else f'{ret:.1f}'}"
        + (f", solved at step {summary['solved_at_step']}" if summary["solved_at_step"] else "")
    )


@cli.command(
    epilog=examples(
        "pglab compare --agents reinforce,reinforce-value --envs CartPole-v1 --seeds 0-4 --out runs/grid",
        "pglab compare --config grid.toml --workers 2",
    )
)
@config_option
@click.option("--agents", required=True, help="Comma-separated agent names, e.g. reinforce,reinforce-rloo.")
@click.option("--envs", "env_ids", required=True, help="Comma-separated environment ids.")
@click.option("--seeds", default="0-4", show_default=True, help="Seeds: ranges and lists, e.g. 0-9 or 0,3,7-8.")
@click.option("--total-steps", type=int, default=500_000, show_default=True, help="Environment steps per run.")
@click.option("--num-envs", type=int, help="Parallel environments of every run (default: each preset's).")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field of every run; repeatable."
)
@click.option(
    "--env-kwarg", "env_kwargs", multiple=True, metavar="KEY=VALUE", help="Passed to gym.make in every run; repeatable."
)
@click.option(
    "--protocol",
    type=click.Choice(["matched", "presets"]),
    default="matched",
    show_default=True,
    help="matched: every field but the estimator's is shared (README); presets: each agent's tuned preset.",
)
@click.option("--target-return", type=float, help="Stop each run once its last-100 mean return reaches this.")
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="Equal tuning budget: every agent runs every point (the product of the sweeps) on --tune-seeds; "
    "its best point then runs on --seeds. Repeatable.",
)
@click.option("--tune-seeds", help="Seeds of the tuning runs (with --sweep); must not overlap --seeds.")
@click.option(
    "--criterion",
    type=click.Choice(["auc", "final", "steps-to-target"]),
    default="auc",
    show_default=True,
    help="How --sweep chooses: area under the learning curve / budget, final return, steps to --target-return.",
)
@click.option("--workers", type=int, help="Runs at once  [default: local: one per core; ray: the cluster's CPUs].")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--ray-address", help="Address of an existing Ray cluster (default: start a local Ray instance).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The grid's directory.")
@click.option("--name", help="The grid's name and W&B group  [default: the name of --out].")
@click.option(
    "--checkpoint-every", type=int, help="Steps between checkpoints of a run; 0: only at its end  [default: 20000]."
)
@click.option("--grad-diagnostics-every", type=int, help="As for pglab train  [default: never].")
@click.option(
    "--step-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds one environment step may take; a stuck run fails and the grid goes on.",
)
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True, help="As for pglab train.")
@device_option(None, "Where every run's update runs")
@_wandb_options
@click.option("--progress/--no-progress", default=True, show_default=True)
def compare(
    agents: str,
    env_ids: str,
    seeds: str,
    total_steps: int,
    num_envs: int | None,
    sets: tuple[str, ...],
    protocol: str,
    env_kwargs: tuple[str, ...],
    target_return: float | None,
    sweeps: tuple[str, ...],
    tune_seeds: str | None,
    criterion: str,
    workers: int | None,
    engine: str,
    ray_address: str | None,
    out: str,
    name: str | None,
    checkpoint_every: int | None,
    grad_diagnostics_every: int | None,
    step_timeout: float,
    tensorboard: bool,
    device: str | None,
    progress: bool,
    **wandb_settings: str | None,
) -> None:
    """Run every agent on every environment with every seed; rerun the same command to resume."""
    from pglab import api
    from pglab.lab.experiments import parse_names, parse_seeds

    ctx = click.get_current_context()
    overrides = merged_pairs(ctx, "sets", parse_assignments(sets))
    sweep = None
    if sweeps:  # the sweep's module imports numpy: a plain grid's process starts its workers before it
        from pglab.lab.tuning import parse_sweep

        sweep = parse_sweep(sweeps)
    if device is not None:  # one line now rather than every run failing alike
        from pglab.core.device import resolve_device

        resolve_device(device)
    result = api.compare(
        parse_names(agents, "--agents"),
        parse_names(env_ids, "--envs"),
        parse_seeds(seeds),
        out=out,
        engine=engine,
        workers=workers,
        ray_address=ray_address,
        progress=progress,
        sweep=sweep,
        tune_seeds=tune_seeds,
        criterion=criterion,
        total_steps=total_steps,
        overrides=overrides,
        protocol=protocol,
        target_return=target_return,
        name=name,
        train_options=_given(
            num_envs=num_envs,
            env_kwargs=merged_pairs(ctx, "env_kwargs", _parse_env_kwargs(env_kwargs)) or None,
            grad_diagnostics_every=grad_diagnostics_every,
            tensorboard=None if tensorboard else False,
            device=device,
        ),
        step_timeout=step_timeout,
        command_toml=dumps(_resolved_options(ctx, sets=overrides)),
        **_given(checkpoint_every=checkpoint_every),
        **wandb_settings,  # wandb_mode, wandb_project, wandb_entity
    )
    click.echo(result.table())
    statuses = f"{out}/tune/status.json and {out}/eval/status.json" if sweep else f"{out}/status.json"
    after = "; the tuned points are chosen once every tuning run has finished" if sweep else ""
    if result.failed:
        click.echo(
            f"{len(result.failed)} of {len(result.outcomes)} runs failed (errors in {statuses}); "
            f"rerun the same command to retry them{after}",
            err=True,
        )
        sys.exit(1)
    if result.interrupted:  # the grid went on, but these runs stopped short of their budget: not a finished grid
        click.echo(
            f"{len(result.interrupted)} of {len(result.outcomes)} runs were interrupted before their budget "
            f"(see {statuses}); rerun the same command to continue them from their checkpoints{after}",
            err=True,
        )
        sys.exit(1)


@cli.command(epilog=examples("pglab report runs/grid", "pglab report runs/grid --out reports/grid"))
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Where to write it  [default: DIRECTORY/report].")
@click.option(
    "--html",
    is_flag=True,
    help="Also write report.html: interactive figures and a runs table, one file that opens offline.",
)
def report(directory: str, out: str | None, html: bool) -> None:
    """Write figures, report.md and results.csv for a grid's directory or a single run directory."""
    from pglab import api

    result = api.report(directory, out, html=html)
    finished = sum(r.finished for r in result.runs)
    click.echo(f"{finished} finished runs of {len(result.runs)}; report written to {result.files[-1]}")


@cli.command(
    epilog=examples("pglab runs runs/", "pglab runs runs/grid --agent reinforce-value --status finished --csv")
)
@click.argument("directory", default="runs", type=click.Path(file_okay=False))
@click.option("--env", "envs", multiple=True, help="Only runs on this environment id; repeatable.")
@click.option("--agent", "agents", multiple=True, help="Only runs of this agent; repeatable.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    help="Only runs with this status (finished, interrupted, diverged, failed, 'no summary'); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def runs(
    directory: str,
    envs: tuple[str, ...],
    agents: tuple[str, ...],
    statuses: tuple[str, ...],
    as_json: bool,
    as_csv: bool,
) -> None:
    """List the runs below DIRECTORY (default: runs/): env, agent, seed, status, steps, return, wall time.

    'no summary' means the run is under way, or was killed before it could write summary.json.

    Example: pglab runs grids/cartpole --agent reinforce-rloo --status finished
    """
    from pglab.lab import runlist

    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other; choose one")
    found = runlist.list_runs(directory, envs=envs, agents=agents, statuses=statuses)
    if as_json:
        click.echo(runlist.as_json(found), nl=False)
    elif as_csv:
        click.echo(runlist.as_csv(found), nl=False)
    elif found:
        click.echo(runlist.as_table(found), nl=False)
    else:
        click.echo(f"no run below {directory} matches", err=True)


@cli.command(
    name="eval",
    epilog=examples(
        "pglab eval runs/grid/runs/CartPole-v1__reinforce__0 --episodes 100 --greedy",
        "pglab eval runs/acro --video acro.mp4 --episodes 1",
    ),
)
@click.argument("source", type=click.Path())
@click.option("--episodes", default=100, show_default=True, type=int)
@click.option("--greedy", is_flag=True, help="Take the most likely action instead of sampling.")
@click.option("--env", "env_id", default=None, help="Evaluate on another environment (same spaces).")
@click.option("--seed", default=10_000, show_default=True, type=int, help="Episode i is reset with seed + i.")
@click.option("--video", type=click.Path(dir_okay=False), help="Write an MP4 of the first episode here.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Default: eval-sampled.json, eval-greedy.json or eval-<mode>-<env>.json beside the checkpoint.",
)
@TRUST_OPTION
def eval_command(
    source: str,
    episodes: int,
    greedy: bool,
    env_id: str | None,
    seed: int,
    video: str | None,
    json_path: str | None,
    trusted_modules: tuple[str, ...],
) -> None:
    """Evaluate a run directory's (or a checkpoint file's) policy: mean return with a 95% CI."""
    from pglab import api

    result = api.evaluate(
        source,
        episodes=episodes,
        greedy=greedy,
        env_id=env_id,
        seed=seed,
        video=video,
        json_path=json_path,
        trusted_modules=trusted_modules,
    )
    if episodes > 1:
        low, high = result["ci95"]
        spread = f" +- {result['std']:.2f} (std) over {episodes} episodes, 95% CI [{low:.2f}, {high:.2f}]"
    else:
        spread = " over 1 episode (no spread or CI from one episode)"
    click.echo(
        f"{result['env']}, {'greedy' if greedy else 'sampled'} actions: mean return {result['mean']:.2f}{spread}; "
        f"written to {result['json']}" + (f"; video {result['video']}" if result["video"] else "")
    )


@cli.command(
    epilog=examples(
        "pglab grads --env FrozenLake-v1 --agents reinforce,reinforce-rloo,reinforce-value --samples 200",
        "pglab grads --env CartPole-v1 --agents reinforce,gumbel-st --checkpoint runs/cp/checkpoint.pt",
    )
)
@click.option("--env", "env_id", required=True, help="Gymnasium id, or module:EnvId.")
@click.option("--agents", required=True, help="Comma-separated agent names, e.g. reinforce,reinforce-rloo.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Freeze this run's policy (default: a fresh one).")
@click.option("--seed", default=0, show_default=True, type=int, help="Initial policy and sampling seed.")
@click.option("--samples", default=200, show_default=True, type=int, help="Estimates per estimator.")
@click.option("--batch-episodes", default=8, show_default=True, type=int, help="Complete episodes per estimate.")
@click.option(
    "--warmup", default=5, show_default=True, type=int, help="Discarded estimates (settle running baselines)."
)
@click.option(
    "--reference",
    type=click.Choice(["auto", "exact", "large-batch"]),
    default="auto",
    show_default=True,
    help="auto: exact where the env exposes its model, else a large batch of plain REINFORCE.",
)
@click.option(
    "--reference-samples", default=1000, show_default=True, type=int, help="Batches in a large-batch reference."
)
@click.option(
    "--critic",
    type=click.Choice(["trained", "oracle", "untrained"]),
    default="trained",
    show_default=True,
    help="trained: the critic of --checkpoint (a never-trained critic is refused); oracle: the exact V/Q with the "
    "steps left (tabular envs); untrained: a fresh critic, labelled so.",
)
@click.option("--oracle-critic", is_flag=True, help="Shorthand for --critic oracle.")
@click.option("--horizon", type=int, default=None, help="Time limit for an environment without one (CliffWalking-v1).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset field of every agent.")
@click.option("--env-kwarg", "env_kwargs", multiple=True, metavar="KEY=VALUE", help="Passed to gym.make; repeatable.")
@device_option("auto", "Where the estimates are drawn and differentiated (exact references: CPU, float64)")
@click.option("--out", type=click.Path(file_okay=False), help="Default: grads/<env>__<time>.")
def grads(
    env_id: str,
    agents: str,
    checkpoint: str | None,
    seed: int,
    samples: int,
    batch_episodes: int,
    warmup: int,
    reference: str,
    reference_samples: int,
    critic: str,
    oracle_critic: bool,
    horizon: int | None,
    sets: tuple[str, ...],
    env_kwargs: tuple[str, ...],
    device: str,
    out: str | None,
) -> None:
    """Measure each agent's gradient estimator (bias, variance, SNR, cosine, cost) on a frozen policy."""
    from pglab import api
    from pglab.diagnostics.grads import markdown_table

    report = api.grads(
        env_id,
        tuple(a.strip() for a in agents.split(",") if a.strip()),
        seed=seed,
        checkpoint=checkpoint,
        samples=samples,
        batch_episodes=batch_episodes,
        warmup=warmup,
        reference=reference,
        reference_samples=reference_samples,
        critic="oracle" if oracle_critic else critic,
        horizon=horizon,
        overrides=dict(parse_assignments(sets)),
        env_kwargs=_parse_env_kwargs(env_kwargs),
        device=device,
        out=out,
    )
    click.echo(markdown_table(report), nl=False)
    click.echo(f"wrote {report['out']}/grads.json, grads.md and {report['figure']}")


@cli.command(name="list", epilog=examples("pglab list", "pglab list --agent gumbel-rao --no-envs"))
@click.option("--agent", default=None, help="Show this agent's preset fields, defaults and help.")
@click.option(
    "--envs/--no-envs",
    "show_envs",
    default=True,
    show_default=True,
    help="List Discrete-action envs.",
)
def list_command(agent: str | None, show_envs: bool) -> None:
    """Show the agents and the registered Discrete-action environments."""
    from pglab.core.environment import discrete_env_ids, extra_env_ids
    from pglab.core.plugins import get_agent, load_agents

    if agent is not None:
        spec = get_agent(agent)
        click.echo(f"{spec.name}: {spec.description}")
        for f in dataclasses.fields(spec.preset):
            click.echo(f"  {f.name} = {f.default!r}  {f.metadata.get('help', '')}")
        by_values: dict[str, list[str]] = {}  # one line for the envs that share their values (MinAtar's ten)
        for env_id, values in spec.preset.env_overrides.items():
            by_values.setdefault(repr(dict(values)), []).append(env_id)
        for values, env_ids in by_values.items():
            click.echo(f"  tuned for {', '.join(env_ids)}: {values}")
        return
    click.echo("agents:")
    for name, spec in sorted(load_agents().items()):
        click.echo(f"  {name:<18} {spec.description}")
    if show_envs:
        click.echo("environments with a Discrete action space:")
        for env_id in discrete_env_ids():
            click.echo(f"  {env_id}")
        for extra, ids in extra_env_ids().items():
            if ids is None:
                click.echo(f"pglab[{extra}] is not installed: pip install 'pglab[{extra}]' for its environments")
            else:  # all Discrete; listed by id, not made (an Atari game takes a moment to load)
                click.echo(f"with pglab[{extra}] ({len(ids)}):")
                click.echo(textwrap.fill(", ".join(ids), width=100, initial_indent="  ", subsequent_indent="  "))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pglab`` console script."""
    try:
        cli.main(args=argv, prog_name="pglab", standalone_mode=False)
    except PglabError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # bare `pglab`: the help is the answer
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # a flag click itself rejects: one line too, not usage + hint + error
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort) as exc:
        # click turns a KeyboardInterrupt (RunInterrupted included) into Abort, the original as its cause
        saved = exc if isinstance(exc, RunInterrupted) else exc.__cause__
        if isinstance(saved, RunInterrupted):
            click.echo(f"interrupted: {saved}", err=True)
        else:
            click.echo("interrupted before anything was written: nothing was saved", err=True)
        sys.exit(130)
