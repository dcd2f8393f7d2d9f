"""Load a validated :class:`Panel` from any registered data source."""

from __future__ import annotations

from ploutos_core.data.panel import DateRange, Panel
from ploutos_core.data.source import DataRequest, DataSource
from ploutos_core.data.validation import align
from ploutos_core.errors import DataError, PluginError


def load_panel(source: DataSource, request: DataRequest) -> Panel:
    """Fetch ``request`` from ``source``, validate every frame and align them.

    :param source: a registered data source.
    :param request: tickers, dates and options.
    :raises DataError: for missing, empty or corrupt data (one line, ticker and date).
    :raises PluginError: when the source returns something that is not a mapping of frames.
    """
    if not request.tickers:
        raise DataError("no tickers requested")
    frames = source.fetch(request)
    if not hasattr(frames, "keys"):
        raise PluginError(f"data source {source.name!r} returned {type(frames).__name__}, "
                          f"expected a mapping of ticker -> DataFrame")
    return align(frames, request.tickers, date_range=DateRange(request.start, request.end),
                 source=source.name)
