"""The volatility-targeted exposure: the share of the portfolio held in 1/N each day.

One definition, used by the ``volatility_targeted_equal_weight`` baseline of every
report and by ``[stage.env] exposure = "volatility_target"`` (issue 11): the trailing
252-day realised volatility of the daily-rebalanced 1/N portfolio divided by its
trailing 21-day volatility, capped at 1 (Moreira & Muir, 2017) — less invested when
recent volatility is above its norm. Both windows end at the decision day's close;
with fewer than 21 recent or 126 normal returns the exposure is 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: trailing windows: realised volatility, and its norm (the target).
VOL_TARGET_WINDOW = 21
VOL_TARGET_LOOKBACK = 252


def equal_weight_daily_returns(growth: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(n_days,)`` return of the daily-rebalanced 1/N portfolio *into* each day (NaN
    on day 0).

    :param growth: ``(n_days, n_assets)``: close(t+1) / close(t).
    """
    daily = np.full(growth.shape[0], np.nan)
    daily[1:] = growth[:-1].mean(axis=1) - 1.0
    return daily


def trailing_exposure(windows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exposure of trailing windows of 1/N returns, ``(..., VOL_TARGET_LOOKBACK)``, each
    ending at its decision day; NaN marks days before the data began."""
    recent = windows[..., -VOL_TARGET_WINDOW:]
    count = np.sum(~np.isnan(windows), axis=-1)
    enough = (~np.isnan(recent).any(axis=-1)) & (count >= VOL_TARGET_LOOKBACK // 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        vol = np.std(np.where(enough[..., None], recent, 0.0), axis=-1, ddof=1)
        norm = np.nanstd(np.where(enough[..., None], windows, 0.0), axis=-1, ddof=1)
        exposure = np.minimum(1.0, norm / vol)
    return np.where(enough & (vol > 0), exposure, 1.0)


def volatility_target_exposure(daily: NDArray[np.float64], days: NDArray[np.int64]
                               ) -> NDArray[np.float64]:
    """Exposure on each of ``days`` from the 1/N returns ``daily``
    (:func:`equal_weight_daily_returns`), using returns up to each day only."""
    padded = np.concatenate([np.full(VOL_TARGET_LOOKBACK - 1, np.nan), daily])
    windows = np.lib.stride_tricks.sliding_window_view(padded, VOL_TARGET_LOOKBACK)
    return trailing_exposure(windows[np.asarray(days, dtype=np.int64)])


def exposure_path(growth: NDArray[np.float64], first_day: int, n_days: int,
                  assets: NDArray[np.int64]) -> NDArray[np.float64]:
    """``(n_days,)`` exposure on the days ``first_day…first_day + n_days − 1`` of the 1/N
    portfolio of ``assets`` (a universe environment's sampled tickers, for one episode;
    days past the market's end, never reached, repeat its last day).

    :param growth: ``(n_market_days, n_pool)`` price growth of the market.
    :param assets: market columns.
    """
    days = np.minimum(first_day + np.arange(n_days), growth.shape[0] - 1)
    return volatility_target_exposure(equal_weight_daily_returns(growth[:, assets]), days)


def scale_exposure(target: NDArray[np.float64], exposure: NDArray[np.float64]
                   ) -> NDArray[np.float64]:
    """Targets ``(n, n_assets + 1)`` with their assets scaled by ``exposure`` ``(n,)``, the
    rest in cash: ``[w · e, 1 − e · (1 − cash)]``."""
    scale = exposure[:, None]
    return np.concatenate([target[:, :-1] * scale, 1.0 - scale * (1.0 - target[:, -1:])],
                          axis=1)
