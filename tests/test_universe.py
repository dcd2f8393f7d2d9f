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
import torch

from ploutos_core.config.stage import EnvSettings, StageSpec, UniverseSettings
from ploutos_core.data.panel import DateRange
from ploutos_core.data.universe import Universe
from ploutos_core.data.validation import align
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.env.torch_portfolio import TorchPortfolioVecEnv
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


BACKENDS = {"numpy": PortfolioVecEnv, "torch": TorchPortfolioVecEnv}


def _day_and_assets(env: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(env, TorchPortfolioVecEnv):
        return env.day.numpy().copy(), env.assets.numpy().copy()
    return env._day.copy(), env.assets.copy()


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_universe_sampling_never_draws_a_ticker_missing_on_a_day(universe: Universe,
                                                                 backend: str) -> None:
    market = MarketArrays.from_universe(universe, SETTINGS, TRAIN, label="train split")
    env = BACKENDS[backend](market, 16, SETTINGS, cost_rate=0.001, seed=5, assets=3)
    assert env.observation_space.shape[0] == 3
    env.reset()
    drawn: set[int] = set()
    assert market.available is not None
    for _ in range(400):  # ten episodes per environment
        days, assets = _day_and_assets(env)
        drawn.update(assets.ravel().tolist())
        assert all(len(set(row)) == 3 for row in assets)  # no ticker twice in one portfolio
        assert market.available[days[:, None], assets].all()
        observations, rewards, _, _ = env.step(env.action_space.sample()[None].repeat(16, 0))
        assert np.isfinite(observations).all() and np.isfinite(rewards).all()
    assert drawn == set(range(6))  # late and early-ending tickers are drawn too


@pytest.mark.parametrize("exposure", ["full", "volatility_target"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_neutral_action_on_a_universe_earns_zero_relative_reward(universe: Universe,
                                                                 backend: str,
                                                                 exposure: str) -> None:
    market = MarketArrays.from_universe(universe, SETTINGS, TRAIN, label="train split")
    settings = attrs.evolve(SETTINGS, target_smoothing=0.8, exposure=exposure)
    env = BACKENDS[backend](market, 8, settings, 0.001, seed=1, assets=4)
    env.reset()
    for _ in range(100):
        _, rewards, _, _ = env.step(np.zeros((8, 5), dtype=np.float32))
        np.testing.assert_array_equal(rewards, 0.0)


@pytest.mark.parametrize("exposure", ["full", "volatility_target"])
def test_torch_env_steps_a_sub_universe_like_the_numpy_env(universe: Universe,
                                                           exposure: str) -> None:
    """Same tickers, days and actions (the torch env takes the NumPy env's state): equal
    observations and rewards until the first reset, and the terminal observation of a
    stored transition is rebuilt from its day, weights and assets."""
    settings = attrs.evolve(SETTINGS, no_trade_band=0.02, target_smoothing=0.5,
                            exposure=exposure)
    market = MarketArrays.from_universe(universe, settings, TRAIN, label="train split")
    numpy_env = PortfolioVecEnv(market, 6, settings, 0.001, seed=2, assets=3)
    torch_env = TorchPortfolioVecEnv.from_numpy(numpy_env, "cpu", seed=2)
    np.testing.assert_array_equal(torch_env.assets.numpy(), numpy_env.assets)
    np.testing.assert_array_equal(torch_env.observation().numpy(), numpy_env._observe())
    rng = np.random.default_rng(0)
    for _ in range(settings.episode_length - 1):
        actions = rng.uniform(-1, 1, (6, 4)).astype(np.float32)
        observations, rewards, dones, _ = numpy_env.step(actions)
        step = torch_env.step_tensors(torch.as_tensor(actions, dtype=torch.float64))
        assert not dones.any() and not step.done.any()
        np.testing.assert_allclose(step.reward.numpy(), rewards, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(torch_env.observation().numpy(), observations, rtol=1e-6,
                                   atol=1e-7)
        rebuilt = torch_env.observe(step.day + 1, step.next_weights, step.assets)
        np.testing.assert_allclose(rebuilt.numpy(), observations, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="needs its assets"):
        torch_env.observe(step.day, step.next_weights)


def test_torch_universe_state_round_trips(universe: Universe) -> None:
    market = MarketArrays.from_universe(universe, SETTINGS, TRAIN, label="train split")
    env = TorchPortfolioVecEnv(market, 4, SETTINGS, 0.001, seed=3, assets=2)
    for _ in range(50):
        env.step_tensors(torch.zeros((4, 3), dtype=torch.float64))
    saved = env.state_dict()
    again = TorchPortfolioVecEnv(market, 4, SETTINGS, 0.001, seed=9, assets=2)
    assert again.load_state_dict(saved)
    for _ in range(60):  # past a reset: the same tickers are drawn again
        first = env.step_tensors(torch.zeros((4, 3), dtype=torch.float64))
        second = again.step_tensors(torch.zeros((4, 3), dtype=torch.float64))
        assert torch.equal(first.assets, second.assets)
        assert torch.equal(first.reward, second.reward)
    # A checkpoint written before universes were sampled here (no "assets") still loads.
    old = {k: v for k, v in saved.items() if k != "assets"}
    assert TorchPortfolioVecEnv(market, 4, SETTINGS, 0.001, assets=2).load_state_dict(old)


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


def test_a_later_stages_missing_data_fails_before_the_first_stage_trains(
        run_cli: Any, tiny_stage_file: Any, tmp_path: Path) -> None:
    """tiny2's universe names a ticker the CSV folder lacks: the run stops in one line
    before tiny1 trains, and leaves no file behind."""
    from tests.conftest import TINY_TOML
    from tests.trading_helpers import write_csv_prices

    data = write_csv_prices(tmp_path / "prices", ("AAA", "BBB", "CCC", "DDD"), "2014-12-31")
    text = TINY_TOML.format(gate1=-100.0) + \
        '[stage.universe]\ntickers = ["AAA", "BBB", "CCC", "DDD", "NOPE"]\n'
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    out = tmp_path / "run"
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file", str(path),
                     "--source", "csv", "--data-dir", str(data), "--out", str(out),
                     "--no-progress")
    assert result.code == 1
    assert result.err.count("\n") == 1, result.err
    assert "tiny2: [stage.universe] ticker 'NOPE'" in result.err
    assert "tiny1: training" not in result.out and "training" not in result.out
    assert not out.exists() or not any(out.rglob("*.zip"))
