"""The metric-logger contract: sinks for training and evaluation metrics."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class LoggerRun:
    """Describes the run a logger is opened for (one per stage).

    :param stage: stage name.
    :param run_dir: the run's output directory (``--out``).
    :param log_dir: the TensorBoard directory for this stage (``logs/<stage>``).
    :param report_dir: the stage's report directory (``reports/<stage>``).
    :param config: the resolved configuration (stage, seed, device, …), JSON-ready.
    :param tags: short labels (stage, seed, transferred-from).
    :param project: project name for hosted trackers.
    :param start_step: the step a resumed stage continues from (0 for a fresh stage);
        what an interrupted invocation logged after it describes training the resumed
        run redoes, so loggers drop it.
    """

    stage: str
    run_dir: Path
    log_dir: Path
    report_dir: Path
    config: Mapping[str, Any] = attrs.field(factory=dict)
    tags: tuple[str, ...] = ()
    project: str = "Ploutos_Curriculum"
    start_step: int = 0


class MetricLogger(abc.ABC):
    """An open metric sink."""

    @abc.abstractmethod
    def write(self, metrics: Mapping[str, float], step: int) -> None:
        """Record ``metrics`` (names like ``train/policy_loss``) at environment step ``step``."""

    def close(self) -> None:  # noqa: B027 - optional
        """Flush and release resources."""


class LoggerFactory(abc.ABC):
    """A named kind of metric sink, registered by a plugin; opened once per stage."""

    #: registered name, used by ``--logger``.
    name: str = ""
    #: one line for listings.
    description: str = ""
    #: whether the logger is on when no ``--logger`` option is given.
    default_enabled: bool = False

    @abc.abstractmethod
    def open(self, run: LoggerRun) -> MetricLogger:
        """Open a logger for one stage run.

        Problems that must not stop training (a hosted tracker that is down)
        should be turned into a warning and a no-op logger by the factory.
        """
