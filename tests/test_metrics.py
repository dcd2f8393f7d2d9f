"""Tests of ploutos_core.evaluation.metrics against hand-computed values."""

from __future__ import annotations

import math
from statistics import NormalDist

import attrs
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_almost_equal

from ploutos_core.evaluation import metrics as m

# Alternating series used for several hand computations:
# mean 0.005, deviations +-0.015, sample variance 4 * 0.015**2 / 3 = 0.0003,
# per-period Sharpe 0.005 / sqrt(0.0003) = 1 / sqrt(12), annualised sqrt(252 / 12) = sqrt(21).
ALT = [0.02, -0.01, 0.02, -0.01]
DRAWDOWN = [0.1, -0.5, 0.2]  # equity 1, 1.1, 0.55, 0.66


def _noise(n: int, mean: float, std: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


# ----------------------------------------------------------------- equity / drawdown


def test_equity_curve_starts_at_initial_and_compounds() -> None:
    assert_allclose(m.equity_curve(DRAWDOWN), [1.0, 1.1, 0.55, 0.66])
    assert_allclose(m.equity_curve(DRAWDOWN, initial=100.0), [100.0, 110.0, 55.0, 66.0])
    assert_allclose(m.equity_curve([]), [1.0])


def test_drawdown_series_and_max_drawdown() -> None:
    assert_allclose(m.drawdown_series(DRAWDOWN), [0.0, 0.0, -0.5, -0.4], atol=1e-15)
    assert m.max_drawdown(DRAWDOWN) == pytest.approx(0.5)


def test_first_day_loss_counts_in_drawdown() -> None:
    # equity 1, 0.8, 0.88: the peak is the initial value 1.0
    assert m.max_drawdown([-0.2, 0.1]) == pytest.approx(0.2)
    assert_allclose(m.drawdown_series([-0.2, 0.1]), [0.0, -0.2, -0.12])


def test_total_loss_is_full_drawdown() -> None:
    assert m.max_drawdown([0.1, -1.0]) == pytest.approx(1.0)
    assert m.cagr([0.1, -1.0]) == -1.0


# ----------------------------------------------------------------- constant series


def test_constant_positive_series() -> None:
    r = 0.001
    returns = np.full(252, r)
    assert m.sharpe_ratio(returns) == math.inf
    assert m.sortino_ratio(returns) == math.inf
    assert m.cagr(returns) == pytest.approx((1 + r) ** 252 - 1, rel=1e-12)
    assert m.max_drawdown(returns) == 0.0
    assert m.calmar_ratio(returns) == math.inf
    assert m.success_rate(returns) == 1.0
    assert m.annualised_volatility(returns) == 0.0
    assert m.sharpe_confidence_interval(returns) == (math.inf, math.inf)
    assert m.probabilistic_sharpe_ratio(returns, benchmark_sharpe=5.0) == 1.0


def test_constant_zero_and_negative_series() -> None:
    zeros = np.zeros(10)
    assert m.sharpe_ratio(zeros) == 0.0
    assert m.sortino_ratio(zeros) == 0.0
    assert m.calmar_ratio(zeros) == 0.0
    assert m.success_rate(zeros, window=5) == 0.0
    assert m.probabilistic_sharpe_ratio(zeros, benchmark_sharpe=0.0) == 0.5
    assert m.probabilistic_sharpe_ratio(zeros, benchmark_sharpe=-1.0) == 1.0
    negative = np.full(10, -0.01)
    assert m.sharpe_ratio(negative) == -math.inf
    # downside deviation 0.01, mean -0.01
    assert m.sortino_ratio(negative) == pytest.approx(-math.sqrt(252))
    assert m.probabilistic_sharpe_ratio(negative) == 0.0


# ----------------------------------------------------------------- ratios


def test_sharpe_alternating_series_by_hand() -> None:
    assert m.sharpe_ratio(ALT) == pytest.approx(math.sqrt(21.0), rel=1e-12)
    assert m.sharpe_ratio(ALT, periods=12) == pytest.approx(1.0, rel=1e-12)


def test_sharpe_subtracts_geometric_per_period_risk_free_rate() -> None:
    # per-period rf of exactly 1%: excess returns are ALT again
    rf = 1.01**252 - 1
    assert m.sharpe_ratio([0.03, 0.0, 0.03, 0.0], risk_free_rate=rf) == pytest.approx(
        math.sqrt(21.0), rel=1e-9
    )


def test_sortino_by_hand() -> None:
    # downside: [0, -0.01, 0, -0.01] -> sqrt(mean of squares) = sqrt(5e-5)
    # ratio per period 0.005 / sqrt(5e-5) = 1 / sqrt(2), annualised sqrt(126)
    assert m.sortino_ratio(ALT) == pytest.approx(math.sqrt(126.0), rel=1e-12)


def test_annualised_volatility_by_hand() -> None:
    assert m.annualised_volatility(ALT) == pytest.approx(math.sqrt(0.0003 * 252), rel=1e-12)


def test_cagr_and_calmar_by_hand() -> None:
    # equity 1 -> 0.66 in exactly one "year" of 3 periods
    assert m.cagr(DRAWDOWN, periods=3) == pytest.approx(-0.34)
    assert m.calmar_ratio(DRAWDOWN, periods=3) == pytest.approx(-0.68)
    # equity 1, 1.2, 1.08, 1.188: drawdown 10%, growth 18.8%
    assert m.calmar_ratio([0.2, -0.1, 0.1], periods=3) == pytest.approx(1.88)
    # two years of data: annual growth is the square root
    assert m.cagr([0.21], periods=1) == pytest.approx(0.21)
    assert m.cagr([0.1, 0.1], periods=1) == pytest.approx(0.1)


# ----------------------------------------------------------------- inference


def test_sharpe_ci_alternating_series_by_hand() -> None:
    # symmetric two-point law: skewness 0, kurtosis 1 -> se = sqrt(1 / (n - 1)) = 1/sqrt(3)
    z = NormalDist().inv_cdf(0.975)
    sr = 1 / math.sqrt(12)
    low, high = m.sharpe_confidence_interval(ALT)
    expected = ((sr - z / math.sqrt(3)) * math.sqrt(252), (sr + z / math.sqrt(3)) * math.sqrt(252))
    assert_allclose((low, high), expected, rtol=1e-12)


def test_sharpe_ci_matches_normal_formula_and_narrows_with_n() -> None:
    short = _noise(100, 0.001, 0.01, seed=1)
    long = _noise(10_000, 0.001, 0.01, seed=1)
    widths = []
    for returns in (short, long):
        low, high = m.sharpe_confidence_interval(returns)
        point = m.sharpe_ratio(returns)
        assert low < point < high
        assert (low + high) / 2 == pytest.approx(point)
        widths.append(high - low)
    assert widths[1] < widths[0] / 5  # ~ sqrt(100) times narrower
    # near-normal data: se ~ sqrt((1 + SR^2 / 2) / (n - 1))
    sr = m.sharpe_ratio(long) / math.sqrt(252)
    se = math.sqrt((1 + sr**2 / 2) / (long.size - 1))
    assert widths[1] == pytest.approx(2 * 1.959964 * se * math.sqrt(252), rel=0.02)


def test_sharpe_ci_wider_at_higher_confidence() -> None:
    returns = _noise(300, 0.0005, 0.01, seed=2)
    lo90, hi90 = m.sharpe_confidence_interval(returns, confidence=0.90)
    lo99, hi99 = m.sharpe_confidence_interval(returns, confidence=0.99)
    assert lo99 < lo90 < hi90 < hi99


def test_psr_by_hand() -> None:
    # SR = 1/sqrt(12), variance term 1, n - 1 = 3 -> Phi(sqrt(3) / sqrt(12)) = Phi(0.5)
    assert m.probabilistic_sharpe_ratio(ALT) == pytest.approx(NormalDist().cdf(0.5), rel=1e-12)


def test_psr_is_half_at_observed_sharpe() -> None:
    returns = _noise(500, 0.0005, 0.01, seed=3)
    observed = m.sharpe_ratio(returns)
    assert m.probabilistic_sharpe_ratio(returns, benchmark_sharpe=observed) == pytest.approx(
        0.5, abs=1e-9
    )
    assert m.probabilistic_sharpe_ratio(returns, benchmark_sharpe=observed + 1) < 0.5
    assert m.probabilistic_sharpe_ratio(returns, benchmark_sharpe=observed - 1) > 0.5


def test_psr_increases_with_n_for_positive_sharpe() -> None:
    pattern = np.array([0.01, -0.004, 0.006, -0.008, 0.003])
    values = [m.probabilistic_sharpe_ratio(np.tile(pattern, k)) for k in (2, 10, 50)]
    assert 0.5 < values[0] < values[1] < values[2] <= 1.0


# ----------------------------------------------------------------- bootstrap


def test_bootstrap_small_pvalue_when_a_dominates() -> None:
    b = _noise(1000, 0.0002, 0.01, seed=4)
    a = b + 0.002 + _noise(1000, 0.0, 0.002, seed=5)
    p = m.bootstrap_sharpe_difference_pvalue(a, b, n_resamples=500)
    assert p < 0.01
    # the reverse comparison is hopeless
    assert m.bootstrap_sharpe_difference_pvalue(b, a, n_resamples=500) > 0.99


def test_bootstrap_large_pvalue_for_equivalent_series() -> None:
    b = _noise(1000, 0.0003, 0.01, seed=6)
    assert m.bootstrap_sharpe_difference_pvalue(b, b, n_resamples=200) == 1.0
    a = b + _noise(1000, 0.0, 0.0005, seed=7)
    assert m.bootstrap_sharpe_difference_pvalue(a, b, n_resamples=500) > 0.2


def test_bootstrap_is_deterministic_per_seed() -> None:
    a = _noise(300, 0.0005, 0.01, seed=8)
    b = _noise(300, 0.0003, 0.01, seed=9)
    p1 = m.bootstrap_sharpe_difference_pvalue(a, b, n_resamples=300, seed=42)
    p2 = m.bootstrap_sharpe_difference_pvalue(a, b, n_resamples=300, seed=42)
    assert p1 == p2
    assert 0.0 <= p1 <= 1.0
    # block length 1 (i.i.d. bootstrap) and a block longer than the series both work
    for block in (1, 400):
        p = m.bootstrap_sharpe_difference_pvalue(a, b, n_resamples=50, block_length=block)
        assert 0.0 <= p <= 1.0


# ----------------------------------------------------------------- success rate


def test_success_rate_counts_full_non_overlapping_windows() -> None:
    # windows of 2: [0.1, -0.05] +4.5% yes, [-0.1, 0.05] -5.5% no, [0.0, 0.0] flat -> no,
    # [0.01, 0.01] yes; trailing [0.5] is dropped -> 2 / 4
    returns = [0.1, -0.05, -0.1, 0.05, 0.0, 0.0, 0.01, 0.01, 0.5]
    assert m.success_rate(returns, window=2) == pytest.approx(0.5)
    assert m.success_rate(returns, window=9) == 1.0  # +... overall positive
    assert m.success_rate([-0.01] * 21) == 0.0
    assert m.success_rate([0.01] * 41) == 1.0  # one window of 21, 20 dropped


# ----------------------------------------------------------------- summary


def test_summarize_consistent_with_functions() -> None:
    returns = _noise(300, 0.0005, 0.01, seed=10)
    summary = m.summarize(returns, initial_value=1000.0, risk_free_rate=0.02)
    assert summary.sharpe == pytest.approx(m.sharpe_ratio(returns, 0.02))
    assert (summary.sharpe_ci_low, summary.sharpe_ci_high) == pytest.approx(
        m.sharpe_confidence_interval(returns, risk_free_rate=0.02)
    )
    assert summary.sortino == pytest.approx(m.sortino_ratio(returns, 0.02))
    assert summary.max_drawdown == pytest.approx(m.max_drawdown(returns))
    assert summary.calmar == pytest.approx(m.calmar_ratio(returns))
    assert summary.cagr == pytest.approx(m.cagr(returns))
    assert summary.volatility == pytest.approx(m.annualised_volatility(returns))
    assert summary.final_value == pytest.approx(m.equity_curve(returns, 1000.0)[-1])
    assert summary.total_return == pytest.approx(summary.final_value / 1000.0 - 1)
    assert summary.success_rate == pytest.approx(m.success_rate(returns, 21))
    assert summary.n_days == 300

    data = summary.to_dict()
    assert list(data) == [f.name for f in attrs.fields(m.PerformanceSummary)]
    assert data["n_days"] == 300
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        summary.sharpe = 0.0  # type: ignore[misc]


def test_summarize_short_series_has_nan_success_rate() -> None:
    summary = m.summarize(DRAWDOWN)
    assert math.isnan(summary.success_rate)
    assert summary.final_value == pytest.approx(0.66)
    assert summary.total_return == pytest.approx(-0.34)


def test_arraylike_inputs_accepted() -> None:
    assert_array_almost_equal(m.equity_curve(tuple(DRAWDOWN)), m.equity_curve(np.array(DRAWDOWN)))


# ----------------------------------------------------------------- invalid inputs


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.sharpe_ratio([0.01]),
        lambda: m.sharpe_ratio([]),
        lambda: m.sharpe_ratio([[0.01, 0.02], [0.0, 0.01]]),
        lambda: m.sharpe_ratio([0.01, math.nan]),
        lambda: m.sharpe_ratio([0.01, math.inf]),
        lambda: m.sharpe_ratio([0.01, -1.5]),
        lambda: m.sharpe_ratio(ALT, periods=0),
        lambda: m.sharpe_ratio(ALT, risk_free_rate=-1.0),
        lambda: m.sortino_ratio([]),
        lambda: m.max_drawdown([]),
        lambda: m.cagr([]),
        lambda: m.annualised_volatility([0.01]),
        lambda: m.equity_curve(ALT, initial=0.0),
        lambda: m.sharpe_confidence_interval(ALT, confidence=1.0),
        lambda: m.sharpe_confidence_interval(ALT, confidence=0.0),
        lambda: m.probabilistic_sharpe_ratio(ALT, benchmark_sharpe=math.inf),
        lambda: m.bootstrap_sharpe_difference_pvalue(ALT, ALT[:3]),
        lambda: m.bootstrap_sharpe_difference_pvalue(ALT, ALT, n_resamples=0),
        lambda: m.bootstrap_sharpe_difference_pvalue(ALT, ALT, block_length=0),
        lambda: m.bootstrap_sharpe_difference_pvalue(ALT, [0.01] * 4),
        lambda: m.success_rate(ALT, window=5),
        lambda: m.success_rate(ALT, window=0),
        lambda: m.summarize([0.01]),
        lambda: m.summarize(ALT, initial_value=-1.0),
    ],
)
def test_invalid_inputs_raise_value_error(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()
