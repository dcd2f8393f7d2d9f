"""The data-source contract: what a plugin implements to supply daily prices."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
import pandas as pd


def _as_tuple(tickers: Iterable[str]) -> tuple[str, ...]:
    return tuple(tickers)


@attrs.frozen
class DataRequest:
    """What the core asks a data source for.

    :param tickers: asset symbols, in the order the stage lists them.
    :param start: first date wanted (inclusive), or ``None`` for all history.
    :param end: last date wanted (inclusive), or ``None`` for up to the latest.
    :param interval: bar size; only ``"1d"`` is used by the built-in stages.
    :param data_dir: a directory of files, for sources that read files.
    :param cache_dir: where downloading sources keep their Parquet cache.
    :param seed: seed for sources that generate data.
    :param refresh: ignore cached copies and download again.
    """

    tickers: tuple[str, ...] = attrs.field(converter=_as_tuple)
    start: dt.date | None = None
    end: dt.date | None = None
    interval: str = "1d"
    data_dir: Path | None = None
    cache_dir: Path = Path("data_cache")
    seed: int = 0
    refresh: bool = False


class DataSource(abc.ABC):
    """A named supplier of daily OHLCV frames, registered by a plugin.

    Implementations return one :class:`pandas.DataFrame` per requested ticker,
    indexed by date, with columns ``open, high, low, close, volume`` (any case;
    ``Adj Close`` is ignored), prices adjusted for splits. The core aligns
    calendars and validates the frames, so a source need not; it must raise
    :class:`ploutos_core.errors.DataError` with a helpful message when it
    cannot supply a ticker. Setting ``frame.attrs["origin"]`` (e.g. a file path)
    lets validation errors say where a bad row came from.
    """

    #: registered name, used by ``--source``.
    name: str = ""
    #: one line shown by ``ploutos plugins list`` and ``ploutos data sources``.
    description: str = ""

    @abc.abstractmethod
    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        """Return one raw OHLCV frame per ticker of ``request``.

        :param request: tickers, dates and options of the load.
        :return: a mapping from each requested ticker to its frame.
        """
