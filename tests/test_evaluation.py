"""Backtests, baselines, reports and ``ploutos evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ploutos_core.evaluation.backtest import baseline_backtests

CLOSE = np.array([[100.0, 100.0], [110.0, 100.0], [121.0, 50.0], [121.0, 50.0], [133.1, 50.0]])
DAYS = np.arange(4)


def by_name(cost: float = 0.0) -> dict:  # type: ignore[type-arg]
    return {b.name: b for b in baseline_backtests(CLOSE, ("A", "B"), DAYS, cost)}


def test_baselines_on_a_two_asset_toy_market() -> None:
    baselines = by_name()
    assert list(baselines) == ["buy_and_hold_A", "buy_and_hold_B", "equal_weight_buy_and_hold",
                               "equal_weight_rebalanced", "volatility_targeted_equal_weight",
                               "cash"]
    np.testing.assert_allclose(baselines["buy_and_hold_A"].returns, [0.1, 0.1, 0.0, 0.1])
    np.testing.assert_allclose(baselines["buy_and_hold_B"].returns, [0.0, -0.5, 0.0, 0.0])
    values = 0.5 * CLOSE[:, 0] / 100 + 0.5 * CLOSE[:, 1] / 100
    np.testing.assert_allclose(baselines["equal_weight_buy_and_hold"].returns,
                               values[1:] / values[:-1] - 1)
    np.testing.assert_allclose(baselines["equal_weight_rebalanced"].returns,
                               [0.05, -0.2, 0.0, 0.05])
    np.testing.assert_array_equal(baselines["cash"].returns, np.zeros(4))
    assert baselines["buy_and_hold_A"].summary.final_value == pytest.approx(1.331)


def test_baselines_pay_the_same_costs() -> None:
    costly = by_name(cost=0.001)
    hold = costly["buy_and_hold_A"]
    assert hold.turnover.tolist() == [1.0, 0.0, 0.0, 0.0]  # buys once, from cash
    assert hold.returns[0] == pytest.approx(0.999 * 1.1 - 1)
    rebalanced = costly["equal_weight_rebalanced"]
    assert rebalanced.turnover[1] > 0  # trades back to equal weights every day
    assert rebalanced.total_costs > costly["equal_weight_buy_and_hold"].total_costs
    assert costly["cash"].total_costs == 0.0


@pytest.fixture
def trained(run_cli, tiny_stage_file, tmp_path: Path):  # type: ignore[no-untyped-def]
    stage_file = tiny_stage_file()
    out = tmp_path / "run"
    result = run_cli("run", "stage", "tiny2", "--stage-file", str(stage_file), "--source",
                     "synthetic", "--out", str(out), "--no-progress")
    assert result.code == 0, result
    return stage_file, out


def test_validation_report_written_by_the_runner(trained) -> None:
    _, out = trained
    report = json.loads((out / "reports" / "tiny2" / "validation.json").read_text())
    assert report["split"] == "validation" and report["in_sample"] is False
    assert report["start"] >= "2013-01-01" and report["end"] <= "2013-12-31"
    names = [b["name"] for b in report["baselines"]]
    assert names == ["buy_and_hold_AAA", "buy_and_hold_BBB", "buy_and_hold_CCC",
                     "equal_weight_buy_and_hold", "equal_weight_rebalanced",
                     "volatility_targeted_equal_weight", "cash"]
    agent = report["agent"]
    for key in ("sharpe", "sharpe_ci_low", "sharpe_ci_high", "sortino", "max_drawdown", "calmar",
                "cagr", "volatility", "average_daily_turnover", "costs_paid", "final_value",
                "success_rate"):
        assert key in agent
    assert agent["n_days"] == report["baselines"][0]["n_days"]
    assert set(report["comparison"]) == {"best_baseline", "sharpe_minus_best_baseline",
                                         "probabilistic_sharpe_vs_best_baseline",
                                         "bootstrap_p_value", "benchmark",
                                         "sharpe_minus_benchmark", "trials",
                                         "deflated_sharpe_ratio"}
    assert report["comparison"]["benchmark"] == "equal_weight_rebalanced"
    assert report["comparison"]["trials"] == 1
    training = report["training"]
    assert training["algorithm"] == "ppo" and training["tuned"] is False
    assert training["hyperparameters"]["n_steps"] == 32 and training["num_timesteps"] == 256
    assert (out / "reports" / "tiny2" / "validation.png").stat().st_size > 10_000
    assert "| agent |" in (out / "reports" / "tiny2" / "validation.md").read_text()


def test_evaluate_command_with_cost_multipliers(run_cli, trained, tmp_path: Path) -> None:
    stage_file, out = trained
    result = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage", "tiny2",
                     "--stage-file", str(stage_file), "--split", "test", "--source", "synthetic",
                     "--cost-multiplier", "1,3", "--out", str(tmp_path / "eval"))
    assert result.code == 0, result
    assert "tiny2 on the test split 2014-" in result.out and "out-of-sample" in result.out
    assert "buy_and_hold_AAA" in result.out and "agent Sharpe − best baseline" in result.out
    reports = tmp_path / "eval" / "reports" / "tiny2"
    cheap = json.loads((reports / "test.json").read_text())
    dear = json.loads((reports / "test_cost3x.json").read_text())
    assert (cheap["transaction_cost_bps"], dear["transaction_cost_bps"]) == (10.0, 30.0)
    assert dear["agent"]["costs_paid"] > cheap["agent"]["costs_paid"]
    assert (reports / "test_cost3x.png").is_file()


def test_evaluate_is_deterministic(run_cli, trained, tmp_path: Path) -> None:
    stage_file, out = trained
    reports = []
    for name in ("a", "b"):
        assert run_cli("evaluate", str(out / "models" / "tiny2_final.zip"), "--stage", "tiny2",
                       "--stage-file", str(stage_file), "--source", "synthetic",
                       "--out", str(tmp_path / name)).code == 0
        reports.append(json.loads((tmp_path / name / "reports" / "tiny2" / "validation.json")
                                  .read_text())["agent"])
    assert reports[0] == reports[1]


def test_train_split_is_labelled_in_sample(run_cli, trained, tmp_path: Path) -> None:
    stage_file, out = trained
    result = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage", "tiny2",
                     "--stage-file", str(stage_file), "--split", "train", "--source",
                     "synthetic", "--out", str(tmp_path / "e"))
    assert result.code == 0
    assert "IN-SAMPLE (training data): not an out-of-sample result" in result.out


def test_a_policy_evaluates_on_another_asset_count(run_cli, trained, tmp_path: Path) -> None:
    stage_file, out = trained
    result = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage", "tiny1",
                     "--stage-file", str(stage_file), "--source", "synthetic",
                     "--out", str(tmp_path / "e"))
    assert result.code == 0, result
    assert "buy_and_hold_AAA" in result.out


def test_evaluate_bad_inputs_are_one_line(run_cli, trained, tmp_path: Path) -> None:
    stage_file, out = trained
    model = str(out / "models" / "tiny2_final")
    bad_multiplier = run_cli("evaluate", model, "--stage", "tiny2", "--stage-file",
                             str(stage_file), "--cost-multiplier", "1,x", "--source", "synthetic")
    assert bad_multiplier.code == 1 and "expected numbers like 1,2,3" in bad_multiplier.err
    missing = run_cli("evaluate", str(tmp_path / "nothing"), "--stage", "tiny2", "--stage-file",
                      str(stage_file), "--source", "synthetic")
    assert missing.code == 1 and "no model file at" in missing.err
    # Without --stage, the stage the model file records (issue 14).
    recorded = run_cli("evaluate", model, "--stage-file", str(stage_file), "--source",
                       "synthetic", "--out", str(tmp_path / "eval"))
    assert recorded.code == 0, recorded
    assert (tmp_path / "eval" / "reports" / "tiny2" / "validation.json").exists()


def test_daily_csv_recomputes_sharpe_and_drawdown_with_pandas(trained) -> None:
    """Issue 11: every figure of a report can be recomputed from the daily series."""
    import pandas as pd

    _, out = trained
    report = json.loads((out / "reports" / "tiny2" / "validation.json").read_text())
    daily = pd.read_csv(out / "reports" / "tiny2" / "validation_daily.csv",
                        parse_dates=["date", "next_date"])
    strategies = [report["agent"], *report["baselines"]]
    assert list(daily["strategy"].unique()) == [s["name"] for s in strategies]
    weights = [c for c in daily.columns if c.startswith("weight_")]
    assert weights == ["weight_AAA", "weight_BBB", "weight_CCC", "weight_cash"]
    for expected in strategies:
        rows = daily[daily["strategy"] == expected["name"]]
        assert len(rows) == expected["n_days"]
        np.testing.assert_allclose(rows[weights].sum(axis=1), 1.0, atol=1e-9)
        returns = rows["net_return"]
        sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(252) if returns.std() else 0.0
        equity = pd.concat([pd.Series([1.0]), (1 + returns).cumprod()])
        drawdown = (1 - equity / equity.cummax()).max()
        assert sharpe == pytest.approx(expected["sharpe"], rel=1e-6, abs=1e-9)
        assert drawdown == pytest.approx(expected["max_drawdown"], rel=1e-6, abs=1e-9)
        assert rows["equity"].iloc[-1] == pytest.approx(expected["final_value"], rel=1e-9)
        assert rows["turnover"].mean() == pytest.approx(expected["average_daily_turnover"])
    assert (daily["next_date"] > daily["date"]).all()


def test_sub_universe_verdict_compares_with_1_over_n_on_every_set(run_cli, trained,
                                                                 tmp_path: Path) -> None:
    """Issue 11: one model, K sets of tickers drawn from a pool, each beside 1/N."""
    stage_file, out = trained
    pool = tmp_path / "pool.txt"
    pool.write_text("# tickers\nAAA\nBBB\nCCC\nDDD\nEEE  # a comment\n")
    result = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage-file",
                     str(stage_file), "--source", "synthetic", "--out", str(out), "--sets", "4",
                     "--pool", f"@{pool}", "--sets-seed", "3")
    assert result.code == 0, result
    assert "4 sets of 3 from a pool of 5: agent Sharpe − 1/N rebalanced median" in result.out
    verdict = json.loads((out / "reports" / "tiny2" / "validation_universes.json").read_text())
    assert verdict["pool"] == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    sets = [tuple(s["tickers"]) for s in verdict["sets"]]
    assert len(set(sets)) == 4 and all(len(s) == 3 for s in sets)
    for entry in verdict["sets"]:
        assert entry["difference"] == pytest.approx(entry["sharpe"] - entry["benchmark_sharpe"])
    won = sum(entry["difference"] > 0 for entry in verdict["sets"]) / 4
    assert verdict["summary"]["share_won"] == won
    # Beside the timing rule too: the volatility-targeted 1/N of each set.
    assert "against the volatility-targeted 1/N median" in result.out
    for entry in verdict["sets"]:
        assert np.isfinite(entry["vol_target_sharpe"])
        assert entry["vol_target_sharpe"] != entry["benchmark_sharpe"]
        assert entry["difference_vs_vol_target"] == pytest.approx(
            entry["sharpe"] - entry["vol_target_sharpe"])
    won_rule = sum(entry["difference_vs_vol_target"] > 0 for entry in verdict["sets"]) / 4
    assert verdict["summary"]["share_won_vs_vol_target"] == won_rule
    again = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage-file",
                    str(stage_file), "--source", "synthetic", "--out", str(tmp_path / "again"),
                    "--sets", "4", "--pool", "AAA,BBB,CCC,DDD,EEE", "--sets-seed", "3")
    assert again.code == 0, again
    repeat = json.loads((tmp_path / "again" / "reports" / "tiny2" /
                         "validation_universes.json").read_text())
    assert repeat["sets"] == verdict["sets"]  # seeded: the same sets, the same numbers
    too_many = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage-file",
                       str(stage_file), "--source", "synthetic", "--out", str(out), "--sets",
                       "11", "--pool", "AAA,BBB,CCC,DDD,EEE")
    assert too_many.code == 1 and "11 distinct sets of 3 need more" in too_many.err
