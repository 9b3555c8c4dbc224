"""Errors that reach the user as one clear line (exit code 2), never as a traceback."""

from __future__ import annotations


class PglabError(Exception):
    """A problem the user can fix; its message says what is wrong and how to fix it."""


class ConfigError(PglabError):
    """An impossible or unknown hyperparameter, flag or preset."""


class EnvironmentSetupError(PglabError):
    """An environment that cannot be found, imported or used (e.g. a non-Discrete action space)."""


class CheckpointError(PglabError):
    """A checkpoint that is missing, corrupt, unsafe or belongs to another setup."""


class NonFiniteLossError(PglabError):
    """A loss or gradient became NaN or infinite; training stops with the last good weights."""


class EnvironmentStepError(PglabError):
    """The environment raised while stepping; the run stops and keeps its last checkpoint."""
