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


class MissingExtra(UserError):
    """An optional dependency is not installed; the message names the extra that brings it."""


EXTRAS = {"transformers": "text", "datasets": "text", "sacrebleu": "text", "nltk": "text", "tokenizers": "text",
          "numba": "spiking", "textattack": "attack"}  # fmt: skip


def require(module: str, extra: str | None = None, purpose: str = ""):
    """Import ``module`` or raise :class:`MissingExtra` with one line naming ``tenfold-core[extra]``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        if getattr(e, "name", None) not in (None, module, top) and not str(getattr(e, "name", "")).startswith(
            top
        ):
            raise  # the module exists but one of its own imports is broken: show the real error
        extra = extra or EXTRAS.get(top)
        how = f"pip install 'tenfold-core[{extra}]'" if extra else f"pip install {top}"
        what = f" ({purpose})" if purpose else ""
        raise MissingExtra(f"{top} is not installed{what}: {how}") from None
