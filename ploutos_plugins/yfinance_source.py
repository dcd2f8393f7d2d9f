"""Built-in ``yfinance`` data source: Yahoo Finance daily bars with an on-disk Parquet cache.

``auto_adjust=True`` is passed explicitly (yfinance changed its default once):
open, high, low and close carry the same split-and-dividend adjustment. Yahoo
answers rate limits and outages with empty frames; those are errors with a hint,
never a silent empty run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from collections.abc import Callable, Mapping

import pandas as pd

from ploutos_core import DataError, DataRequest, DataSource, ParquetCache, Registrar, hookimpl

HINT = ("use the cache (run 'ploutos data fetch' where Yahoo is reachable), "
        "'--source csv --data-dir DIR', or '--source synthetic'")


def yahoo_symbol(ticker: str) -> str:
    """Yahoo's symbol of a ticker: share classes take a dash there (``BRK_B`` → ``BRK-B``),
    where file names, the CSV source and stage files use an underscore."""
    return ticker.replace("_", "-")


def download(ticker: str, start: dt.date | None, end: dt.date | None,
             interval: str) -> pd.DataFrame:
    """Download one ticker from Yahoo (the only network call of this module).

    yfinance's own log lines and warnings are silenced; its errors are raised
    (``raise_errors=True``) so the retry loop can say what went wrong.
    """
    import yfinance

    quiet = logging.getLogger("yfinance")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = yfinance.Ticker(ticker).history(
                start=start.isoformat() if start else "1900-01-01",
                # yfinance's end is exclusive; ours is inclusive.
                end=(end + dt.timedelta(days=1)).isoformat() if end else None,
                interval=interval,
                auto_adjust=True,
                actions=False,
                raise_errors=True,
            )
    finally:
        quiet.setLevel(level)
    return frame if frame is not None else pd.DataFrame()


def flatten_columns(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Drop yfinance's (field, ticker) column level when present."""
    if isinstance(frame.columns, pd.MultiIndex):
        levels = [list(map(str, frame.columns.get_level_values(i)))
                  for i in range(frame.columns.nlevels)]
        ticker_level = next((i for i, values in enumerate(levels) if ticker in values), None)
        if ticker_level is not None:
            frame = frame.xs(ticker, axis=1, level=ticker_level)
        else:
            frame = frame.droplevel(list(range(1, frame.columns.nlevels)), axis=1)
    return frame


class YFinanceSource(DataSource):
    """Downloads from Yahoo Finance, retrying with backoff, and caches under ``data_cache/``.

    :param downloader: the function that performs the network call (replaced in tests).
    :param attempts: tries per ticker before giving up.
    :param backoff: seconds before the second try; doubled after each failure.
    :param sleep: the sleep function (replaced in tests).
    """

    name = "yfinance"
    description = "Yahoo Finance daily bars (auto-adjusted), cached as Parquet in data_cache/"

    def __init__(
        self,
        downloader: Callable[[str, dt.date | None, dt.date | None, str], pd.DataFrame] = download,
        attempts: int = 3,
        backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.downloader = downloader
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep

    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        """One frame per ticker, from the cache when present (unless ``refresh``)."""
        cache = ParquetCache(request.cache_dir)
        frames = {}
        for ticker in request.tickers:
            path = cache.path_for(ticker, request.interval, request.start, request.end)
            if path.exists() and not request.refresh:
                frames[ticker] = cache.load(path)
                continue
            frame = self._download_with_retry(ticker, request)
            cache.store(path, frame)
            frame.attrs["origin"] = f"yfinance, cached at {path}"
            frames[ticker] = frame
        return frames

    def _download_with_retry(self, ticker: str, request: DataRequest) -> pd.DataFrame:
        delay = self.backoff
        problems: list[str] = []
        symbol = yahoo_symbol(ticker)
        for attempt in range(1, self.attempts + 1):
            try:
                frame = self.downloader(symbol, request.start, request.end, request.interval)
            except Exception as exc:  # yfinance raises many network and parsing errors
                problem = f"{type(exc).__name__}: {exc}"
            else:
                frame = flatten_columns(frame, symbol)
                if len(frame) > 0:
                    frame.index.name = "date"
                    return frame[[c for c in frame.columns
                                  if str(c).lower() in {"open", "high", "low", "close", "volume"}]]
                problem = "Yahoo returned no rows (offline, rate-limited, delisted or misspelt)"
            if problem not in problems:
                problems.append(problem)
            if attempt < self.attempts:
                self.sleep(delay)
                delay *= 2
        raise DataError(f"yfinance download of {ticker!r} failed after {self.attempts} "
                        f"attempt(s): {' / '.join(problems)}; {HINT}")


@hookimpl
def ploutos_register_data_sources(register: Registrar[DataSource]) -> None:
    """Register the yfinance source."""
    register(YFinanceSource())
