"""What the environment reads each day: causal features and price growth, per asset.

Built once per split, from a stage's panel (its own tickers) or from a training
universe (a wider pool of tickers, each on its own history, with a mask of the days
each can be traded).
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import EnvSettings, StageSpec
from ploutos_core.data.panel import DateRange, Panel, index_range
from ploutos_core.data.universe import Universe
from ploutos_core.env.features import compute_features, window_features
from ploutos_core.errors import DataError


@attrs.frozen(eq=False)
class MarketArrays:
    """What the environment reads each step, precomputed once per panel.

    :param observations: ``(n_days, n_assets, window * n_features)`` float32.
    :param growth: ``(n_days, n_assets)``: close(t+1) / close(t); the last row is unused.
    :param first: first day a decision can be made (features defined, inside the split).
    :param last: last day of the split; the final decision is made at ``last - 1``.
    :param dates: the panel's dates, for info and reports.
    :param available: ``(n_days, n_assets)``: whether the asset can be traded at the close
        of the day (features defined, a price the next day); ``None``: every asset, every
        day of the split. Only a universe has gaps.
    """

    observations: NDArray[np.float32]
    growth: NDArray[np.float64]
    first: int
    last: int
    dates: NDArray[np.datetime64]
    available: NDArray[np.bool_] | None = None

    @classmethod
    def from_panel(cls, panel: Panel, settings: EnvSettings, first: int, last: int,
                   *, label: str) -> MarketArrays:
        """Features and growth of ``panel`` for the split rows ``first…last``.

        :raises DataError: when fewer than two decision days remain after warm-up.
        """
        observations, ready = window_features(compute_features(panel), settings.window)
        start = max(first, ready)
        if last - start < 1:
            raise DataError(
                f"the {label} of {','.join(panel.tickers)} ({panel.date(first)}…"
                f"{panel.date(last)}) leaves {max(last - start, 0)} trading days after the "
                f"features' warm-up (first usable day {panel.date(min(ready, panel.n_days - 1))}); "
                f"use earlier data or a later split"
            )
        growth = np.ones_like(panel.close)
        growth[:-1] = panel.close[1:] / panel.close[:-1]
        return cls(observations=observations, growth=growth, first=start, last=last,
                   dates=panel.dates)

    @classmethod
    def for_split(cls, panel: Panel, stage: StageSpec, split: str) -> MarketArrays:
        """Features and growth of ``panel`` for the stage's split called ``split``.

        :raises DataError: when the split is empty or too short after warm-up.
        """
        label = f"{split} split"
        first, last = panel.index_range(stage.splits.get(split), label=label)
        return cls.from_panel(panel, stage.env, first, last, label=label)



    @classmethod
    def from_universe(cls, universe: Universe, settings: EnvSettings, date_range: DateRange,
                      *, label: str) -> MarketArrays:
        """Features and growth of every ticker of ``universe`` on their common calendar,
        with the days each can be traded, for the rows of ``date_range``.

        :raises DataError: when the range holds no trading day.
        """
        dates = np.unique(np.concatenate([panel.dates for panel in universe.panels]))
        n_days, n_pool = dates.size, len(universe.panels)
        width = settings.window * len(compute_features(universe.panels[0]).names)
        observations = np.zeros((n_days, n_pool, width), dtype=np.float32)
        growth = np.ones((n_days, n_pool))
        available = np.zeros((n_days, n_pool), dtype=bool)
        for column, panel in enumerate(universe.panels):
            features, ready = window_features(compute_features(panel), settings.window)
            rows = np.searchsorted(dates, panel.dates)
            observations[rows, column] = np.nan_to_num(features[:, 0])
            # Growth to the next row of the ticker, only where that is the next calendar day.
            consecutive = np.diff(rows) == 1
            steps = rows[:-1][consecutive]
            growth[steps, column] = (panel.close[1:, 0] / panel.close[:-1, 0])[consecutive]
            tradeable = np.zeros(panel.n_days, dtype=bool)
            tradeable[:-1] = consecutive
            tradeable[:ready] = False
            available[rows, column] = tradeable
        first, last = index_range(dates, date_range, label=label,
                                  what=f"the universe {','.join(universe.tickers)}")
        return cls(observations=observations, growth=growth, first=first, last=last,
                   dates=dates, available=available)
