"""Config files for ``pglab train --config FILE.toml`` and ``pglab compare --config FILE.toml``.

A config file holds a command's options under their long names (``total_steps`` or
``total-steps`` for ``--total-steps``); options that repeat as ``KEY=VALUE`` (``--set``,
``--env-kwarg``) are tables. Flags given on the command line override the file, key by key for
the tables::

    agent = "reinforce-value"
    env = "CartPole-v1"
    total_steps = 200000
    target_return = 475

    [set]
    lr = 0.003
    critic_epochs = 4

This module reads TOML only: a config file is data, never code.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import tomli_w

from pglab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_TABLES = "config_tables"  # ctx.meta key: the file's KEY=VALUE tables, merged under the flags'


def option_key(param: click.Parameter) -> str:
    """The config-file key of a click option: its longest flag without dashes, dashes as underscores."""
    longest = max(param.opts, key=len)
    return longest.lstrip("-").replace("-", "_")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The TOML file's top-level table; ConfigError (one line) when it is missing or malformed."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc}); see README, 'Config files'") from None


def defaults_from_file(command: click.Command, values: Mapping[str, Any], source: str) -> tuple[dict, dict]:
    """Split a config file's values into click defaults and ``KEY=VALUE`` tables, checking every key.

    Returns ``(default_map, tables)``: ``default_map`` maps parameter names to values click treats as
    defaults (so flags override them); ``tables`` maps the parameter names of repeated ``KEY=VALUE``
    options to the file's ``{key: value}`` table, which the command merges under the flags' pairs.
    """
    options = [p for p in command.params if isinstance(p, click.Option) and p.expose_value]
    params = {option_key(p): p for p in options}
    default_map: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        param = params.get(key)
        if param is None:
            close = difflib.get_close_matches(key, sorted(params), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known keys: {', '.join(sorted(params))}"
            raise ConfigError(f"{source}: unknown key {raw_key!r} for pglab {command.name}; {hint}")
        if param.multiple and param.metavar == "KEY=VALUE":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {raw_key} must be a table of key = value, e.g. [{raw_key}]")
            tables[param.name] = dict(value)
        elif param.multiple:
            default_map[param.name] = list(value) if isinstance(value, list) else [value]
        else:
            if isinstance(value, (dict, list)):
                raise ConfigError(f"{source}: {raw_key} must be a single value, not a {type(value).__name__}")
            default_map[param.name] = value
    return default_map, tables


def load_into_context(ctx: click.Context, param: click.Parameter, path: str | None) -> str | None:
    """Eager callback of ``--config``: the file's values become the command's defaults."""
    if path is None or ctx.resilient_parsing:
        return path
    default_map, tables = defaults_from_file(ctx.command, read_config_file(path), f"--config {path}")
    ctx.default_map = {**(ctx.default_map or {}), **default_map}
    ctx.meta[CONFIG_TABLES] = tables
    return path


def config_option(command: Any) -> Any:
    """``--config FILE.toml`` for a command; must be the command's first (outermost) option."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=load_into_context,
        help="Read options from a TOML file (keys as the long flags; tables for --set and --env-kwarg); "
        "flags override it.",
    )(command)


def merged_pairs(ctx: click.Context, name: str, cli_pairs: Mapping[str, Any]) -> dict[str, Any]:
    """A KEY=VALUE option's pairs: the config file's table, overridden key by key by the flags."""
    return {**ctx.meta.get(CONFIG_TABLES, {}).get(name, {}), **cli_pairs}


# TrainConfig fields under another key in ``pglab train``'s options, and fields that are no option
TRAIN_KEYS = {"overrides": "set", "env_kwargs": "env_kwarg", "wandb_tags": "wandb_tag"}
NOT_TRAIN_OPTIONS = frozenset(["wandb_run_id", "torch_threads", "grad_diagnostics_samples"])


def train_config_toml(config: Mapping[str, Any]) -> str:
    """A run's TrainConfig (as a dict) as a ``pglab train --config`` file that starts the same run."""
    return dumps({TRAIN_KEYS.get(k, k): v for k, v in config.items() if k not in NOT_TRAIN_OPTIONS})


def dumps(values: Mapping[str, Any]) -> str:
    """A TOML document of the given option values (None values are left out: TOML has no null)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items() if v is not None}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    scalars = {k: plain(v) for k, v in values.items() if v is not None and not isinstance(v, Mapping)}
    tables = {k: plain(v) for k, v in values.items() if isinstance(v, Mapping)}
    return tomli_w.dumps({**scalars, **tables})
