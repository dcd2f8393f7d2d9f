"""Issue 11: the neutral action holds the benchmark, the turnover rule, the relative reward,
relative gates and the volatility-targeted baseline."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from ploutos_core import Registry
from ploutos_core.config.stage import EnvSettings, Gate, StageSpec, stage_to_dict
from ploutos_core.env.actions import (
    ActionMap,
    apply_turnover_rule,
    benchmark_weights,
    smooth_target,
)
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.evaluation.backtest import (
    Backtest,
    EvaluationResult,
    baseline_backtests,
    volatility_target_exposure,
)
from ploutos_core.evaluation.gate import judge_gate

TILT = EnvSettings(action="tilt")


def test_neutral_tilt_action_gives_exactly_the_benchmark_weights() -> None:
    for n_assets in (1, 3, 5):
        action_map = ActionMap.for_stage(TILT, "equal_weight", n_assets)
        weights = action_map.target_weights(action_map.neutral_action()[None, :])
        np.testing.assert_array_equal(weights[0], benchmark_weights("equal_weight", n_assets))
        assert weights[0, -1] == 0.0  # fully invested


def test_softmax_neutral_action_is_equal_weights_including_cash() -> None:
    action_map = ActionMap.for_stage(EnvSettings(), "equal_weight", 1)
    np.testing.assert_allclose(action_map.target_weights(np.zeros((1, 2)))[0], [0.5, 0.5])


def test_tilt_actions_move_weight_between_assets_and_to_cash() -> None:
    action_map = ActionMap.for_stage(attrs.evolve(TILT, tilt_scale=1.0, max_cash=0.5),
                                     "equal_weight", 2)
    weights = action_map.target_weights(np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0],
                                                  [0.0, 0.0, -1.0], [3.0, 0.0, 2.0]]))
    assert weights[0, 0] / weights[0, 1] == pytest.approx(np.exp(2.0))
    np.testing.assert_allclose(weights[1], [0.25, 0.25, 0.5])  # a full cash action: max_cash
    np.testing.assert_allclose(weights[2], [0.5, 0.5, 0.0])  # negative cash action: invested
    e = np.exp(1.0)
    np.testing.assert_allclose(weights[3], [0.5 * e / (e + 1), 0.5 / (e + 1), 0.5])  # clipped
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


def test_inside_the_no_trade_band_nothing_trades() -> None:
    settings = EnvSettings(no_trade_band=0.05)
    drifted = np.array([[0.49, 0.51, 0.0], [0.40, 0.60, 0.0]])
    target = np.array([[0.50, 0.50, 0.0], [0.50, 0.50, 0.0]])
    traded = apply_turnover_rule(drifted, target, settings)
    np.testing.assert_array_equal(traded[0], drifted[0])  # turnover 0.02 ≤ 0.05: hold
    np.testing.assert_array_equal(traded[1], target[1])  # turnover 0.2 > 0.05: trade


def test_target_smoothing_is_an_exponential_moving_average() -> None:
    settings = EnvSettings(target_smoothing=0.75)
    smoothed = smooth_target(np.array([[0.5, 0.5, 0.0]]), np.array([[1.0, 0.0, 0.0]]), settings)
    np.testing.assert_allclose(smoothed, [[0.625, 0.375, 0.0]])
    assert smooth_target(smoothed, np.array([[1.0, 0.0, 0.0]]), EnvSettings()).tolist() == \
        [[1.0, 0.0, 0.0]]  # no smoothing: the target itself


def test_smoothing_starts_at_the_benchmark_so_day_one_buys_it() -> None:
    settings = EnvSettings(action="tilt", target_smoothing=0.9, episode_length=20)
    env = PortfolioVecEnv(_market(), 1, settings, cost_rate=0.001, mode="backtest")
    env.reset()
    _, _, _, infos = env.step(np.array([[1.0, -1.0, 0.0, 0.0]], dtype=np.float32))
    # One day of a strong tilt moves the benchmark a tenth of the way toward it.
    expected = 0.9 * np.array([1 / 3, 1 / 3, 1 / 3, 0.0]) + 0.1 * \
        ActionMap.for_stage(settings, "equal_weight", 3).target_weights(
            np.array([[1.0, -1.0, 0.0, 0.0]]))[0]
    np.testing.assert_allclose(infos[0]["weights"], expected)
    assert infos[0]["turnover"] == pytest.approx(1.0)  # fully invested from cash on day one


def _market(n_days: int = 300, n_assets: int = 3, seed: int = 0) -> MarketArrays:
    rng = np.random.default_rng(seed)
    growth = np.exp(0.0003 + 0.02 * rng.standard_normal((n_days, n_assets)))
    observations = rng.standard_normal((n_days, n_assets, 4)).astype(np.float32)
    return MarketArrays(observations=observations, growth=growth, first=0, last=n_days - 1,
                        dates=np.arange(n_days).astype("datetime64[D]"))


def _one_day_with_and_without(settings: EnvSettings, action: np.ndarray, seed: int,
                              **changes: float) -> tuple[np.ndarray, np.ndarray,
                                                         list[dict[str, Any]]]:
    """One backtest day of ``action`` under ``settings`` and under ``settings`` with
    ``changes``: the plain rewards, the changed rewards and the plain infos."""
    plain = PortfolioVecEnv(_market(), len(action), settings, cost_rate=0.001, seed=seed,
                            mode="backtest")
    changed = PortfolioVecEnv(_market(), len(action), attrs.evolve(settings, **changes),
                              cost_rate=0.001, seed=seed, mode="backtest")
    plain.reset()
    changed.reset()
    _, r_plain, _, infos = plain.step(action)
    _, r_changed, _, _ = changed.step(action)
    return r_plain, r_changed, infos


@pytest.mark.parametrize("rule", [{}, {"no_trade_band": 0.03}, {"target_smoothing": 0.8},
                                  {"no_trade_band": 0.02, "target_smoothing": 0.9},
                                  {"no_trade_band": 0.02, "target_smoothing": 0.9,
                                   "exposure": "volatility_target"}])
def test_relative_reward_of_the_benchmark_policy_is_zero_every_day(rule: dict) -> None:  # type: ignore[type-arg]
    settings = EnvSettings(action="tilt", reward="relative_log_return", episode_length=50,
                           **rule)
    env = PortfolioVecEnv(_market(), 8, settings, cost_rate=0.001, seed=3)
    env.reset()
    neutral = np.zeros((8, 4), dtype=np.float32)
    for _ in range(200):  # several episodes, resets included
        _, rewards, _, _ = env.step(neutral)
        np.testing.assert_array_equal(rewards, 0.0)



def test_relative_reward_is_the_log_growth_over_the_benchmark() -> None:
    settings = EnvSettings(action="tilt", episode_length=50)
    absolute = PortfolioVecEnv(_market(), 4, settings, cost_rate=0.001, seed=1)
    relative = PortfolioVecEnv(_market(), 4, attrs.evolve(settings, reward="relative_log_return"),
                               cost_rate=0.001, seed=1)
    benchmark = PortfolioVecEnv(_market(), 4, settings, cost_rate=0.001, seed=1)
    for env in (absolute, relative, benchmark):
        env.reset()
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
        _, r_abs, _, _ = absolute.step(action)
        _, r_rel, _, _ = relative.step(action)
        _, r_bench, _, _ = benchmark.step(np.zeros_like(action))
        np.testing.assert_allclose(r_rel, r_abs - r_bench, atol=1e-6)


def test_turnover_penalty_lowers_the_reward_by_penalty_times_turnover() -> None:
    action = np.array([[1.0, -1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    r_plain, r_penalised, infos = _one_day_with_and_without(
        EnvSettings(action="tilt", episode_length=50), action, 1, turnover_penalty=0.01)
    turnover = np.array([info["turnover"] for info in infos])
    np.testing.assert_allclose(r_penalised, r_plain - 0.01 * turnover, atol=1e-7)


def test_volatility_targeted_baseline_invests_less_when_recent_volatility_is_high() -> None:
    rng = np.random.default_rng(0)
    calm = 0.005 * rng.standard_normal((300, 2))
    stormy = 0.04 * rng.standard_normal((30, 2))
    close = 100 * np.exp(np.cumsum(np.vstack([calm, stormy]), axis=0))
    days = np.arange(260, 328)
    exposure = volatility_target_exposure(close, days)
    assert exposure.max() <= 1.0
    assert exposure[:35].min() > 0.7  # calm: (nearly) fully invested
    assert exposure[-5:].max() < 0.4  # three weeks into the storm: mostly cash
    daily = (close[1:] / close[:-1]).mean(axis=1) - 1.0  # daily[i]: return into day i + 1
    day = days[-1]
    expected = np.std(daily[day - 252:day], ddof=1) / np.std(daily[day - 21:day], ddof=1)
    assert exposure[-1] == pytest.approx(min(1.0, expected))
    names = [b.name for b in baseline_backtests(close, ("A", "B"), days, 0.001)]
    assert "volatility_targeted_equal_weight" in names


def test_volatility_targeted_baseline_uses_no_future_prices() -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((400, 3)), axis=0))
    days = np.arange(300, 398)
    before = volatility_target_exposure(close, days)
    changed = close.copy()
    changed[350:] *= np.exp(np.cumsum(0.05 * rng.standard_normal((50, 3)), axis=0))
    after = volatility_target_exposure(changed, days)
    np.testing.assert_array_equal(before[:days.searchsorted(350)],
                                  after[:days.searchsorted(350)])


def _evaluation(agent_returns: list[float], bench_returns: list[float]) -> EvaluationResult:
    def backtest(name: str, returns: list[float]) -> Backtest:
        zeros = np.zeros(len(returns))
        return Backtest.from_arrays(name, np.arange(len(returns)), np.array(returns), zeros,
                                    zeros)

    import datetime as dt

    return EvaluationResult(
        stage="s", split="validation", model="m", start=dt.date(2020, 1, 1),
        end=dt.date(2020, 1, 9), cost_bps=10.0, agent=backtest("agent", agent_returns),
        baselines=(backtest("equal_weight_rebalanced", bench_returns),
                   backtest("cash", [0.0] * len(bench_returns))),
        dates=np.arange(len(agent_returns) + 1).astype("datetime64[D]"), tickers=("A", "B"))


def test_relative_gate_compares_with_the_benchmark_and_target_only_reports() -> None:
    better = _evaluation([0.01, 0.02, -0.005, 0.01], [0.01, 0.01, -0.01, 0.005])
    worse = _evaluation([0.01, 0.01, -0.01, 0.005], [0.01, 0.02, -0.005, 0.01])
    gate = Gate(min_sharpe_vs_benchmark=0.0, target_sharpe=1e6)
    verdict = judge_gate(gate, better)
    assert verdict.passed and verdict.benchmark == "equal_weight_rebalanced"
    assert verdict.target_met is False  # a missed target never fails the gate
    assert "target 1000000.00: missed" in verdict.describe()
    assert not judge_gate(gate, worse).passed
    assert judge_gate(Gate(), worse).passed  # no gate set: always passes
    assert not judge_gate(Gate(min_validation_sharpe=1e6), better).passed


def test_risk_aversion_subtracts_a_quadratic_penalty_from_log_growth() -> None:
    action = np.array([[0.3, -0.2, 0.1, 0.0], [0, 0, 0, 1.0], [1, 1, -1, 0.2]], dtype=np.float32)
    r_plain, r_averse, infos = _one_day_with_and_without(
        EnvSettings(action="tilt", episode_length=50), action, 2, risk_aversion=4.0)
    net = np.array([info["net_return"] for info in infos])
    np.testing.assert_allclose(r_plain, np.log1p(net), atol=1e-6)
    np.testing.assert_allclose(r_averse, np.log1p(net) - 1.5 * net**2, atol=1e-6)


def test_deviation_penalty_charges_the_active_weight_and_spares_the_benchmark() -> None:
    action = np.array([[1.0, -1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    r_plain, r_taxed, infos = _one_day_with_and_without(
        EnvSettings(action="tilt", reward="relative_log_return", episode_length=50), action, 2,
        deviation_penalty=0.01)
    active = np.abs(infos[0]["weights"] - np.array([1 / 3, 1 / 3, 1 / 3, 0.0])).sum()
    assert r_taxed[0] == pytest.approx(r_plain[0] - 0.01 * active, abs=1e-7)
    assert r_taxed[1] == r_plain[1] == 0.0  # the neutral action: no deviation, no penalty


def test_builtin_stages_hold_their_benchmark_until_the_data_pay_for_a_tilt(
        registry: Registry) -> None:
    """The shipped curriculum (issue 11): a neutral policy holds 1/N fully invested, its
    relative reward is zero every day, and turnover is controlled in the environment. The
    deviation penalty (round 9) charges only the drift the no-trade band lets the holdings
    keep from the benchmark: at most ``penalty × 2 × band`` a day."""
    for stage in registry.curriculum("default"):
        settings = stage.env
        assert settings.action == "tilt", stage.name
        assert settings.reward == "relative_log_return", stage.name
        assert settings.no_trade_band > 0 or settings.target_smoothing > 0, stage.name
        n_assets = len(stage.tickers)
        penalty = settings.deviation_penalty
        for charged in (0.0, penalty):
            env = PortfolioVecEnv(_market(n_assets=n_assets), 4,
                                  attrs.evolve(settings, episode_length=50, window=1,
                                               deviation_penalty=charged),
                                  cost_rate=stage.transaction_cost_bps / 1e4, seed=0,
                                  mode="backtest")
            env.reset()
            for _ in range(60):
                _, rewards, _, infos = env.step(np.zeros((4, n_assets + 1), dtype=np.float32))
                if charged == 0.0:
                    np.testing.assert_array_equal(rewards, 0.0)
                else:
                    assert np.all(rewards <= 0.0), stage.name
                    assert np.all(rewards >= -charged * 2 * settings.no_trade_band), stage.name
            np.testing.assert_allclose(infos[0]["weights"][:-1], 1 / n_assets, rtol=0.05)


def _agent_quality_bench() -> Any:
    """bench/agent_quality.py, imported from its file (bench/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "agent_quality.py"
    spec = importlib.util.spec_from_file_location("agent_quality", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_builtin_stages_are_the_configuration_chosen_in_docs_agent_quality() -> None:
    """The built-in curriculum is bench/agent_quality.toml's measured configuration
    ``tilt_rel_smooth_encoder_universe_vt_1m1m16m_dev_slow_etfs`` field for field
    (docs/agent-quality.md, rounds 3, 6 and 8-11): stage 3's universe is the stock pool of
    the sub-universe verdict, stages 1 and 2 train first on the 12 US equity ETFs."""
    root = Path(__file__).resolve().parents[1]
    bench = _agent_quality_bench()
    chosen = bench.stage_tables("tilt_rel_smooth_encoder_universe_vt_1m1m16m_dev_slow_etfs")
    shipped = bench.stage_tables("shipped")
    for measured, builtin in zip(chosen, shipped, strict=True):
        measured.update(name=builtin["name"], curriculum=builtin["curriculum"])
        assert measured == builtin
    pool = [line.strip() for line in (root / "bench" / "stock_pool.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert shipped[-1]["universe"]["tickers"] == pool
    assert shipped[-1]["transfer"]["parameters"] == ["encoder", "context"]
    assert all(stage["env"]["exposure"] == "volatility_target" for stage in shipped)
    assert [stage["timesteps"] for stage in shipped] == [1_000_000, 1_000_000, 16_000_000]
    assert [stage["env"]["target_smoothing"] for stage in shipped] == [0.9, 0.9, 0.95]
    assert all(stage["env"]["deviation_penalty"] == 0.0001 for stage in shipped)
    etfs = ["SPY", "QQQ", "IWM", "DIA", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY"]
    assert [stage["universe"]["tickers"] for stage in shipped[:2]] == [etfs, etfs]
    # Every other configuration means what it meant when it ran, whatever the stages ship
    # today: issue 11's settings start from the schema's defaults.
    pen = bench.stage_tables("tilt_rel_pen")[-1]
    assert pen["env"]["target_smoothing"] == 0.0 and pen["env"]["turnover_penalty"] == 0.002
    assert pen["transfer"]["parameters"] == [] and pen["universe"]["tickers"] == []
    assert bench.stage_tables("first_build")[0]["env"]["action"] == "softmax"


def test_every_measured_configuration_means_what_it_meant_when_it_ran() -> None:
    """A configuration of bench/agent_quality.toml is the schema's environment, the seed's
    step budgets, no transfer and no universe, plus exactly the changes it names: what the
    built-in stages ship later (round 6's ``exposure``) must not leak into the
    configurations measured before it, or re-running one would quietly measure another."""
    bench = _agent_quality_bench()
    configs = tomllib.loads(bench.CONFIGS.read_text())["config"]
    schema_env = stage_to_dict(StageSpec(name="x", tickers=("X",), timesteps=1))["env"]
    for name, config in configs.items():
        if name == bench.SHIPPED:
            continue
        for table in bench.stage_tables(name):
            stage = table["name"].split("-")[0]
            named = {**config.get("all", {}), **config.get(stage, {})}
            named_env = {**config.get("all", {}).get("env", {}),
                         **config.get(stage, {}).get("env", {})}
            for field, default in schema_env.items():
                expected = named_env.get(field, default)
                assert table["env"][field] == expected, (name, stage, field)
            budget = bench.FIRST_BUILD_TIMESTEPS[stage]
            assert table["timesteps"] == named.get("timesteps", budget), (name, stage)
            if "transfer" not in named:
                assert table["transfer"]["parameters"] == [], (name, stage)
            if "universe" not in named:
                assert table["universe"]["tickers"] == [], (name, stage)
    assert bench.stage_tables("tilt_rel_smooth")[0]["env"]["exposure"] == "full"


def test_a_borrowed_scratch_arm_is_the_same_training() -> None:
    """A configuration with ``scratch_from`` trains exactly its source's last stage (what it
    takes from a previous stage aside: the scratch arm starts fresh) and
    total steps, so the source's scratch arm is its own (round 11 takes round 10's)."""
    bench = _agent_quality_bench()
    configs = tomllib.loads(bench.CONFIGS.read_text())["config"]
    borrowing = [name for name, config in configs.items() if "scratch_from" in config]
    assert "tilt_rel_smooth_encoder_universe_vt_1m1m16m_dev_slow_etfs" in borrowing
    for name in borrowing:
        assert bench.check_scratch_source(name) == configs[name]["scratch_from"]


def _bench_with_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Any:
    bench = _agent_quality_bench()
    configs = tmp_path / "agent_quality.toml"
    configs.write_text(text)
    monkeypatch.setattr(bench, "CONFIGS", configs)
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    return bench


def test_a_scratch_arm_is_not_borrowed_from_a_different_last_stage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench_with_configs(tmp_path, monkeypatch, """
[config.source]
all = { env = { action = "tilt" } }
[config.same_stage3]
scratch_from = "source"
all = { env = { action = "tilt" } }
stage1 = { timesteps = 2_000_000 }
stage2 = { timesteps = 6_000_000 }
stage3 = { transfer = { parameters = ["encoder"], freeze_fraction = 0.5 } }
[config.other_stage3]
scratch_from = "source"
all = { env = { action = "tilt" } }
stage3 = { env = { no_trade_band = 0.05 } }
[config.other_total]
scratch_from = "source"
all = { env = { action = "tilt" } }
stage1 = { timesteps = 1_000_000 }
""")
    assert bench.check_scratch_source("same_stage3") == "source"
    assert bench.check_scratch_source("source") is None
    with pytest.raises(ValueError, match="last stages differ"):
        bench.check_scratch_source("other_stage3")
    with pytest.raises(ValueError, match="different total steps"):
        bench.check_scratch_source("other_total")


def test_a_borrowed_scratch_arm_is_read_from_the_source_results_and_marked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    bench = _bench_with_configs(tmp_path, monkeypatch, "[config.source]\n")
    args = bench.parse_args(["--config", "source", "--seeds", "3,4,5"])
    with pytest.raises(RuntimeError, match="--config source --scratch first"):
        bench.borrowed_scratch("source", 4, args)
    scratch = {"sharpe": 1.05, "verdict": {"share_won": 0.9}}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "source-seeds3,4,5-x1.json").write_text(json.dumps(
        {"runs": [{"seed": 3, "stages": {}}, {"seed": 4, "stages": {}, "scratch": scratch}]}))
    assert bench.borrowed_scratch("source", 4, args) == {**scratch, "from": "source"}
    with pytest.raises(RuntimeError, match="no scratch arm for seed 3"):
        bench.borrowed_scratch("source", 3, args)
