"""Issue 12: ``ploutos signal`` — the model's weights for the next session, and the orders.

The weights of a past day must equal those of the backtest that day (a whole validation
year is checked), the turnover rule must treat an account as the environment treats its
portfolio, and every bad input is refused with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest

import ploutos
from ploutos_core import ConfigError, EnvSettings, Holdings, ModelError, Registry, StaleDataError
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.evaluation.evaluate import load_for_evaluation
from ploutos_core.trading.holdings import read_positions
from ploutos_core.trading.orders import plan_orders
from ploutos_core.trading.signal import compute_signal, load_signal_panel
from tests.trading_helpers import (
    as_day,
    save_probe_model,
    trading_pm,
    trading_stage,
    write_csv_prices,
)

STAGE = trading_stage()
WIDE = trading_stage("wide", tickers=("AAA", "BBB", "CCC"))


@pytest.fixture
def trade_pm() -> Any:
    return trading_pm(STAGE, WIDE)


@pytest.fixture
def trade_registry(trade_pm: Any) -> Registry:
    return Registry(trade_pm)


@pytest.fixture
def model(tmp_path: Path, trade_registry: Registry) -> Path:
    return save_probe_model(trade_registry, STAGE, tmp_path / "models" / "trader.zip")


def weights_of(frame: pd.DataFrame, tickers: tuple[str, ...] = STAGE.tickers) -> np.ndarray:
    return frame[[f"weight_{t}" for t in tickers] + ["weight_cash"]].to_numpy()


def backtest_days(model: Path, registry: Registry, out_dir: Path | None) -> pd.DataFrame:
    evaluation = ploutos.evaluate(model, split="validation", source="synthetic",
                                  out_dir=out_dir, registry=registry)
    daily = evaluation.daily()
    return daily[daily.strategy == "agent"].reset_index(drop=True)


# Every day of the year (a signal per day costs a data load and the features: ~10 s on
# two busy cores, so it runs with the slow tests), and every 7th day in the default run.
@pytest.mark.parametrize("every", [pytest.param(1, marks=pytest.mark.slow), 7])
def test_signal_equals_the_backtest_weights_on_every_day_of_a_validation_year(
        model: Path, trade_registry: Registry, tmp_path: Path, every: int) -> None:
    band_days, checked = signal_against_backtest(STAGE, model, trade_registry, tmp_path, every)
    # The no-trade band held the drifted portfolio on some days: the replayed state matters.
    assert 0 < band_days < checked


def test_signal_equals_the_backtest_under_the_volatility_targeted_exposure(
        tmp_path: Path) -> None:
    stage = trading_stage("vt", env=attrs.evolve(STAGE.env, exposure="volatility_target"))
    registry = Registry(trading_pm(stage))
    model = save_probe_model(registry, stage, tmp_path / "models" / "vt.zip")
    signal_against_backtest(stage, model, registry, tmp_path, every=21)
    daily = pd.read_csv(tmp_path / "reports" / "vt" / "validation_daily.csv")
    rule = daily[daily.strategy == "volatility_targeted_equal_weight"]
    assert (rule.weight_cash > 0.05).any()  # the rule held cash on some days of the year


def signal_against_backtest(stage: Any, model: Path, registry: Registry, out_dir: Path,
                            every: int) -> tuple[int, int]:
    """Check the signal of every ``every``-th validation day (and the last) against the
    backtest's weights that day; return the days the band held the portfolio, and the
    days checked."""
    agent_days = backtest_days(model, registry, out_dir)
    written = pd.read_csv(out_dir / "reports" / stage.name / "validation_daily.csv")
    written = written[written.strategy == "agent"].reset_index(drop=True)
    panel = load_signal_panel(registry, stage, DataOptions(source="synthetic"),
                              as_day(agent_days.date.iloc[-1]))
    # One loaded agent for every day: the replay, not the model file, is under test here;
    # test_signal_api_cli_and_ppo_agree_with_the_backtest goes through the files.
    first_env: list[Any] = []

    def load(env: Any) -> Any:
        if not first_env:
            first_env.append(load_for_evaluation(registry, model, stage, env))
        return first_env[0]

    expected = weights_of(agent_days, stage.tickers)
    expected_csv = weights_of(written, stage.tickers)
    band_days = checked = 0
    for index, day in enumerate(agent_days.date):
        if index % every and index != len(agent_days) - 1:
            continue
        checked += 1
        row = int(np.searchsorted(panel.dates, np.datetime64(as_day(day), "D")))
        signal = compute_signal(registry, stage, model, load,
                                panel.slice_rows(0, row), requested=as_day(day))
        assert signal.as_of == as_day(day)
        assert np.array_equal(signal.weights, expected[index]), day
        np.testing.assert_allclose(signal.weights, expected_csv[index], rtol=1e-9, atol=1e-12)
        band_days += signal.model_turnover == 0.0
    assert len(agent_days) > 250 and checked >= len(agent_days) // every
    return band_days, checked


def test_signal_api_cli_and_ppo_agree_with_the_backtest(
        model: Path, trade_registry: Registry, trade_pm: Any, run_cli: Any,
        tmp_path: Path) -> None:
    agent_days = backtest_days(model, trade_registry, None)
    for index in (0, 100, len(agent_days) - 1):
        day = as_day(agent_days.date.iloc[index])
        result = ploutos.signal(model, as_of=day, source="synthetic", registry=trade_registry)
        assert np.array_equal(result.weights, weights_of(agent_days)[index])
    day = as_day(agent_days.date.iloc[60])
    cli = run_cli("signal", str(model), "--as-of", day.isoformat(), "--source", "synthetic",
                  "--json", pm=trade_pm)
    assert cli.code == 0, cli
    payload = json.loads(cli.out)
    assert payload["as_of"] == day.isoformat() and payload["model"] == str(model)
    assert payload["data"]["fingerprint"] and payload["data"]["stale"] is False
    weights = [payload["weights"][t] for t in (*STAGE.tickers, "cash")]
    np.testing.assert_allclose(weights, weights_of(agent_days)[60], rtol=0, atol=1e-15)
    assert payload["orders"] is None

    # A real policy (an untrained PPO network) through its model file.
    from ploutos_core import TrainingSetup
    from ploutos_core.evaluation.evaluate import build_backtest_env
    from tests.conftest import make_tiny_stage

    tiny = make_tiny_stage()
    registry = ploutos.make_registry()
    panel = load_signal_panel(registry, tiny, DataOptions(source="synthetic"),
                              tiny.splits.validation.end)
    env = build_backtest_env(registry, tiny, panel, "validation")
    ppo = registry.algorithm("ppo").build(env, TrainingSetup(tiny.hyperparameters))
    ppo.save(tmp_path / "ppo.zip", {"stage": "tiny"})
    stage_pm = trading_pm(tiny)
    ppo_registry = Registry(stage_pm)
    ppo_days = backtest_days(tmp_path / "ppo.zip", ppo_registry, None)
    for index in (0, len(ppo_days) // 2, len(ppo_days) - 1):
        day = as_day(ppo_days.date.iloc[index])
        result = ploutos.signal(tmp_path / "ppo", as_of=day, source="synthetic",
                                registry=ppo_registry)
        assert np.array_equal(result.weights, weights_of(ppo_days, tiny.tickers)[index])


def test_orders_follow_the_turnover_rule_and_never_overspend(model: Path,
                                                             trade_registry: Registry) -> None:
    day = "2013-06-28"
    empty = ploutos.signal(model, as_of=day, source="synthetic", registry=trade_registry)
    prices = empty.closes
    # An account already at the model's weights is inside the band: no orders.
    value = 50_000.0
    at_target = Holdings(cash=value * empty.weights[-1], positions={
        t: value * w / prices[t] for t, w in zip(STAGE.tickers, empty.weights[:-1],
                                                 strict=True)})
    plan = plan_orders(at_target, STAGE.tickers, prices, empty.target, STAGE.env,
                       STAGE.transaction_cost, whole_shares=False)
    assert not plan.rebalance and plan.orders == ()
    # All cash: buys toward the smoothed target, whole shares, cash after costs >= 0.
    cash_only = plan_orders(Holdings(cash=value), STAGE.tickers, prices, empty.target,
                            STAGE.env, STAGE.transaction_cost)
    assert cash_only.rebalance and all(o.shares > 0 and o.shares.is_integer()
                                       for o in cash_only.orders)
    spent = sum(o.shares * o.reference_price for o in cash_only.orders)
    assert spent + cash_only.estimated_cost <= value
    np.testing.assert_allclose(cash_only.traded, empty.target)
    # Holding only BBB: sells come before buys, never more than held.
    held = plan_orders(Holdings(cash=0.0, positions={"BBB": 40.0}), STAGE.tickers, prices,
                       empty.target, STAGE.env, STAGE.transaction_cost)
    assert held.orders[0].side == "sell"
    assert all(-o.shares <= 40.0 for o in held.orders if o.side == "sell")
    # The band alone: a wide band keeps a slightly-off account as it is.
    banded = attrs_evolve_env(STAGE.env, no_trade_band=0.5)
    assert not plan_orders(Holdings(cash=value), STAGE.tickers, prices, empty.target, banded,
                           STAGE.transaction_cost).rebalance


def attrs_evolve_env(settings: EnvSettings, **changes: Any) -> EnvSettings:
    import attrs

    return attrs.evolve(settings, **changes)


def test_positions_files_in_json_and_csv(tmp_path: Path, model: Path, trade_pm: Any,
                                         run_cli: Any) -> None:
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"cash": 1000, "positions": {"AAA": 3, "BBB": 0.5}}))
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"AAA": 3, "BBB": 0.5, "cash": 1000}))
    table = tmp_path / "table.csv"
    table.write_text("Ticker,Shares\nAAA,3\nBBB,0.5\nCASH,1000\n")
    expected = Holdings(cash=1000.0, positions={"AAA": 3.0, "BBB": 0.5})
    for path in (nested, flat, table):
        assert read_positions(path, STAGE.tickers) == expected
    result = run_cli("signal", str(model), "--as-of", "2013-06-28", "--source", "synthetic",
                     "--positions", str(table), pm=trade_pm)
    assert result.code == 0, result
    assert "account worth" in result.out and ("buy" in result.out or "sell" in result.out)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("unknown.json", '{"cash": 10, "positions": {"ZZZ": 1}}', "unknown ticker(s) ZZZ"),
    ("negative.csv", "ticker,shares\nAAA,-3\n", "AAA = -3 is negative"),
    ("text.json", '{"AAA": "many"}', "AAA = 'many' is not a number"),
    ("empty.json", '{"cash": 0}', "holds no cash and no shares"),
    ("twice.csv", "ticker,shares\nAAA,1\nAAA,2\n", "AAA is listed twice"),
    ("header.csv", "symbol,qty\nAAA,1\n", "header must be 'ticker,shares'"),
    ("broken.json", "{", "not valid JSON"),
    ("positions.txt", "AAA 1", "use a .json or .csv file"),
])
def test_bad_positions_files_are_refused_in_one_line(tmp_path: Path, model: Path,
                                                     trade_pm: Any, run_cli: Any, name: str,
                                                     content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = run_cli("signal", str(model), "--as-of", "2013-06-28", "--source", "synthetic",
                     "--positions", str(path), pm=trade_pm)
    assert result.code == 1
    assert message in result.err and result.err.count("\n") == 1, result.err
    with pytest.raises(ConfigError):
        read_positions(path, STAGE.tickers)


def test_stale_data_exit_1_naming_the_last_date(tmp_path: Path, model: Path, trade_pm: Any,
                                                run_cli: Any,
                                                trade_registry: Registry) -> None:
    data = write_csv_prices(tmp_path / "prices", STAGE.tickers, "2013-06-28")
    args = ("signal", str(model), "--source", "csv", "--data-dir", str(data))
    # Friday's close on Monday is fresh enough (one business day, the default lag).
    assert run_cli(*args, "--as-of", "2013-07-01", pm=trade_pm).code == 0
    stale = run_cli(*args, "--as-of", "2013-07-03", pm=trade_pm)
    assert stale.code == 1
    assert "are from 2013-06-28, 3 business days before 2013-07-03" in stale.err
    assert "--allow-stale" in stale.err
    allowed = run_cli(*args, "--as-of", "2013-07-03", "--allow-stale", pm=trade_pm)
    assert allowed.code == 0 and "STALE" in allowed.out
    assert run_cli(*args, "--as-of", "2013-07-03", "--max-lag", "3", pm=trade_pm).code == 0
    with pytest.raises(StaleDataError, match="2013-06-28"):
        ploutos.signal(model, as_of="2013-07-10", source="csv", data_dir=data,
                       registry=trade_registry)


def test_models_that_do_not_fit_are_refused(tmp_path: Path, model: Path, trade_pm: Any,
                                            run_cli: Any) -> None:
    wide = run_cli("signal", str(model), "--stage", "wide", "--as-of", "2013-06-28",
                   "--source", "synthetic", pm=trade_pm)
    assert wide.code == 1
    assert "was trained on observations of shape (2, 42) (stage 'trader')" in wide.err
    assert "stage 'wide' gives (3, 42)" in wide.err
    missing = run_cli("signal", str(tmp_path / "nope"), "--stage", "trader", "--source",
                      "synthetic", pm=trade_pm)
    assert missing.code == 1 and "no model file" in missing.err
    with pytest.raises(ModelError):
        ploutos.signal(model, stage="wide", as_of="2013-06-28", source="synthetic",
                       registry=Registry(trade_pm))


def test_the_replay_start_defaults_to_the_split_of_the_as_of_day(
        model: Path, trade_registry: Registry) -> None:
    in_test = ploutos.signal(model, as_of="2014-03-03", source="synthetic",
                             registry=trade_registry)
    assert in_test.start.isoformat() == "2014-01-01"
    later = ploutos.signal(model, as_of="2014-03-03", start="2014-02-03", source="synthetic",
                           registry=trade_registry)
    assert later.start.isoformat() == "2014-02-03"
    assert later.next_session.isoformat() == "2014-03-04"
    with pytest.raises(ConfigError, match="after the as-of day"):
        ploutos.signal(model, as_of="2014-03-03", start="2014-03-10", source="synthetic",
                       registry=trade_registry)
