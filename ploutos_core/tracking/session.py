"""Open the metric loggers of a stage run; a logger that fails is switched off, never fatal."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.tracking.contract import LoggerRun, MetricLogger
from ploutos_core.training.records import StageRun

#: always on: the JSON-lines record under reports/<stage>/metrics.jsonl.
ALWAYS_ON = ("jsonl",)


class SafeLogger(MetricLogger):
    """Turns a logger's failure into one warning; training goes on without it.

    :param name: the registered logger name, for the warning and the manifest.
    :param inner: the logger the factory opened.
    """

    def __init__(self, name: str, inner: MetricLogger) -> None:
        self.name = name
        self.inner: MetricLogger | None = inner

    def write(self, metrics: Mapping[str, float], step: int) -> None:
        """Forward to the wrapped logger until it fails once."""
        if self.inner is None:
            return
        try:
            self.inner.write(metrics, step)
        except Exception as exc:  # a metrics sink must never stop training
            warnings.warn(f"logger {self.name!r} failed and is switched off: {exc}",
                          stacklevel=2)
            self.inner = None

    def close(self) -> None:
        """Close the wrapped logger; a failure is a warning."""
        if self.inner is not None:
            try:
                self.inner.close()
            except Exception as exc:  # same reason as above
                warnings.warn(f"logger {self.name!r} failed to close: {exc}", stacklevel=2)


def logger_names(registry: Registry, requested: tuple[str, ...] | None) -> list[str]:
    """The loggers to open: the requested ones (or the defaults) plus the always-on ones."""
    available = registry.all("loggers")
    if requested is None:
        names = [name for name, entry in available.items() if entry.item.default_enabled]
    else:
        names = list(requested)
        for name in names:
            registry.logger(name)  # raises UnknownNameError listing the choices
    return [*dict.fromkeys([*[n for n in ALWAYS_ON if n in available], *names])]


def open_loggers(registry: Registry, requested: tuple[str, ...] | None, layout: RunLayout,
                 run: StageRun, start_step: int = 0) -> list[SafeLogger]:
    """Open one logger per selected factory for the stage ``run``.

    :param start_step: the step training (re)starts from; loggers drop what an
        interrupted invocation recorded after it.
    """
    stage = run.stage.name
    logger_run = LoggerRun(
        stage=stage, run_dir=layout.root, log_dir=layout.log_dir(stage),
        report_dir=layout.report_dir(stage),
        config=run.to_dict(),
        start_step=start_step,
        tags=(stage, f"seed-{run.seed}",
              f"from-{run.start_from.stem}" if run.start_from else "from-scratch"),
    )
    opened: list[SafeLogger] = []
    for name in logger_names(registry, requested):
        try:
            opened.append(SafeLogger(name, registry.logger(name).open(logger_run)))
        except Exception as exc:  # a logger that cannot start must not stop training
            warnings.warn(f"logger {name!r} could not start and is skipped: {exc}",
                          stacklevel=2)
    return opened
