"""Issue 11: training on sub-universes sampled from a wider pool of tickers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest

from ploutos_core.config.stage import EnvSettings, StageSpec, UniverseSettings
from ploutos_core.data.panel import DateRange
from ploutos_core.data.universe import Universe
from ploutos_core.data.validation import align
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.errors import StageFileError
from tests.conftest import make_tiny_stage


def _panel(ticker: str, start: str, end: str, seed: int) -> Any:
    days = pd.bdate_range(start, end)
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(0.0003 + 0.01 * rng.standard_normal(len(days))))
    frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
                          "close": close, "volume": np.full(len(days), 1e6)}, index=days)
    return align({ticker: frame}, (ticker,), source="test")


@pytest.fixture(scope="module")
def universe() -> Universe:
    """Six tickers: two start late, one stops early."""
    spans = {"A": ("2008-01-01", "2012-12-31"), "B": ("2008-01-01", "2012-12-31"),
             "C": ("2008-01-01", "2012-12-31"), "LATE1": ("2010-06-01", "2012-12-31"),
             "LATE2": ("2011-03-01", "2012-12-31"), "GONE": ("2008-01-01", "2010-12-31")}
    return Universe(panels=tuple(_panel(t, *span, seed=i)
                                 for i, (t, span) in enumerate(spans.items())))


SETTINGS = EnvSettings(action="tilt", reward="relative_log_return", episode_length=40, window=4)
TRAIN = DateRange(dt.date(2009, 1, 1), dt.date(2012, 12, 31))


def test_universe_market_marks_the_days_each_ticker_trades(universe: Universe) -> None:
    market = MarketArrays.from_universe(universe, SETTINGS, TRAIN, label="train split")
    assert market.available is not None and market.available.shape[1] == 6
    dates = market.dates
    late = universe.tickers.index("LATE1")
    gone = universe.tickers.index("GONE")
    assert not market.available[dates < np.datetime64("2010-06-01"), late].any()
    assert not market.available[dates >= np.datetime64("2010-12-31"), gone].any()
    assert market.available[(dates > np.datetime64("2009-06-01"))
                            & (dates < np.datetime64("2010-12-01")), gone].all()
    # Growth is 1 on days without a price (a neutral day, never drawn anyway).
    assert (market.growth[dates < np.datetime64("2010-06-01"), late] == 1.0).all()


def test_universe_sampling_never_draws_a_ticker_missing_on_a_day(universe: Universe) -> None:
    market = MarketArrays.from_universe(universe, SETTINGS, TRAIN, label="train split")
    env = PortfolioVecEnv(market, 16, SETTINGS, cost_rate=0.001, seed=5, assets=3)
    assert env.observation_space.shape[0] == 3
    env.reset()
    drawn: set[int] = set()
    assert market.available is not None
    for _ in range(400):  # ten episodes per environment
        assets, days = env.assets.copy(), env._day.copy()
        drawn.update(assets.ravel().tolist())
        assert all(len(set(row)) == 3 for row in assets)  # no ticker twice in one portfolio
        assert market.available[days[:, None], assets].all()
        observations, rewards, _, _ = env.step(env.action_space.sample()[None].repeat(16, 0))
        assert np.isfinite(observations).all() and np.isfinite(rewards).all()
    assert drawn == set(range(6))  # late and early-ending tickers are drawn too


def test_neutral_action_on_a_universe_earns_zero_relative_reward(universe: Universe) -> None:
    market = MarketArrays.from_universe(universe, SETTINGS, TRAIN, label="train split")
    env = PortfolioVecEnv(market, 8, attrs.evolve(SETTINGS, target_smoothing=0.8), 0.001,
                          seed=1, assets=4)
    env.reset()
    for _ in range(100):
        _, rewards, _, _ = env.step(np.zeros((8, 5), dtype=np.float32))
        np.testing.assert_array_equal(rewards, 0.0)


def test_universe_settings_are_validated() -> None:
    with pytest.raises(StageFileError, match=r"must not repeat @ stage\.universe\.tickers"):
        StageSpec.from_mapping({"stage": {"name": "u", "tickers": ["A"], "timesteps": 10,
                                          "universe": {"tickers": ["X", "X"]}}})
    with pytest.raises(StageFileError, match=r"expected an array.*got str 'SPY' @ stage.tickers"):
        StageSpec.from_mapping({"stage": {"name": "u", "tickers": "SPY", "timesteps": 10}})
    with pytest.raises(StageFileError, match=r"must be in \(0, 1\].* @ stage\.universe\.fraction"):
        StageSpec.from_mapping({"stage": {"name": "u", "tickers": ["A"], "timesteps": 10,
                                          "universe": {"tickers": ["X"], "fraction": 0}}})


def test_a_stage_trains_on_its_universe_then_its_tickers(run_cli: Any, tmp_path: Path) -> None:
    from ploutos_core.config.stage import stage_to_toml

    stage = make_tiny_stage("wide", ("AAA", "BBB"), timesteps=1024,
                            universe=UniverseSettings(tickers=("P1", "P2", "P3", "P4"),
                                                      fraction=0.5),
                            env=attrs.evolve(SETTINGS))
    path = tmp_path / "wide.toml"
    path.write_text(stage_to_toml(stage))
    out = tmp_path / "run"
    result = run_cli("run", "stage", "wide", "--stage-file", str(path), "--source",
                     "synthetic", "--out", str(out), "--no-progress")
    assert result.code == 0, result
    assert "wide: training universe of 4 tickers" in result.out
    assert "wide: 512 steps on sub-universes of 4 tickers, then 512 on AAA,BBB" in result.out
    report = json.loads((out / "reports" / "wide" / "validation.json").read_text())
    assert [b["name"] for b in report["baselines"]][:2] == ["buy_and_hold_AAA",
                                                            "buy_and_hold_BBB"]
    manifest = json.loads((out / "reports" / "run.json").read_text())
    assert manifest["stages"]["wide"]["num_timesteps"] >= 1024
