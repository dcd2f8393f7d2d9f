"""The classifier: causal, needs history, and labels obvious markets as expected."""

from __future__ import annotations

import numpy as np
import pytest

from ploutos_regimes.classifier import REGIMES, UNKNOWN, RegimeRule, classify


def random_walk(n_days: int = 1500, seed: int = 0) -> np.ndarray:
    """A market that switches between calm rises and turbulent falls."""
    rng = np.random.default_rng(seed)
    state = np.cumsum(rng.random(n_days) < 0.02) % 2  # switch regime ~every 50 days
    drift = np.where(state == 0, 0.0008, -0.0012)
    vol = np.where(state == 0, 0.007, 0.02)
    return 100 * np.exp(np.cumsum(drift + vol * rng.standard_normal(n_days)))


def test_every_regime_occurs_and_labels_partition_the_known_days() -> None:
    signals = classify(random_walk())
    known = signals.labels[signals.labels != UNKNOWN]
    assert set(known) == set(REGIMES)
    assert sum(signals.share(regime) for regime in REGIMES) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_changing_prices_after_t_never_changes_the_label_at_t(seed: int) -> None:
    close = random_walk(seed=seed)
    before = classify(close)
    rng = np.random.default_rng(100 + seed)
    # Edges (first labelled day, last day) and random days in between.
    days = {0, RegimeRule().history - 1, len(close) - 2, *rng.integers(0, len(close) - 1, 40)}
    for t in sorted(days):
        changed = close.copy()
        changed[t + 1:] *= np.exp(rng.normal(0, 0.3, len(close) - t - 1))
        after = classify(changed)
        np.testing.assert_array_equal(after.labels[:t + 1], before.labels[:t + 1])
        np.testing.assert_array_equal(after.trend[:t + 1], before.trend[:t + 1])
        np.testing.assert_array_equal(after.vol_ratio[:t + 1], before.vol_ratio[:t + 1])


def test_the_perturbation_does_change_later_labels() -> None:
    """The causality test has teeth: the same change moves labels after t."""
    close = random_walk()
    t = 700
    changed = close.copy()
    changed[t + 1:] *= np.exp(np.random.default_rng(9).normal(0, 0.3, len(close) - t - 1))
    assert not np.array_equal(classify(changed).labels[t + 1:], classify(close).labels[t + 1:])


def test_the_first_label_waits_for_both_windows() -> None:
    rule = RegimeRule()
    labels = classify(random_walk(), rule).labels
    first = rule.history - 1  # 200-day mean and 21-day vol over a 252-day median
    assert first == 272
    assert (labels[:first] == UNKNOWN).all()
    assert labels[first] != UNKNOWN


def _path(drift: float, vol: float, n_days: int = 600, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(drift + vol * rng.standard_normal(n_days)))


def test_a_calm_rise_is_bull_and_a_fall_is_bear() -> None:
    assert classify(_path(0.002, 0.005)).share("bull") > 0.95
    assert classify(_path(-0.002, 0.005)).share("bear") > 0.95


def test_a_market_hugging_its_mean_is_sideways() -> None:
    rng = np.random.default_rng(4)
    close = 100 * np.exp(0.004 * rng.standard_normal(600))  # noise around 100, no trend
    assert classify(close).share("sideways") > 0.95


def test_a_volatility_shock_in_an_uptrend_is_sideways_not_bull() -> None:
    rng = np.random.default_rng(5)
    returns = 0.002 + 0.005 * rng.standard_normal(600)
    returns[-30:] = 0.002 + 0.03 * rng.standard_normal(30)  # six times the usual volatility
    signals = classify(100 * np.exp(np.cumsum(returns)))
    shocked = slice(-10, None)
    assert (signals.vol_ratio[shocked] > 1.5).all()
    assert (signals.labels[shocked] != "bull").all()
    assert signals.labels[-40] == "bull"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        classify(np.array([100.0, -1.0, 101.0]))
    with pytest.raises(ValueError, match="1-D"):
        classify(np.ones((3, 2)))
    with pytest.raises(ValueError, match="trend_window"):
        RegimeRule(trend_window=0)
