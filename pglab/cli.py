"""The ``pglab`` command line.

Every problem the user can fix ends as one line on stderr, ``error: <what is wrong and how to fix
it>``, and exit code 2; Ctrl-C ends with exit code 130 after the run has saved its checkpoint,
summary and logs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click

from pglab.agent import parse_assignments
from pglab.errors import PglabError
from pglab.runlog import WANDB_MODES, default_wandb_mode


def _parse_env_kwargs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--env-kwarg is_slippery=false`` -> ``{"is_slippery": False}`` (JSON values, else strings)."""
    parsed: dict[str, Any] = {}
    for key, text in parse_assignments(pairs, flag="--env-kwarg").items():
        try:
            parsed[key] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key] = text
    return parsed


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pglab")
def cli() -> None:
    """pglab: compare policy-gradient estimators for discrete actions."""


@cli.command()
@click.option("--agent", default="reinforce-value", show_default=True, help="Agent name (see `pglab list`).")
@click.option(
    "--env",
    "env_id",
    default="CartPole-v1",
    show_default=True,
    help="Gymnasium id, or module:EnvId.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--total-steps", default=500_000, show_default=True, type=int, help="Environment steps.")
@click.option("--num-envs", type=int, help="Parallel environments (default: the preset's).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any preset field; repeatable.",
)
@click.option(
    "--env-kwarg",
    "env_kwargs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to gym.make; repeatable.",
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
@click.option(
    "--wandb-mode",
    type=click.Choice(WANDB_MODES),
    default=default_wandb_mode,
    show_default="offline, or $WANDB_MODE",
)
@click.option("--wandb-project", default="pglab", show_default=True)
@click.option("--wandb-entity", default=None)
@click.option("--wandb-group", default=None, help="Default: the environment id.")
@click.option("--wandb-tag", "wandb_tags", multiple=True, help="Default: the agent and the env; repeatable.")
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
    default=0,
    show_default=True,
    help="Steps between checkpoints (0: end).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(
    agent: str,
    env_id: str,
    seed: int,
    total_steps: int,
    num_envs: int | None,
    sets: tuple[str, ...],
    env_kwargs: tuple[str, ...],
    target_return: float | None,
    run_dir: str | None,
    wandb_mode: str,
    wandb_project: str,
    wandb_entity: str | None,
    wandb_group: str | None,
    wandb_tags: tuple[str, ...],
    capture_video: bool,
    vectorization: str,
    checkpoint_every: int,
    progress: bool,
) -> None:
    """Train one agent on one environment and write its run directory."""
    from pglab.train import TrainConfig
    from pglab.train import train as run_training

    config = TrainConfig(
        agent=agent,
        env=env_id,
        seed=seed,
        total_steps=total_steps,
        num_envs=num_envs,
        overrides=dict(parse_assignments(sets)),
        env_kwargs=_parse_env_kwargs(env_kwargs),
        target_return=target_return,
        run_dir=run_dir,
        wandb_mode=wandb_mode,
        wandb_project=wandb_project,
        wandb_entity=wandb_entity,
        wandb_group=wandb_group,
        wandb_tags=wandb_tags,
        capture_video=capture_video,
        vectorization=vectorization,
        checkpoint_every=checkpoint_every,
        progress=progress,
    )
    summary = run_training(config)
    ret = summary["return_mean_last100"]
    click.echo(
        f"{summary['agent']} on {summary['env']} (seed {summary['seed']}): {summary['global_step']} steps "
        f"in {summary['wall_s']:.1f} s ({summary['sps']:,.0f} steps/s), last-100 mean return "
        f"{'n/a' if ret is None else f'{ret:.1f}'}"
        + (f", solved at step {summary['solved_at_step']}" if summary["solved_at_step"] else "")
    )


@cli.command(name="list")
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
    from pglab.environment import discrete_env_ids
    from pglab.plugins import get_agent, load_agents

    if agent is not None:
        spec = get_agent(agent)
        click.echo(f"{spec.name}: {spec.description}")
        for f in dataclasses.fields(spec.preset):
            click.echo(f"  {f.name} = {f.default!r}  {f.metadata.get('help', '')}")
        for env_id, values in spec.preset.env_overrides.items():
            click.echo(f"  tuned for {env_id}: {dict(values)}")
        return
    click.echo("agents:")
    for name, spec in sorted(load_agents().items()):
        click.echo(f"  {name:<18} {spec.description}")
    if show_envs:
        click.echo("environments with a Discrete action space:")
        for env_id in discrete_env_ids():
            click.echo(f"  {env_id}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pglab`` console script."""
    try:
        cli.main(args=argv, prog_name="pglab", standalone_mode=False)
    except PglabError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted: the checkpoint, summary and logs of the run were saved", err=True)
        sys.exit(130)
