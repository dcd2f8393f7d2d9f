"""Load the prices a stage needs, never past the split being used."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import attrs

from ploutos_core.config.stage import StageSpec
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import Panel
from ploutos_core.data.source import DataRequest, DataSource

#: calendar days per trading day, with a margin for holidays.
CALENDAR_PER_TRADING_DAY = 1.5


@attrs.frozen
class DataOptions:
    """Where prices come from.

    :param source: registered data-source name.
    :param data_dir: directory for file sources (``--data-dir``).
    :param cache_dir: the download cache (``data_cache/``).
    :param seed: seed of generating sources.
    :param refresh: download again even when cached.
    """

    source: str = "yfinance"
    data_dir: Path | None = None
    cache_dir: Path = Path("data_cache")
    seed: int = 0
    refresh: bool = False


def stage_request(stage: StageSpec, options: DataOptions, through: str,
                  tickers: tuple[str, ...] | None = None) -> DataRequest:
    """The request for ``stage``'s data from the warm-up before training to the end of
    split ``through``.

    Training asks ``through="validation"``, so the test period is never loaded
    while a stage is trained or tuned.
    """
    return stage_request_until(stage, options, stage.splits.get(through).end, tickers)


def stage_request_until(stage: StageSpec, options: DataOptions, end: dt.date | None,
                        tickers: tuple[str, ...] | None = None) -> DataRequest:
    """The request for ``stage``'s data from the warm-up before training to ``end``
    (``None``: the newest day). Every load of a stage starts on the same day, so the
    causal features of a day are the same whatever the load's end (signals,
    walk-forward)."""
    train_start = stage.splits.train.start
    start = None
    if train_start is not None:
        margin = math.ceil(stage.env.warmup_days * CALENDAR_PER_TRADING_DAY) + 10
        start = train_start - dt.timedelta(days=margin)
    return DataRequest(
        tickers=tickers or stage.tickers,
        start=start,
        end=end,
        data_dir=options.data_dir,
        cache_dir=options.cache_dir,
        seed=options.seed,
        refresh=options.refresh,
    )


def load_stage_panel(source: DataSource, stage: StageSpec, options: DataOptions,
                     through: str = "validation") -> Panel:
    """Validated prices of ``stage``'s tickers through the end of split ``through``."""
    return load_panel(source, stage_request(stage, options, through))
