"""A causal market-regime classifier: trend and volatility of one index's closes.

Every quantity on day ``t`` uses closes up to and including ``t`` only
(trailing windows), so a label never depends on the future:

* **trend** — ``close[t] / mean(close[t-199 … t]) - 1``: how far the index
  stands above (positive) or below its trailing 200-day mean.
* **volatility ratio** — realised volatility over the last 21 daily log
  returns, divided by the median of that volatility over the trailing 252 days:
  above 1 the market is more turbulent than usual for the past year.

Labels, checked in this order:

* ``bear`` — trend ≤ −2 %: the index is clearly below its long-term mean.
* ``bull`` — trend ≥ +2 % and volatility ratio ≤ 1.5: a clear uptrend that
  is not in a volatility shock.
* ``sideways`` — everything else: the index hugs its mean (|trend| < 2 %), or an
  uptrend is shaken by volatility 1.5 times its usual level.
* ``unknown`` — too little history for either window (the first 272 days of
  the series); never selected by a filter.
"""

from __future__ import annotations

import attrs
import numpy as np
import pandas as pd
from numpy.typing import NDArray

#: the labels a day can get (besides :data:`UNKNOWN`).
REGIMES = ("bull", "bear", "sideways")
UNKNOWN = "unknown"
TRADING_DAYS = 252


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


@attrs.frozen
class RegimeRule:
    """The windows and thresholds of the classifier (defaults as in the module docstring).

    :param trend_window: days of the trailing mean the close is compared with.
    :param trend_band: ``bull`` needs trend ≥ +band, ``bear`` trend ≤ −band.
    :param vol_window: daily log returns in the realised volatility.
    :param vol_lookback: days of volatility whose median is the "usual" level.
    :param high_vol: volatility ratio above which an uptrend counts as ``sideways``.
    """

    trend_window: int = attrs.field(default=200, validator=_positive_int)
    trend_band: float = 0.02
    vol_window: int = attrs.field(default=21, validator=_positive_int)
    vol_lookback: int = attrs.field(default=TRADING_DAYS, validator=_positive_int)
    high_vol: float = 1.5

    @property
    def history(self) -> int:
        """Days of closes needed before the first label (which is on row ``history - 1``)."""
        return max(self.trend_window, self.vol_window + self.vol_lookback)


@attrs.frozen(eq=False)
class RegimeSignals:
    """The classifier's output, one entry per day.

    :param trend: close over its trailing mean, minus one (NaN without enough history).
    :param vol_ratio: realised volatility over its trailing median (NaN without enough history).
    :param labels: ``bull``, ``bear``, ``sideways`` or ``unknown``.
    """

    trend: NDArray[np.float64]
    vol_ratio: NDArray[np.float64]
    labels: NDArray[np.str_]

    def share(self, regime: str) -> float:
        """Fraction of labelled (not ``unknown``) days that are ``regime``."""
        known = self.labels != UNKNOWN
        return float((self.labels[known] == regime).mean()) if known.any() else 0.0


#: the rule of the built-in filters.
DEFAULT_RULE = RegimeRule()


def classify(close: NDArray[np.float64], rule: RegimeRule = DEFAULT_RULE) -> RegimeSignals:
    """Label every day of ``close`` with its regime, causally.

    :param close: positive closes of the index, oldest first.
    :param rule: windows and thresholds.
    :raises ValueError: for a non-1-D array or non-positive prices.
    """
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1:
        raise ValueError(f"close must be one price per day (1-D), got shape {close.shape}")
    if not np.all(np.isfinite(close) & (close > 0)):
        raise ValueError("close must hold finite, positive prices")
    series = pd.Series(close)
    # Trailing windows only (pandas' rolling ends at the current row): causal by construction.
    trend = (series / series.rolling(rule.trend_window).mean() - 1.0).to_numpy()
    log_returns = pd.Series(np.log(close)).diff()
    vol = log_returns.rolling(rule.vol_window).std() * np.sqrt(TRADING_DAYS)
    vol_ratio = (vol / vol.rolling(rule.vol_lookback).median()).to_numpy()

    labels = np.full(close.shape, UNKNOWN, dtype="<U8")
    known = np.isfinite(trend) & np.isfinite(vol_ratio)
    bear = known & (trend <= -rule.trend_band)
    bull = known & ~bear & (trend >= rule.trend_band) & (vol_ratio <= rule.high_vol)
    labels[known] = "sideways"
    labels[bear] = "bear"
    labels[bull] = "bull"
    return RegimeSignals(trend=trend, vol_ratio=vol_ratio, labels=labels)
