"""Project exception hierarchy: every error a user can cause is one of these.

The CLI turns any :class:`PloutosError` into one line on stderr and exit code 1;
a traceback is shown only with ``--debug``.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (torch and SQLAlchemy write
    paragraphs; a CLI error is one line)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


class PloutosError(Exception):
    """Base class of every error Ploutos reports to a user.

    The message must say what is wrong, where, the value found and what to do.
    """


class ConfigError(PloutosError):
    """A stage file, option or setting is invalid."""


class StageFileError(ConfigError):
    """A stage file failed validation; ``problems`` holds one entry per field error.

    :param path: the file (or a description of the source) that failed.
    :param problems: human readable ``"what @ where"`` lines.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        joined = "; ".join(self.problems)
        super().__init__(f"invalid stage file {path}: {joined}")


class UnknownNameError(ConfigError):
    """A name (stage, data source, algorithm, …) that no plugin registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "none"
        super().__init__(
            f"unknown {kind} {name!r}; available: {listing} "
            f"(a plugin that provides it may not be installed; see 'ploutos plugins list')"
        )


class PluginError(PloutosError):
    """A plugin misbehaved: wrong registration type, duplicate name, bad hook."""


class PluginLoadError(PluginError):
    """A plugin's entry point could not be imported or registered."""


class DataError(PloutosError):
    """Market data are missing, empty, corrupt or insufficient."""


class ModelError(PloutosError):
    """A model file is missing, corrupt or incompatible with the environment."""


class DeviceError(PloutosError):
    """The requested compute device is unavailable."""


class GateFailedError(PloutosError):
    """A stage's validation result is below its promotion gate."""


class StaleDataError(DataError):
    """The newest prices are older than the day a signal or trade cycle is for."""


class BrokerError(PloutosError):
    """A broker refused an operation, or its account (a paper ledger) is unusable.

    Raised before anything changes: a refused cycle leaves the account as it was.
    """


class BrokerBusyError(BrokerError):
    """Another process is running a cycle on the same account; retry later.

    :cvar exit_code: 75 (``EX_TEMPFAIL``): schedulers treat it as "try again".
    """

    exit_code = 75


class TrainingInterrupted(PloutosError):
    """Training stopped on a signal; the newest checkpoint is kept for ``--resume``.

    :param message: what stopped and how to continue.
    :param exit_code: 130 for SIGINT (Ctrl-C), 143 for SIGTERM, as shells report them.
    """

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PloutosWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. a ticker whose late
    start shrinks a split); the CLI prints it as one ``Warning:`` line."""
