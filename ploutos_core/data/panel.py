"""The aligned market panel (dates × assets × OHLCV) and inclusive date ranges."""

from __future__ import annotations

import datetime as dt
import hashlib

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.errors import DataError

FIELDS = ("open", "high", "low", "close", "volume")


def _to_date(value: object) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from exc
    raise ValueError(f"{value!r} is not a date")


@attrs.frozen
class DateRange:
    """An inclusive range of calendar dates; ``None`` leaves a side open.

    :param start: first date included, or ``None`` for "from the beginning".
    :param end: last date included, or ``None`` for "to the end of the data".
    """

    start: dt.date | None = attrs.field(default=None, converter=_to_date)
    end: dt.date | None = attrs.field(default=None, converter=_to_date)

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")

    def __str__(self) -> str:
        start = self.start.isoformat() if self.start else ""
        end = self.end.isoformat() if self.end else ""
        return f"{start}…{end}"


def index_range(dates: NDArray[np.datetime64], date_range: DateRange, *, label: str = "range",
                what: str = "the data") -> tuple[int, int]:
    """Indices ``(first, last)``, inclusive, of the ``dates`` inside ``date_range``.

    :param label: how to name the range in an error (e.g. ``"validation split"``).
    :param what: how to name the data in an error (the tickers).
    :raises DataError: when no date falls inside the range.
    """
    n_days = int(dates.shape[0])
    lo, hi = 0, n_days - 1
    if date_range.start is not None:
        lo = int(np.searchsorted(dates, np.datetime64(date_range.start, "D"), "left"))
    if date_range.end is not None:
        hi = int(np.searchsorted(dates, np.datetime64(date_range.end, "D"), "right")) - 1
    if n_days == 0 or lo > hi:
        have = f"{dates[0]}…{dates[-1]}" if n_days else "no days"
        raise DataError(
            f"the {label} {date_range} is empty: the data for {what} cover {have}; "
            f"choose dates inside the data or a source with more history"
        )
    return lo, hi


@attrs.frozen(eq=False)
class Panel:
    """Aligned daily OHLCV for several assets on one calendar.

    All price arrays have shape ``(n_days, n_assets)``; prices are adjusted for
    splits. A panel is only ever built by :func:`ploutos_core.data.validation.align`,
    which guarantees positive finite prices and strictly increasing dates.

    :param dates: trading days as ``datetime64[D]``, strictly increasing.
    :param tickers: asset names, in column order.
    :param source: name of the data source that supplied the prices.
    """

    dates: NDArray[np.datetime64]
    tickers: tuple[str, ...]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    source: str = "unknown"

    @property
    def n_days(self) -> int:
        """Number of trading days."""
        return int(self.dates.shape[0])

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        return len(self.tickers)

    def date(self, index: int) -> dt.date:
        """The calendar date of row ``index``."""
        return self.dates[index].astype("datetime64[D]").astype(dt.date)  # type: ignore[no-any-return]

    def index_range(self, date_range: DateRange, *, label: str = "range") -> tuple[int, int]:
        """Row indices ``(first, last)``, inclusive, of the days inside ``date_range``.

        :param date_range: the calendar range to look up.
        :param label: how to name the range in an error (e.g. ``"validation split"``).
        :raises DataError: when no trading day of the panel falls inside the range.
        """
        return index_range(self.dates, date_range, label=label, what=",".join(self.tickers))

    def fingerprint(self) -> str:
        """A short SHA-256 digest of tickers, dates and prices, for run manifests."""
        digest = hashlib.sha256()
        digest.update(",".join(self.tickers).encode())
        digest.update(np.ascontiguousarray(self.dates.astype("datetime64[D]")).tobytes())
        for name in FIELDS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()[:16]

    def slice_rows(self, first: int, last: int) -> Panel:
        """Rows ``first`` to ``last`` inclusive (walk-forward folds cut prices before a day)."""
        rows = slice(first, last + 1)
        return attrs.evolve(
            self, dates=self.dates[rows], **{name: getattr(self, name)[rows] for name in FIELDS}
        )
