"""Tests of ``ploutos compare``: the curriculum against a from-scratch agent over seeds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ploutos_core.agents.model_files import read_metadata
from ploutos_core.comparison.report import format_comparison, markdown_report, step_note
from ploutos_core.comparison.runner import (
    METRICS,
    ArmRun,
    CompareOptions,
    Comparison,
    Spread,
    scratch_stage,
    sign_test_p_value,
    total_timesteps,
)
from ploutos_core.config.stage import StageSpec
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import Backtest, EvaluationResult

Cli = Callable[..., Any]  # the run_cli fixture of conftest.py
FINAL_VALUE = next(m for m in METRICS if m.key == "final_value")
MAX_DRAWDOWN = next(m for m in METRICS if m.key == "max_drawdown")


# --- aggregation on hand-made numbers ---------------------------------------------------


def test_spread_of_odd_count() -> None:
    spread = Spread.of([3.0, 1.0, 2.0])
    assert (spread.median, spread.minimum, spread.maximum) == (2.0, 1.0, 3.0)
    assert (spread.q1, spread.q3, spread.n) == (1.5, 2.5, 3)


def test_spread_of_even_count_matches_numpy_percentiles() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    spread = Spread.of(values)
    assert spread.median == 2.5  # mean of the two middle values
    assert spread.q1 == pytest.approx(1.75)
    assert spread.q3 == pytest.approx(3.25)
    assert [spread.q1, spread.median, spread.q3] == pytest.approx(
        np.percentile(values, [25, 50, 75]).tolist())


def test_spread_leaves_out_nan_and_handles_empty_and_infinite() -> None:
    spread = Spread.of([float("nan"), 5.0, 1.0])
    assert (spread.median, spread.n) == (3.0, 2)
    empty = Spread.of([float("nan")])
    assert empty.n == 0 and np.isnan(empty.median)
    assert empty.to_dict()["median"] is None
    assert Spread.of([1.0, float("inf"), float("inf")]).median == float("inf")


def test_sign_test_p_value() -> None:
    assert sign_test_p_value(3, 0) == 0.125  # the best three seeds can show
    assert sign_test_p_value(2, 1) == 0.5  # (C(3,2) + C(3,3)) / 8
    assert sign_test_p_value(0, 2) == 1.0
    assert np.isnan(sign_test_p_value(0, 0))


def _backtest(name: str, final_value: float, drawdown_day: float = 0.0) -> Backtest:
    # Two days: a drop of ``drawdown_day`` then the rest of the way to ``final_value``.
    first = -drawdown_day
    returns = np.array([first, final_value / (1 + first) - 1.0])
    zeros = np.zeros(2)
    return Backtest.from_arrays(name, np.array([0, 1]), returns, zeros, zeros)


def _run(seed: int, arm: str, final_value: float, drawdown: float = 0.0,
         steps: int = 512) -> ArmRun:
    evaluation = EvaluationResult(
        stage="tiny2", split="validation", model=f"seed{seed}/{arm}.zip",
        start=dt.date(2013, 1, 2), end=dt.date(2013, 1, 4), cost_bps=10.0,
        agent=_backtest("agent", final_value, drawdown),
        baselines=(_backtest("buy_and_hold_AAA", 1.02), _backtest("cash", 1.0)),
        dates=np.array(["2013-01-02", "2013-01-03", "2013-01-04"], dtype="datetime64[D]"))
    return ArmRun(seed=seed, arm=arm, run_dir=Path(f"seed{seed}/{arm}"),  # type: ignore[arg-type]
                  model=Path(f"m{seed}.zip"), target_timesteps=512, num_timesteps=steps,
                  evaluation=evaluation)


@pytest.fixture
def hand_made() -> Comparison:
    """Seeds 0, 4, 7: curriculum final values 1.10, 1.00, 1.20; scratch 1.05 each."""
    curriculum = {0: (1.10, 0.10), 4: (1.00, 0.30), 7: (1.20, 0.05)}
    runs = []
    for seed, (final, drawdown) in curriculum.items():
        runs += [_run(seed, "curriculum", final, drawdown), _run(seed, "scratch", 1.05, 0.20)]
    return Comparison(curriculum="tiny", stages=("tiny1", "tiny2"),
                      scratch_stage="tiny2_scratch", scale=1.0, runs=tuple(runs))


def test_comparison_medians_and_per_seed_differences(hand_made: Comparison) -> None:
    assert hand_made.seeds == [0, 4, 7]
    assert hand_made.values("curriculum", FINAL_VALUE) == pytest.approx([1.10, 1.00, 1.20])
    assert hand_made.spread("curriculum", FINAL_VALUE).median == pytest.approx(1.10)
    assert hand_made.spread("scratch", FINAL_VALUE).median == pytest.approx(1.05)
    assert hand_made.differences(FINAL_VALUE) == pytest.approx([0.05, -0.05, 0.15])
    assert hand_made.wins(FINAL_VALUE) == (2, 1)
    # lower is better for the drawdown: 0.10 and 0.05 beat 0.20, 0.30 does not
    assert hand_made.wins(MAX_DRAWDOWN) == (2, 1)

    report = hand_made.to_dict()
    final = report["difference_curriculum_minus_scratch"]["final_value"]
    assert final["per_seed"] == pytest.approx({"0": 0.05, "4": -0.05, "7": 0.15})
    assert final["median"] == pytest.approx(0.05)
    assert final["sign_test_p_value"] == 0.5
    summary = report["summary"]["curriculum"]["final_value"]
    assert (summary["min"], summary["max"]) == pytest.approx((1.00, 1.20))
    assert report["best_baseline"] == "buy_and_hold_AAA"
    assert [b["name"] for b in report["baselines"]] == ["buy_and_hold_AAA", "cash"]


def test_reports_print_baselines_once(hand_made: Comparison) -> None:
    text = format_comparison(hand_made)
    assert text.count("buy_and_hold_AAA") == 2  # the baseline table and the verdict
    assert "1.100" in text and "+0.050" in text  # curriculum median, median difference
    markdown = markdown_report(hand_made, "compare.png")
    assert markdown.count("| buy_and_hold_AAA |") == 1
    assert "![per-seed Sharpe and equity curves](compare.png)" in markdown
    assert step_note(hand_made) is None and "note:" not in text


def test_unequal_trained_steps_are_flagged() -> None:
    # the default curriculum at --scale 0.001: 18,000 steps targeted for both arms,
    # 28,672 trained by the three stages (whole rollouts each) and 24,576 from scratch
    runs = (_run(0, "curriculum", 1.1, steps=28_672), _run(0, "scratch", 1.0, steps=24_576))
    comparison = Comparison(curriculum="default", stages=("stage1", "stage2", "stage3"),
                            scratch_stage="stage3_scratch", scale=0.001, runs=runs)
    note = step_note(comparison)
    assert note is not None and "17%" in note
    assert note in format_comparison(comparison)
    assert note in markdown_report(comparison, "compare.png")


# --- the scratch arm and options --------------------------------------------------------


def test_scratch_stage_gets_the_whole_curriculums_scaled_steps() -> None:
    first = StageSpec(name="a1", tickers=("AAA",), timesteps=300, order=1)
    last = StageSpec(name="a2", tickers=("AAA", "BBB"), timesteps=500, order=2,
                     transaction_cost_bps=5.0)
    assert total_timesteps([first, last], 0.5) == 400
    scratch = scratch_stage([first, last], 0.5)
    assert scratch.name == "a2_scratch"
    assert scratch.timesteps == 400
    assert scratch.tickers == last.tickers and scratch.splits == last.splits
    assert scratch.transaction_cost_bps == last.transaction_cost_bps
    assert CompareOptions(scale=0.5).run_options(0, "scratch").scale == 1.0
    assert CompareOptions(scale=0.5).run_options(3, "curriculum").ignore_gates


@pytest.mark.parametrize(("args", "message"), [
    (("--seeds", "0"), "--seeds must be >= 1"),
    (("--seeds", "2", "--seed-list", "0,1"), "not both"),
    (("--seed-list", "0,x"), "expected integers"),
    (("--seed-list", "1,1"), "must not repeat"),
    (("--scale", "0"), "--scale must be a finite number > 0"),
])
def test_bad_options_are_refused_before_training(run_cli: Cli, tiny_stage_file: Callable[..., Path],
                                                 tmp_path: Path, args: tuple[str, ...],
                                                 message: str) -> None:
    result = run_cli("compare", "--curriculum", "tiny", "--stage-file", str(tiny_stage_file()),
                     "--source", "synthetic", "--out", str(tmp_path / "c"), *args)
    assert result.code == 1, result
    assert message in result.err
    assert not (tmp_path / "c").exists()


def test_compare_options_reject_no_seeds() -> None:
    with pytest.raises(ConfigError, match="at least one seed"):
        CompareOptions(seeds=())


# --- the command at a tiny scale --------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_compare_command_trains_both_arms_with_equal_steps_and_resumes(
        run_cli: Cli, tiny_stage_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "compare"
    args = ("compare", "--curriculum", "tiny", "--stage-file", str(tiny_stage_file()),
            "--source", "synthetic", "--seeds", "2", "--out", str(out), "--no-progress")
    result = run_cli(*args)
    assert result.code == 0, result

    # every seed/arm in its own run directory; both arms trained the same total steps
    for seed in (0, 1):
        curriculum = [read_metadata(out / f"seed{seed}/curriculum/models/{stage}_final.zip")
                      for stage in ("tiny1", "tiny2")]
        scratch = read_metadata(out / f"seed{seed}/scratch/models/tiny2_scratch_final.zip")
        assert [m["seed"] for m in (*curriculum, scratch)] == [seed] * 3
        assert [m["target_timesteps"] for m in curriculum] == [256, 256]
        assert scratch["target_timesteps"] == sum(m["target_timesteps"] for m in curriculum)
        assert scratch["tickers"] == curriculum[-1]["tickers"] == ["AAA", "BBB", "CCC"]
        assert all(m["num_timesteps"] >= m["target_timesteps"] for m in (*curriculum, scratch))
        assert curriculum[-1]["start_from"].endswith("tiny1_final.zip")
        assert scratch["start_from"] is None

    reports = out / "reports"
    report = json.loads((reports / "compare.json").read_text())
    assert (reports / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "# Curriculum vs scratch — tiny" in (reports / "compare.md").read_text()
    assert report["seeds"] == [0, 1]
    assert (report["evaluated_stage"], report["scratch_stage"]) == ("tiny2", "tiny2_scratch")
    runs = {(r["seed"], r["arm"]): r for r in report["runs"]}
    assert set(runs) == {(s, a) for s in (0, 1) for a in ("curriculum", "scratch")}
    assert {r["target_timesteps"] for r in runs.values()} == {512}

    # medians and differences agree with the per-seed numbers
    for arm in ("curriculum", "scratch"):
        sharpes = [runs[(s, arm)]["agent"]["sharpe"] for s in (0, 1)]
        assert report["summary"][arm]["sharpe"]["median"] == pytest.approx(np.median(sharpes))
    diffs = report["difference_curriculum_minus_scratch"]["sharpe"]
    for seed in (0, 1):
        expected = runs[(seed, "curriculum")]["agent"]["sharpe"] - \
            runs[(seed, "scratch")]["agent"]["sharpe"]
        assert diffs["per_seed"][str(seed)] == pytest.approx(expected)

    # the same evaluation the runner made after the curriculum's last stage, and the
    # same baselines for every seed (the market does not depend on the training seed)
    for seed in (0, 1):
        own = json.loads((out / f"seed{seed}/curriculum/reports/tiny2/validation.json")
                         .read_text())
        assert own["agent"]["sharpe"] == pytest.approx(runs[(seed, "curriculum")]["agent"]
                                                       ["sharpe"])
        assert own["baselines"] == report["baselines"]
    assert result.out.count("baselines (same days and costs for every seed)") == 1

    # an earlier comparison is not overwritten silently
    refused = run_cli(*args)
    assert refused.code == 1 and "--resume" in refused.err

    # --resume skips finished runs and trains only what is missing
    kept = {path: _digest(path) for path in out.glob("seed*/*/models/*_final.zip")
            if "seed1/scratch" not in str(path)}
    shutil.rmtree(out / "seed1" / "scratch")
    resumed = run_cli(*args, "--resume")
    assert resumed.code == 0, resumed
    for seed, arm in ((0, "curriculum"), (0, "scratch"), (1, "curriculum")):
        assert f"seed {seed} {arm}: already finished" in resumed.out
    assert "seed 1 scratch: already finished" not in resumed.out
    assert resumed.out.count("training 512 steps") == 1
    assert {path: _digest(path) for path in kept} == kept
    assert (out / "seed1/scratch/models/tiny2_scratch_final.zip").exists()
    again = json.loads((reports / "compare.json").read_text())
    assert [r["skipped"] for r in again["runs"]] == [True, True, True, False]
    assert again["baselines"] == report["baselines"]
    for key in ((0, "curriculum"), (0, "scratch"), (1, "curriculum")):
        assert next(r for r in again["runs"] if (r["seed"], r["arm"]) == key)["agent"] == \
            runs[key]["agent"]
