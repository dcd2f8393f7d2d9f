"""Built-in ``synthetic`` data source: seeded, correlated prices with volatility regimes.

The same seed and ticker always give the same prices, whatever else is requested:
a market factor depends on the seed alone, and each ticker's loading and
idiosyncratic noise on the seed and the ticker's name. Any ticker name works.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ploutos_core import DataRequest, DataSource, Registrar, hookimpl

#: the generated calendar; requests are cut from it so prices do not depend on the dates asked.
EPOCH = dt.date(1990, 1, 1)
HORIZON = dt.date(2030, 12, 31)

# Two-state market: calm (drift up, low volatility) and turbulent (drift down, high volatility).
_REGIME_DRIFT = np.array([0.0006, -0.0008])
_REGIME_VOL = np.array([0.008, 0.022])
_STAY = np.array([0.992, 0.96])


def _calendar() -> pd.DatetimeIndex:
    return pd.bdate_range(EPOCH, HORIZON)


def _market(seed: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x5EED])
    regimes = np.empty(n_days, dtype=np.int64)
    state = 0
    switches = rng.random(n_days)
    for day in range(n_days):
        regimes[day] = state
        if switches[day] > _STAY[state]:
            state = 1 - state
    returns = _REGIME_DRIFT[regimes] + _REGIME_VOL[regimes] * rng.standard_normal(n_days)
    return returns, regimes


def synthetic_frame(ticker: str, seed: int) -> pd.DataFrame:
    """The full generated OHLCV history of ``ticker`` for ``seed``."""
    calendar = _calendar()
    n_days = len(calendar)
    market, regimes = _market(seed, n_days)
    rng = np.random.default_rng([seed, zlib.crc32(ticker.encode())])
    beta = rng.uniform(0.6, 1.5)
    idio_vol = rng.uniform(0.004, 0.02)
    alpha = rng.normal(0.0001, 0.0002)
    returns = alpha + beta * market + idio_vol * rng.standard_normal(n_days)
    close = rng.uniform(20, 200) * np.exp(np.cumsum(returns))
    gap = 0.25 * idio_vol * rng.standard_normal(n_days)
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(gap)
    spread = np.abs(rng.standard_normal((2, n_days))) * (0.3 * _REGIME_VOL[regimes] + 0.002)
    high = np.maximum(open_, close) * np.exp(spread[0])
    low = np.minimum(open_, close) * np.exp(-spread[1])
    volume = np.round(rng.lognormal(14 + regimes * 0.5, 0.3, n_days))
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=calendar,
    )


class SyntheticSource(DataSource):
    """Generated markets for tests, tutorials and benchmarks; no network needed."""

    name = "synthetic"
    description = "seeded correlated prices with volatility regimes (any ticker, 1990-2030)"

    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        """One generated frame per ticker, cut to the requested dates."""
        lo = pd.Timestamp(request.start or EPOCH)
        hi = pd.Timestamp(request.end or HORIZON)
        frames = {}
        for ticker in request.tickers:
            frame = synthetic_frame(ticker, request.seed).loc[lo:hi]
            frame.attrs["origin"] = f"synthetic seed {request.seed}"
            frames[ticker] = frame
        return frames


@hookimpl
def ploutos_register_data_sources(register: Registrar[DataSource]) -> None:
    """Register the synthetic source."""
    register(SyntheticSource())
