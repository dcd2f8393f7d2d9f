"""Issue 11: ``exposure = "volatility_target"`` — the policy's target scaled each day by the
volatility-targeted baseline's exposure, one definition shared with that baseline."""

from __future__ import annotations

import datetime as dt

import attrs
import numpy as np
import pytest

from ploutos_core import DataRequest, Registry, get_plugin_manager
from ploutos_core.config.stage import EnvSettings, StageSpec
from ploutos_core.data.loading import load_panel
from ploutos_core.env.exposure import (
    equal_weight_daily_returns,
    exposure_path,
    scale_exposure,
    volatility_target_exposure,
)
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.errors import StageFileError
from ploutos_core.evaluation.backtest import baseline_backtests

VOL_TARGET = EnvSettings(action="tilt", exposure="volatility_target", window=3)


def _reference(close: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The baseline's definition, written as a plain loop."""
    daily = np.full(close.shape[0], np.nan)
    daily[1:] = (close[1:] / close[:-1]).mean(axis=1) - 1.0
    exposure = np.ones(len(days))
    for i, day in enumerate(days):
        recent = daily[max(1, day - 20):day + 1]
        norm = daily[max(1, day - 251):day + 1]
        if len(recent) < 21 or len(norm) < 126:
            continue
        exposure[i] = min(1.0, np.std(norm, ddof=1) / np.std(recent, ddof=1))
    return exposure


def _close(n_days: int = 700, n_assets: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    volatility = 0.01 * (1 + 2 * (np.sin(np.arange(n_days) / 40) > 0.6))  # calm and stormy
    return 100 * np.exp(np.cumsum(volatility[:, None] * rng.standard_normal((n_days, n_assets)),
                                  axis=0))


def test_exposure_is_the_baseline_definition_on_every_day_including_short_history() -> None:
    close = _close()
    growth = np.ones_like(close)
    growth[:-1] = close[1:] / close[:-1]
    days = np.arange(close.shape[0])
    exposure = volatility_target_exposure(equal_weight_daily_returns(growth), days)
    np.testing.assert_allclose(exposure, _reference(close, days), rtol=1e-12, atol=1e-12)
    assert (exposure[:126] == 1.0).all() and exposure.min() < 0.6  # too little history: 1


def test_a_sampled_episode_gets_the_exposure_of_its_own_assets_from_the_past_only() -> None:
    close = _close(n_assets=5)
    growth = np.ones_like(close)
    growth[:-1] = close[1:] / close[:-1]
    for first, columns in ((10, [0, 1, 2]), (200, [4, 2, 0]), (400, [1, 3, 4])):
        assets = np.array(columns)
        path = exposure_path(growth, first, 252, assets)
        expected = _reference(close[:, assets], np.arange(first, first + 252))
        np.testing.assert_allclose(path, expected, rtol=1e-12, atol=1e-12)
        changed = growth.copy()
        changed[first + 100:] *= 1.5  # prices after a day change nothing up to it
        np.testing.assert_array_equal(exposure_path(changed, first, 252, assets)[:101],
                                      path[:101])


def test_scaled_targets_keep_the_tilt_and_hold_the_rest_in_cash() -> None:
    target = np.array([[0.5, 0.3, 0.2], [0.25, 0.25, 0.5]])
    scaled = scale_exposure(target, np.array([0.6, 1.0]))
    np.testing.assert_allclose(scaled, [[0.3, 0.18, 0.52], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


@pytest.mark.parametrize("smoothing", [0.0, 0.9])
def test_neutral_action_holds_exactly_the_volatility_targeted_baseline(smoothing: float) -> None:
    """A zero action's backtest is the ``volatility_targeted_equal_weight`` baseline: same
    days, same weights, same returns and costs."""
    source = Registry(get_plugin_manager()).data_source("synthetic")
    panel = load_panel(source, DataRequest(tickers=("AAA", "BBB", "CCC"),
                                           start=dt.date(2006, 1, 1), end=dt.date(2010, 12, 31),
                                           seed=7))
    settings = attrs.evolve(VOL_TARGET, target_smoothing=smoothing)
    market = MarketArrays.from_panel(panel, settings, 400, panel.n_days - 1, label="test")
    env = PortfolioVecEnv(market, 1, settings, cost_rate=0.001, mode="backtest")
    env.reset()
    days, returns, weights = [], [], []
    done = False
    while not done:
        _, _, dones, infos = env.step(np.zeros((1, 4), dtype=np.float32))
        days.append(infos[0]["day"])
        returns.append(infos[0]["net_return"])
        weights.append(infos[0]["weights"])
        done = bool(dones[0])
    baseline = next(b for b in baseline_backtests(panel.close, panel.tickers, np.array(days),
                                                  0.001)
                    if b.name == "volatility_targeted_equal_weight")
    np.testing.assert_allclose(returns, baseline.returns, rtol=1e-12, atol=1e-15)
    assert np.min(np.array(weights)[:, -1]) == 0.0 < np.max(np.array(weights)[:, -1])


def test_exposure_setting_is_validated() -> None:
    with pytest.raises(StageFileError, match=r"exposure"):
        StageSpec.from_mapping({"stage": {"name": "x", "tickers": ["A"], "timesteps": 10,
                                          "env": {"exposure": "sometimes"}}})
