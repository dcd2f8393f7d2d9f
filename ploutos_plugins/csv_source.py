"""Built-in ``csv`` data source: a directory of ``TICKER.csv`` files.

The format is that of Yahoo Finance daily history: ``Date, Open, High, Low,
Close, Adj Close, Volume`` with OHLC already adjusted (``Adj Close`` may be empty
and is ignored). The directory is ``--data-dir`` or ``$PLOUTOS_DATA_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ploutos_core import DataError, DataRequest, DataSource, Registrar, hookimpl

DATA_DIR_ENV = "PLOUTOS_DATA_DIR"


def resolve_data_dir(request: DataRequest) -> Path:
    """The directory to read: the request's, else ``$PLOUTOS_DATA_DIR``.

    :raises DataError: when neither is set or the directory does not exist.
    """
    chosen = request.data_dir or (Path(os.environ[DATA_DIR_ENV])
                                  if os.environ.get(DATA_DIR_ENV) else None)
    if chosen is None:
        raise DataError(f"the csv source needs a directory: pass --data-dir DIR or set "
                        f"{DATA_DIR_ENV}")
    if not chosen.is_dir():
        raise DataError(f"data directory {chosen} does not exist; check --data-dir or "
                        f"{DATA_DIR_ENV}")
    return chosen


def read_csv_file(path: Path) -> pd.DataFrame:
    """Read one file; a corrupt file is a :class:`DataError` naming it."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from exc
    frame.attrs["origin"] = str(path)
    return frame


class CsvSource(DataSource):
    """Reads adjusted daily bars from ``DIR/TICKER.csv``."""

    name = "csv"
    description = "a directory of TICKER.csv files (--data-dir or $PLOUTOS_DATA_DIR)"

    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        """One frame per ticker read from its file."""
        directory = resolve_data_dir(request)
        available = {p.stem.upper(): p for p in directory.glob("*.csv")}
        frames = {}
        for ticker in request.tickers:
            path = available.get(ticker.upper())
            if path is None:
                listing = ", ".join(sorted(available)) or "none"
                raise DataError(f"unknown ticker {ticker!r}: no {ticker}.csv in {directory} "
                                f"(available: {listing})")
            frames[ticker] = read_csv_file(path)
        return frames


@hookimpl
def ploutos_register_data_sources(register: Registrar[DataSource]) -> None:
    """Register the csv source."""
    register(CsvSource())
