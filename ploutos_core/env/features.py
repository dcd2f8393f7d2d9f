"""Causal per-asset features: every value at day t uses prices and volumes up to t only.

Raw features (returns over several horizons, realised volatility, range,
drawdown, trend, volume) are standardised by a trailing z-score over the past
year, so no normalisation statistic has to be saved or carried between stages.
"""

from __future__ import annotations

import attrs
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ploutos_core.data.panel import Panel
from ploutos_core.errors import DataError

FEATURE_NAMES = (
    "log_return_1d",
    "log_return_5d",
    "log_return_21d",
    "log_return_63d",
    "log_volatility_21d",
    "log_volatility_63d",
    "log_range",
    "drawdown_252d",
    "trend_50d",
    "log_volume",
)
#: trailing window of the standardisation, and the minimum history it needs.
ZSCORE_WINDOW = 252
ZSCORE_MIN_PERIODS = 126
#: the longest raw-feature lookback (63-day return and volatility).
RAW_LOOKBACK = 63
CLIP = 5.0


@attrs.frozen(eq=False)
class FeatureTable:
    """Standardised features of a panel.

    :param values: ``(n_days, n_assets, n_features)`` float32; NaN before ``first_valid``.
    :param first_valid: first day index at which every feature of every asset is defined.
    :param names: feature names, in the last axis's order.
    """

    values: NDArray[np.float32]
    first_valid: int
    names: tuple[str, ...] = FEATURE_NAMES


def _raw_features(panel: Panel) -> list[pd.DataFrame]:
    close = pd.DataFrame(np.log(panel.close))
    r1 = close.diff()
    vol21 = r1.rolling(21, min_periods=21).std()
    vol63 = r1.rolling(63, min_periods=63).std()
    tiny = 1e-8
    return [
        r1,
        close.diff(5),
        close.diff(21),
        close.diff(63),
        (vol21 + tiny).apply(np.log),
        (vol63 + tiny).apply(np.log),
        pd.DataFrame(np.log(panel.high / panel.low)),
        close - close.rolling(252, min_periods=21).max(),
        close - close.rolling(50, min_periods=21).mean(),
        pd.DataFrame(np.log1p(panel.volume)),
    ]


def _zscore(raw: pd.DataFrame) -> pd.DataFrame:
    rolling = raw.rolling(ZSCORE_WINDOW, min_periods=ZSCORE_MIN_PERIODS)
    std = rolling.std()
    z = (raw - rolling.mean()) / std.where(std > 1e-12)
    # A constant feature (e.g. an index with no volume) carries no information: zero it.
    z = z.where(std > 1e-12, 0.0).where(raw.notna() & std.notna())
    return z.clip(-CLIP, CLIP)


def compute_features(panel: Panel) -> FeatureTable:
    """Standardised causal features of every asset and day of ``panel``.

    :raises DataError: when the panel is too short for the features to exist.
    """
    stacked = np.stack([_zscore(raw).to_numpy() for raw in _raw_features(panel)], axis=-1)
    valid = np.isfinite(stacked).all(axis=(1, 2))
    if not valid.any():
        raise DataError(
            f"{','.join(panel.tickers)}: {panel.n_days} days are too few for the features, "
            f"which need about {RAW_LOOKBACK + ZSCORE_MIN_PERIODS} days of history"
        )
    first_valid = int(np.argmax(valid))
    return FeatureTable(values=stacked.astype(np.float32), first_valid=first_valid)


def window_features(table: FeatureTable, window: int) -> tuple[NDArray[np.float32], int]:
    """Stack the last ``window`` days of features for every day.

    :return: ``(n_days, n_assets, window * n_features)`` float32 (oldest day first)
        and the first day index at which the whole window is defined.
    """
    values = table.values
    n_days, n_assets, n_features = values.shape
    out = np.full((n_days, n_assets, window, n_features), np.nan, dtype=np.float32)
    for lag in range(window):
        out[lag:, :, window - 1 - lag, :] = values[: n_days - lag]
    return out.reshape(n_days, n_assets, window * n_features), table.first_valid + window - 1
