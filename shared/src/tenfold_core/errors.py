"""User-facing errors: the CLI prints these as one line on stderr and exits with status 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (path, value, data file): shown as one line, never a traceback."""

    exit_code = 2


class ConfigError(UserError):
    """A bad configuration value or key."""


class DataError(UserError):
    """A malformed data file; the message names the file (and line, where there is one)."""


class ModelLoadError(UserError):
    """A model or checkpoint that cannot be loaded (offline hub id, no matching keys, ...)."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1
