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


class RunDirectoryError(PglabError):
    """A run directory in use by another pglab process, or a folder that is not a pglab run."""


class StorageError(PglabError):
    """A file of a run could not be written (disk full, no permission); nothing half-written is left."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a command; the message says truthfully what was saved and how to continue."""


class StepTimeoutError(PglabError):
    """An environment step took longer than --step-timeout: the environment is stuck (or slower than allowed)."""
