"""On-disk Parquet cache of downloaded daily bars, keyed by ticker, interval and dates."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import attrs
import pandas as pd

from ploutos_core.errors import DataError
from ploutos_core.runfiles.atomic import atomic_path

_NAME = re.compile(
    r"^(?P<ticker>.+)__(?P<interval>[^_]+)__(?P<start>[^_]+)__(?P<end>[^_]+)\.parquet$")


@attrs.frozen
class CacheEntry:
    """One cached download.

    :param path: the Parquet file.
    :param ticker: the symbol.
    :param interval: bar size, e.g. ``"1d"``.
    :param start: first date asked for (``"min"`` when open).
    :param end: last date asked for (``"max"`` when open).
    """

    path: Path
    ticker: str
    interval: str
    start: str
    end: str

    @property
    def size_bytes(self) -> int:
        """Size of the file on disk."""
        return self.path.stat().st_size


@attrs.frozen
class ParquetCache:
    """A directory of Parquet files, one per (ticker, interval, start, end).

    :param root: the cache directory (``data_cache/`` by default).
    """

    root: Path

    def path_for(self, ticker: str, interval: str, start: dt.date | None,
                 end: dt.date | None) -> Path:
        """Where the frame for this key is (or would be) stored."""
        safe = ticker.replace("/", "-").replace("^", "_idx_")
        lo = start.isoformat() if start else "min"
        hi = end.isoformat() if end else "max"
        return self.root / f"{safe}__{interval}__{lo}__{hi}.parquet"

    def load(self, path: Path) -> pd.DataFrame:
        """Read a cached frame.

        :raises DataError: when the file is unreadable (suggests ``ploutos data clear``).
        """
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"cached file {path} is corrupt ({exc}); delete it with "
                            f"'ploutos data clear' and fetch again") from exc
        frame.attrs["origin"] = str(path)
        return frame

    def store(self, path: Path, frame: pd.DataFrame) -> None:
        """Write ``frame`` atomically to ``path``."""
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp)

    def entries(self) -> list[CacheEntry]:
        """Every cached file, sorted by name; unrecognised files are ignored."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob("*.parquet")):
            match = _NAME.match(path.name)
            if match:
                found.append(CacheEntry(path=path, **match.groupdict()))
        return found

    def clear(self, tickers: tuple[str, ...] = ()) -> list[CacheEntry]:
        """Delete cached files (only those of ``tickers`` when given); return what was removed."""
        wanted = {t.upper() for t in tickers}
        removed = []
        for entry in self.entries():
            if not wanted or entry.ticker.upper() in wanted:
                entry.path.unlink()
                removed.append(entry)
        return removed
