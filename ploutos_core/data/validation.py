"""Validate raw per-ticker frames and align them into one :class:`Panel`.

Every refusal is a :class:`DataError` naming the ticker, where the frame came
from and the first bad date, so a user can open the file at that line.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ploutos_core.data.panel import FIELDS, DateRange, Panel
from ploutos_core.errors import DataError, PloutosWarning

PRICE_FIELDS = ("open", "high", "low", "close")
#: relative slack for OHLC bounds: real adjusted data miss them in the last binary digit.
OHLC_TOLERANCE = 1e-9

_ALIASES = {"date": "date", "datetime": "date", "adj close": "adj_close", "adj_close": "adj_close"}


def _where(ticker: str, frame: pd.DataFrame) -> str:
    origin = frame.attrs.get("origin")
    return f"{ticker} ({origin})" if origin else ticker


def _first_date(frame: pd.DataFrame, mask: np.ndarray) -> str:
    position = int(np.flatnonzero(mask)[0])
    return str(pd.Timestamp(frame.index[position]).date())


class NoDataInRange(DataError):
    """A ticker has data, but none inside the dates asked for."""


def normalise_frame(ticker: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-case the columns, index by date and keep ``open…volume`` as floats.

    :raises DataError: for an empty frame, missing columns or unparsable dates.
    """
    where = _where(ticker, frame)
    if frame is None or len(frame) == 0:
        raise DataError(f"{where}: no rows of data; check the ticker and the date range")
    out = frame.copy()
    names = [str(c).strip().lower() for c in out.columns]
    out.columns = [_ALIASES.get(name, name) for name in names]
    if "date" in out.columns:
        out = out.set_index("date")
    missing = [name for name in FIELDS if name not in out.columns]
    if missing:
        separator = next((sep for sep in (";", "\t", "|") if any(sep in str(c)
                                                                 for c in frame.columns)),
                         None)
        hint = (f"; the file seems separated by {separator!r}: Ploutos reads comma-separated "
                f"files" if separator else "")
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)}; "
            f"expected Date, Open, High, Low, Close, Volume{hint}"
        )
    index = _parse_dates(where, out.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    out.index = index.normalize()
    for name in FIELDS:
        _refuse_text(where, name, out[name], index)
    values: pd.DataFrame = out[list(FIELDS)].apply(pd.to_numeric, errors="coerce")
    values = values.astype(np.float64)
    values.attrs = dict(frame.attrs)
    return values


def _parse_dates(where: str, values: pd.Index) -> pd.DatetimeIndex:
    """Dates as a :class:`pandas.DatetimeIndex`, or one line naming the first bad one."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601"))
    except (ValueError, TypeError):
        parsed = pd.to_datetime(pd.Series(values), errors="coerce", format="ISO8601")
        bad = parsed.isna().to_numpy()
        position = int(np.flatnonzero(bad)[0]) if bad.any() else 0
        raise DataError(f"{where}: date {values[position]!r} on data row {position + 1} cannot "
                        f"be read; write dates as YYYY-MM-DD") from None


def _refuse_text(where: str, name: str, column: pd.Series, index: pd.DatetimeIndex) -> None:
    """Refuse a price or volume that is text (``abc``), naming the value and its date."""
    numbers = pd.to_numeric(column, errors="coerce")
    text = numbers.isna().to_numpy() & column.notna().to_numpy()
    if text.any():
        position = int(np.flatnonzero(text)[0])
        raise DataError(f"{where}: {name} value {column.iloc[position]!r} on "
                        f"{index[position].date()} is not a number")


#: the most consecutive weekdays without a price that a real market closure explains
#: (4: NYSE after 2001-09-11); a longer hole is missing data.
MAX_CLOSED_WEEKDAYS = 5


def _refuse_holes(where: str, frame: pd.DataFrame) -> None:
    """Refuse a hole of more than :data:`MAX_CLOSED_WEEKDAYS` weekdays between two rows:
    the move across it would count as one day's return (issue 14)."""
    if len(frame) < 2:
        return
    days = frame.index.values.astype("datetime64[D]")
    weekdays = np.busday_count(days[:-1], days[1:]) - 1
    holes = np.flatnonzero(weekdays > MAX_CLOSED_WEEKDAYS)
    if holes.size:
        i = int(holes[0])
        raise DataError(f"{where}: no prices for {int(weekdays[i])} weekdays between {days[i]} "
                        f"and {days[i + 1]}; fill the hole with the real prices, or end or "
                        f"start the data there")


def validate_frame(ticker: str, frame: pd.DataFrame) -> None:
    """Refuse duplicate or unsorted dates, bad prices and broken OHLC bounds.

    :param ticker: name used in messages.
    :param frame: a frame returned by :func:`normalise_frame`.
    :raises DataError: naming the ticker and the first bad date.
    """
    where = _where(ticker, frame)
    stamps = frame.index.values.astype("datetime64[D]")
    duplicated = frame.index.duplicated()
    if duplicated.any():
        raise DataError(f"{where}: duplicate date {_first_date(frame, duplicated)}; "
                        f"each trading day must appear once")
    if len(stamps) > 1:
        unsorted = np.concatenate([[False], stamps[1:] <= stamps[:-1]])
        if unsorted.any():
            raise DataError(f"{where}: dates out of order at {_first_date(frame, unsorted)}; "
                            f"sort the rows by date")
    for name in PRICE_FIELDS:
        column = frame[name].to_numpy()
        bad = ~np.isfinite(column) | (column <= 0)
        if bad.any():
            value = column[np.flatnonzero(bad)[0]]
            day = _first_date(frame, bad)
            problem = (f"{name} price on {day} is missing" if not np.isfinite(value)
                       else f"{name} price {value} on {day} is not positive")
            raise DataError(f"{where}: {problem}")
    volume = frame["volume"].to_numpy()
    bad_volume = ~np.isfinite(volume) | (volume < 0)
    if bad_volume.any():
        raise DataError(f"{where}: volume missing or negative on {_first_date(frame, bad_volume)}")
    _refuse_holes(where, frame)
    high = frame["high"].to_numpy()
    low = frame["low"].to_numpy()
    upper = np.maximum(frame["open"].to_numpy(), frame["close"].to_numpy())
    lower = np.minimum(frame["open"].to_numpy(), frame["close"].to_numpy())
    broken = (high < upper * (1 - OHLC_TOLERANCE)) | (low > lower * (1 + OHLC_TOLERANCE))
    if broken.any():
        position = int(np.flatnonzero(broken)[0])
        raise DataError(
            f"{where}: OHLC bounds broken on {_first_date(frame, broken)} "
            f"(open={frame['open'].iat[position]}, high={high[position]}, "
            f"low={low[position]}, close={frame['close'].iat[position]}); "
            f"low must be <= open, close <= high"
        )


def align(
    frames: Mapping[str, pd.DataFrame],
    tickers: tuple[str, ...],
    *,
    date_range: DateRange | None = None,
    source: str = "unknown",
) -> Panel:
    """Validate each frame and align all of them on their common calendar.

    The panel covers the dates where every ticker has history. Inside that
    range a day traded by one ticker and missing from another is an error, not
    a silent fill, because a forward-filled price would invent a zero return.

    :param frames: raw frames by ticker, as a data source returns them.
    :param tickers: the tickers wanted, in column order.
    :param date_range: keep only these dates (applied before alignment).
    :param source: name recorded in the panel.
    :raises DataError: for a missing ticker, bad rows, no overlap or missing days.
    """
    missing = [t for t in tickers if t not in frames]
    if missing:
        raise DataError(f"source {source!r} returned no data for {', '.join(missing)}; "
                        f"check the ticker spelling")
    cleaned: dict[str, pd.DataFrame] = {}
    for ticker in tickers:
        frame = normalise_frame(ticker, frames[ticker])
        validate_frame(ticker, frame)
        if date_range is not None:
            lo = pd.Timestamp(date_range.start) if date_range.start else None
            hi = pd.Timestamp(date_range.end) if date_range.end else None
            inside = frame.loc[lo:hi]
            if inside.empty:
                raise NoDataInRange(f"{_where(ticker, frames[ticker])}: no rows inside "
                                    f"{date_range}; the data cover "
                                    f"{frame.index.min().date()}…{frame.index.max().date()}")
            frame = inside
        cleaned[ticker] = frame
    first = max(frame.index[0] for frame in cleaned.values())
    last = min(frame.index[-1] for frame in cleaned.values())
    _warn_late_start(cleaned, first, date_range)
    if first > last:
        spans = ", ".join(f"{t} {f.index[0].date()}…{f.index[-1].date()}"
                          for t, f in cleaned.items())
        raise DataError(f"the tickers share no common dates ({spans})")
    calendar = pd.DatetimeIndex(
        sorted(set().union(*(f.loc[first:last].index for f in cleaned.values())))
    )
    arrays = {name: np.empty((len(calendar), len(tickers))) for name in FIELDS}
    for column, ticker in enumerate(tickers):
        frame = cleaned[ticker].loc[first:last]
        if len(frame) != len(calendar):
            gaps = calendar.difference(pd.DatetimeIndex(frame.index))
            others = [t for t, f in cleaned.items() if gaps[0] in f.index]
            raise DataError(
                f"{_where(ticker, frames[ticker])}: missing {gaps[0].date()} "
                f"({len(gaps)} day(s) in all) that {', '.join(others)} trade(s); "
                f"the files must share one calendar"
            )
        for name in FIELDS:
            arrays[name][:, column] = frame[name].to_numpy()
    return Panel(
        dates=calendar.values.astype("datetime64[D]"),
        tickers=tuple(tickers),
        source=source,
        **arrays,
    )


#: calendar days a ticker may start after the range it was asked for without a warning.
LATE_START_DAYS = 10


def _warn_late_start(cleaned: Mapping[str, pd.DataFrame], first: pd.Timestamp,
                     date_range: DateRange | None) -> None:
    """Warn when a ticker whose history starts late shrinks the panel for every ticker."""
    asked = pd.Timestamp(date_range.start) if date_range and date_range.start else \
        min(frame.index[0] for frame in cleaned.values())
    if first - asked <= pd.Timedelta(days=LATE_START_DAYS):
        return
    late = [t for t, frame in cleaned.items() if frame.index[0] == first]
    warnings.warn(f"{', '.join(late)} start(s) on {first.date()}, so every ticker's data begin "
                  f"there instead of {asked.date()}; the splits that fall before lose those "
                  f"days", PloutosWarning, stacklevel=3)


def as_date(value: np.datetime64) -> dt.date:
    """Convert a ``datetime64`` to :class:`datetime.date`."""
    return value.astype("datetime64[D]").astype(dt.date)  # type: ignore[no-any-return]
