"""Compute where training episodes may start, from a stage's day filter (issue 7)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import StageSpec
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import Panel
from ploutos_core.data.source import DataSource
from ploutos_core.data.stage_data import DataOptions, stage_request
from ploutos_core.env.day_filters import DayFilterContext
from ploutos_core.errors import DataError, PloutosError, PluginError
from ploutos_core.pluginmanager.registry import Registry


def episode_start_mask(registry: Registry, stage: StageSpec, panel: Panel, source: DataSource,
                       options: DataOptions) -> NDArray[np.bool_] | None:
    """The stage's day filter applied to ``panel``: one boolean per day, or ``None``.

    The filter may read another ticker's closes (e.g. an index the stage does not
    trade) through the same data source, on the panel's calendar.

    :raises PluginError: when the filter fails or returns anything but one boolean per day.
    :raises DataError: when a ticker it reads lacks a price on a day of the panel.
    """
    name = stage.env.day_filter
    if not name:
        return None

    def load_close(ticker: str) -> NDArray[np.float64]:
        if ticker in panel.tickers:
            return panel.close[:, panel.tickers.index(ticker)].copy()
        other = load_panel(source, stage_request(stage, options, "validation", (ticker,)))
        where = np.searchsorted(other.dates, panel.dates)
        found = (where < other.n_days) & (other.dates[np.minimum(where, other.n_days - 1)]
                                          == panel.dates)
        if not found.all():
            raise DataError(f"{ticker}: no price on {panel.date(int(np.argmin(found)))}, a "
                            f"trading day of {','.join(panel.tickers)}; the day filter "
                            f"{name!r} needs it")
        closes: NDArray[np.float64] = other.close[where, 0].copy()
        return closes

    plugin = registry.plugin_of("day_filters", name)
    try:
        mask = np.asarray(registry.day_filter(name).select(
            DayFilterContext(panel=panel, stage=stage, load_close=load_close)))
    except PloutosError:
        raise
    except Exception as exc:  # plugin code: name it, whatever it raised
        raise PluginError(f"day filter {name!r} of plugin {plugin!r} failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    if mask.dtype != np.bool_ or mask.shape != (panel.n_days,):
        raise PluginError(f"day filter {name!r} of plugin {plugin!r} returned an array of "
                          f"{mask.dtype} with shape {mask.shape}; it must return booleans, "
                          f"one per panel day ({panel.n_days})")
    return mask
