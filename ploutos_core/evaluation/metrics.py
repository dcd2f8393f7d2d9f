"""Compute performance statistics of daily simple-return series with NumPy alone.

Every function takes a 1-D sequence of *simple net returns* ``r_t = V_t / V_{t-1} - 1``
(one per period, e.g. one per trading day) and returns plain Python floats, so the
results can be logged, compared against promotion gates or serialised directly.

Conventions shared by all functions:

* Returns must be finite and ``>= -1`` (a return below -100% is impossible for a
  long-only value series); anything else raises :class:`ValueError`.
* Annualisation uses ``periods`` periods per year (:data:`TRADING_DAYS` by default).
* Annual risk-free rates are converted to per-period rates geometrically:
  ``rf_p = (1 + rf) ** (1 / periods) - 1``.
* A series whose excess returns are all exactly equal has zero dispersion; Sharpe-type
  ratios are then ``+inf`` / ``-inf`` for a positive / negative mean and ``0.0`` for a
  zero mean, rather than a division error or a huge number produced by rounding noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

__all__ = [
    "TRADING_DAYS",
    "PerformanceSummary",
    "annualised_volatility",
    "bootstrap_sharpe_difference_pvalue",
    "cagr",
    "calmar_ratio",
    "deflated_sharpe_ratio",
    "drawdown_series",
    "equity_curve",
    "expected_maximum_sharpe",
    "max_drawdown",
    "probabilistic_sharpe_ratio",
    "sharpe_confidence_interval",
    "sharpe_ratio",
    "sortino_ratio",
    "success_rate",
    "summarize",
]

TRADING_DAYS = 252
"""Trading days per year used to annualise daily statistics."""

FloatArray = npt.NDArray[np.float64]

_NORMAL = NormalDist()
_BOOTSTRAP_CHUNK = 256  # resamples drawn at once; bounds memory to ~chunk * n indices


# --------------------------------------------------------------------------- validation


def _as_returns(returns: npt.ArrayLike, min_length: int = 1, name: str = "returns") -> FloatArray:
    """Convert ``returns`` to a validated 1-D float64 array with at least ``min_length`` items."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got an array of shape {arr.shape}")
    if arr.size < min_length:
        raise ValueError(f"{name} needs at least {min_length} value(s), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; found {arr[bad]} at index {bad}")
    if np.any(arr < -1.0):
        bad = int(np.flatnonzero(arr < -1.0)[0])
        raise ValueError(
            f"{name} are simple returns and cannot be below -1 (-100%); "
            f"found {arr[bad]} at index {bad}"
        )
    return arr


def _check_periods(periods: int) -> None:
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
        raise ValueError(f"periods must be a positive integer, got {periods!r}")


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _per_period_rate(risk_free_rate: float, periods: int) -> float:
    _check_periods(periods)
    if not math.isfinite(risk_free_rate) or risk_free_rate <= -1.0:
        raise ValueError(f"risk_free_rate must be a finite annual rate > -1, got {risk_free_rate}")
    return float((1.0 + risk_free_rate) ** (1.0 / periods) - 1.0)


def _excess(
    returns: npt.ArrayLike, risk_free_rate: float, periods: int, min_length: int
) -> FloatArray:
    arr = _as_returns(returns, min_length=min_length)
    return arr - _per_period_rate(risk_free_rate, periods)


def _signed_inf(mean: float) -> float:
    """Ratio of ``mean`` to zero dispersion: ``±inf`` by sign, ``0.0`` when ``mean`` is 0."""
    if mean > 0.0:
        return math.inf
    if mean < 0.0:
        return -math.inf
    return 0.0


def _per_period_sharpe(excess: FloatArray) -> float:
    """Non-annualised Sharpe ratio ``mean / std(ddof=1)`` with the zero-dispersion convention."""
    mean = float(np.mean(excess))
    if np.ptp(excess) == 0.0:
        return _signed_inf(float(excess[0]))
    return mean / float(np.std(excess, ddof=1))


def _sharpe_se_variance(excess: FloatArray, sr: float) -> float:
    """``1 - g3*SR + (g4 - 1)/4 * SR**2`` with sample skewness ``g3`` and kurtosis ``g4``.

    ``g3 = m3 / m2**1.5`` and ``g4 = m4 / m2**2`` use central moments ``m_k`` with
    divisor ``n``; ``g4`` is the ordinary (non-excess) kurtosis, 3 for a normal law.
    Pearson's inequality ``g4 >= 1 + g3**2`` makes the value ``>= (1 - g3*SR/2)**2 >= 0``;
    it is clipped at 0 against rounding.
    """
    dev = excess - np.mean(excess)
    m2 = float(np.mean(dev**2))
    g3 = float(np.mean(dev**3)) / (m2 * math.sqrt(m2))
    g4 = float(np.mean(dev**4)) / (m2 * m2)
    return max(1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr, 0.0)


# --------------------------------------------------------------------------- equity


def equity_curve(returns: npt.ArrayLike, initial: float = 1.0) -> FloatArray:
    """Compound returns into a value series that starts at ``initial``.

    :param returns: simple per-period returns, 1-D (may be empty).
    :param initial: value before the first return; must be finite and > 0.
    :return: array of length ``n + 1``: ``[initial, initial*(1+r_0), ...]``.
    :raises ValueError: on invalid returns or a non-positive ``initial``.
    """
    arr = _as_returns(returns, min_length=0)
    if not math.isfinite(initial) or initial <= 0.0:
        raise ValueError(f"initial value must be finite and > 0, got {initial}")
    curve = np.empty(arr.size + 1, dtype=np.float64)
    curve[0] = initial
    curve[1:] = initial * np.cumprod(1.0 + arr)
    return curve


def drawdown_series(returns: npt.ArrayLike) -> FloatArray:
    """Drawdown from the running peak at every point of the equity curve.

    :param returns: simple per-period returns, 1-D (may be empty).
    :return: array of length ``n + 1`` (the first point is the initial value, drawdown 0)
        with values in ``[-1, 0]``; ``-0.25`` means 25% below the highest value so far.
    :raises ValueError: on invalid returns.
    """
    curve = equity_curve(returns)
    peak = np.maximum.accumulate(curve)  # >= 1.0 > 0 because the curve starts at 1.0
    result: FloatArray = curve / peak - 1.0
    return result


def max_drawdown(returns: npt.ArrayLike) -> float:
    """Largest peak-to-trough loss of the equity curve, as a positive fraction.

    The curve starts at 1.0 *before* the first return, so a loss on the first day counts.

    :param returns: simple per-period returns, 1-D, at least one value.
    :return: value in ``[0, 1]``; ``0.25`` means the value fell 25% below a previous peak.
    :raises ValueError: on invalid or empty returns.
    """
    _as_returns(returns, min_length=1)
    return -float(np.min(drawdown_series(returns)))


def cagr(returns: npt.ArrayLike, periods: int = TRADING_DAYS) -> float:
    """Compound annual growth rate ``(final / initial) ** (periods / n) - 1``.

    :param returns: simple per-period returns, 1-D, at least one value.
    :param periods: periods per year.
    :return: annualised geometric growth rate; ``-1.0`` after a total loss.
    :raises ValueError: on invalid returns or periods.
    """
    arr = _as_returns(returns, min_length=1)
    _check_periods(periods)
    growth = float(np.prod(1.0 + arr))
    if growth == 0.0:
        return -1.0
    return float(growth ** (periods / arr.size) - 1.0)


def annualised_volatility(returns: npt.ArrayLike, periods: int = TRADING_DAYS) -> float:
    """Sample standard deviation of returns (``ddof=1``) scaled by ``sqrt(periods)``.

    :param returns: simple per-period returns, 1-D, at least two values.
    :param periods: periods per year.
    :return: annualised volatility, ``>= 0``; exactly ``0.0`` when all returns are equal
        (rather than the rounding noise of the mean).
    :raises ValueError: on invalid returns, fewer than two of them, or invalid periods.
    """
    arr = _as_returns(returns, min_length=2)
    _check_periods(periods)
    if np.ptp(arr) == 0.0:
        return 0.0
    return float(np.std(arr, ddof=1) * math.sqrt(periods))


# --------------------------------------------------------------------------- ratios


def sharpe_ratio(
    returns: npt.ArrayLike, risk_free_rate: float = 0.0, periods: int = TRADING_DAYS
) -> float:
    """Annualised Sharpe ratio ``mean(excess) / std(excess, ddof=1) * sqrt(periods)``.

    :param returns: simple per-period returns, 1-D, at least two values.
    :param risk_free_rate: *annual* risk-free rate, converted to a per-period rate as
        ``(1 + rf) ** (1 / periods) - 1`` and subtracted from every return.
    :param periods: periods per year.
    :return: the annualised Sharpe ratio. If all excess returns are identical (zero
        standard deviation) the result is ``+inf`` for a positive excess, ``-inf`` for a
        negative one and ``0.0`` for zero excess.
    :raises ValueError: on invalid returns, fewer than two of them, or invalid rates/periods.
    """
    excess = _excess(returns, risk_free_rate, periods, min_length=2)
    return _per_period_sharpe(excess) * math.sqrt(periods)


def sortino_ratio(
    returns: npt.ArrayLike, risk_free_rate: float = 0.0, periods: int = TRADING_DAYS
) -> float:
    """Annualised Sortino ratio ``mean(excess) / DD * sqrt(periods)``.

    The downside deviation ``DD = sqrt(mean(min(excess, 0) ** 2))`` is taken over *all*
    periods (target excess return 0), not only the losing ones.

    :param returns: simple per-period returns, 1-D, at least one value.
    :param risk_free_rate: annual risk-free rate (converted as in :func:`sharpe_ratio`).
    :param periods: periods per year.
    :return: the annualised Sortino ratio; without any negative excess return it is
        ``+inf`` for a positive mean excess and ``0.0`` for a zero mean excess.
    :raises ValueError: on invalid returns or rates/periods.
    """
    excess = _excess(returns, risk_free_rate, periods, min_length=1)
    mean = float(np.mean(excess))
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0.0:
        return _signed_inf(mean)
    return mean / downside * math.sqrt(periods)


def calmar_ratio(returns: npt.ArrayLike, periods: int = TRADING_DAYS) -> float:
    """Calmar ratio: :func:`cagr` divided by :func:`max_drawdown`.

    :param returns: simple per-period returns, 1-D, at least one value.
    :param periods: periods per year.
    :return: ``cagr / max_drawdown``; with no drawdown at all, ``+inf`` if the CAGR is
        positive and ``0.0`` otherwise.
    :raises ValueError: on invalid returns or periods.
    """
    growth = cagr(returns, periods)
    mdd = max_drawdown(returns)
    if mdd == 0.0:
        return math.inf if growth > 0.0 else 0.0
    return growth / mdd


# --------------------------------------------------------------------------- inference


def sharpe_confidence_interval(
    returns: npt.ArrayLike,
    confidence: float = 0.95,
    risk_free_rate: float = 0.0,
    periods: int = TRADING_DAYS,
) -> tuple[float, float]:
    """Asymptotic confidence interval of the annualised Sharpe ratio, robust to non-normality.

    With the per-period Sharpe ratio ``SR = mean / std(ddof=1)`` of the ``n`` excess
    returns, sample skewness ``g3`` and ordinary (non-excess, 3 for a normal law)
    kurtosis ``g4``, the standard error is (Mertens 2002; Lo 2002 for the i.i.d. case)::

        se = sqrt((1 - g3 * SR + (g4 - 1) / 4 * SR**2) / (n - 1))

    and the interval is ``(SR - z * se, SR + z * se) * sqrt(periods)`` with
    ``z = Phi^-1((1 + confidence) / 2)``. Moments use divisor ``n``.

    References: E. Mertens, "Comments on variance of the IID estimator in Lo (2002)",
    working paper, University of Basel, 2002; A. W. Lo, "The Statistics of Sharpe
    Ratios", Financial Analysts Journal 58(4), 2002, pp. 36-52.

    :param returns: simple per-period returns, 1-D, at least two values.
    :param confidence: two-sided confidence level, strictly between 0 and 1.
    :param risk_free_rate: annual risk-free rate (converted as in :func:`sharpe_ratio`).
    :param periods: periods per year.
    :return: ``(low, high)`` bounds of the annualised Sharpe ratio. For zero-dispersion
        returns the interval collapses to the point estimate of :func:`sharpe_ratio`.
    :raises ValueError: on invalid returns, fewer than two of them, or a bad confidence.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    excess = _excess(returns, risk_free_rate, periods, min_length=2)
    sr = _per_period_sharpe(excess)
    scale = math.sqrt(periods)
    if not math.isfinite(sr) or np.ptp(excess) == 0.0:
        return sr * scale, sr * scale
    se = math.sqrt(_sharpe_se_variance(excess, sr) / (excess.size - 1))
    z = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    return (sr - z * se) * scale, (sr + z * se) * scale


def probabilistic_sharpe_ratio(
    returns: npt.ArrayLike,
    benchmark_sharpe: float = 0.0,
    risk_free_rate: float = 0.0,
    periods: int = TRADING_DAYS,
) -> float:
    """Probabilistic Sharpe ratio (Bailey & López de Prado, 2012).

    Probability that the true Sharpe ratio exceeds ``benchmark_sharpe``::

        PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2))

    where ``SR`` is the per-period Sharpe ratio, ``SR* = benchmark_sharpe / sqrt(periods)``,
    and ``g3`` / ``g4`` are the sample skewness and ordinary (non-excess) kurtosis, as in
    :func:`sharpe_confidence_interval`.

    Reference: D. H. Bailey and M. López de Prado, "The Sharpe Ratio Efficient
    Frontier", Journal of Risk 15(2), 2012, pp. 3-44.

    :param returns: simple per-period returns, 1-D, at least two values.
    :param benchmark_sharpe: *annualised* Sharpe ratio to beat, finite.
    :param risk_free_rate: annual risk-free rate (converted as in :func:`sharpe_ratio`).
    :param periods: periods per year.
    :return: probability in ``[0, 1]``. When the standard error is zero (e.g. all excess
        returns identical, so the Sharpe ratio is known exactly) the result is ``1.0`` if
        ``SR > SR*``, ``0.0`` if ``SR < SR*`` and ``0.5`` on a tie.
    :raises ValueError: on invalid returns, fewer than two of them, or a non-finite benchmark.
    """
    if not math.isfinite(benchmark_sharpe):
        raise ValueError(f"benchmark_sharpe must be finite, got {benchmark_sharpe}")
    excess = _excess(returns, risk_free_rate, periods, min_length=2)
    sr = _per_period_sharpe(excess)
    target = benchmark_sharpe / math.sqrt(periods)
    variance = 0.0 if np.ptp(excess) == 0.0 else _sharpe_se_variance(excess, sr)
    if variance == 0.0:
        return 1.0 if sr > target else 0.0 if sr < target else 0.5
    z = (sr - target) * math.sqrt(excess.size - 1) / math.sqrt(variance)
    return _NORMAL.cdf(z)


#: Euler–Mascheroni constant, in the expected maximum of Gaussian Sharpe ratios.
_EULER_GAMMA = 0.5772156649015329


def expected_maximum_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected largest of ``n_trials`` independent per-period Sharpe ratios of zero mean.

    ``E[max] ≈ sqrt(V) · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))`` (Bailey & López de
    Prado, 2014, eq. 9), with ``V`` the variance of the Sharpe ratios across trials.

    :param n_trials: configurations tried, at least 1 (one trial: 0).
    :param sharpe_variance: variance of the per-period Sharpe ratio estimates.
    """
    _check_positive_int(n_trials, "n_trials")
    if n_trials == 1:
        return 0.0
    return math.sqrt(sharpe_variance) * (
        (1 - _EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n_trials)
        + _EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (n_trials * math.e)))


def deflated_sharpe_ratio(
    returns: npt.ArrayLike,
    n_trials: int,
    trial_sharpe_variance: float | None = None,
    risk_free_rate: float = 0.0,
    periods: int = TRADING_DAYS,
) -> float:
    """Deflated Sharpe ratio (Bailey & López de Prado, 2014): the probabilistic Sharpe
    ratio against the best Sharpe ratio that ``n_trials`` configurations without skill
    would be expected to show.

    Reference: D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting
    for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
    Management 40(5), 2014, pp. 94-107.

    :param returns: simple per-period returns of the selected configuration.
    :param n_trials: how many configurations were tried before this one was chosen.
    :param trial_sharpe_variance: variance across the trials of their *per-period*
        Sharpe ratios; when unknown, the sampling variance of this Sharpe estimate,
        ``(1 − g3·SR + (g4 − 1)/4·SR²) / (n − 1)``, stands in for it.
    :param risk_free_rate: annual risk-free rate.
    :param periods: periods per year.
    :return: a probability in ``[0, 1]``; one trial gives the PSR against 0.
    """
    excess = _excess(returns, risk_free_rate, periods, min_length=2)
    if trial_sharpe_variance is None:
        sr = _per_period_sharpe(excess)
        spread = 0.0 if np.ptp(excess) == 0.0 else _sharpe_se_variance(excess, sr)
        trial_sharpe_variance = spread / (excess.size - 1)
    if not math.isfinite(trial_sharpe_variance) or trial_sharpe_variance < 0:
        raise ValueError(f"trial_sharpe_variance must be finite and >= 0, "
                         f"got {trial_sharpe_variance}")
    threshold = expected_maximum_sharpe(n_trials, trial_sharpe_variance)
    return probabilistic_sharpe_ratio(returns, benchmark_sharpe=threshold * math.sqrt(periods),
                                      risk_free_rate=risk_free_rate, periods=periods)


def _row_sharpes(samples: FloatArray) -> FloatArray:
    """Per-period Sharpe ratio of every row, with the zero-dispersion convention."""
    mean = samples.mean(axis=1)
    std = samples.std(axis=1, ddof=1)
    flat = np.ptp(samples, axis=1) == 0.0
    safe_std = np.where(flat, 1.0, std)
    result: FloatArray = np.where(flat, np.sign(mean) * np.inf, mean / safe_std)
    result[flat & (mean == 0.0)] = 0.0
    return result


def _circular_block_indices(
    rng: np.random.Generator, n: int, n_resamples: int, block_length: int
) -> Iterator[npt.NDArray[np.intp]]:
    """Yield index matrices (rows = resamples) of a circular block bootstrap, in chunks."""
    n_blocks = -(-n // block_length)
    offsets = np.arange(block_length)
    done = 0
    while done < n_resamples:
        size = min(_BOOTSTRAP_CHUNK, n_resamples - done)
        starts = rng.integers(0, n, size=(size, n_blocks))
        idx = (starts[:, :, None] + offsets) % n
        yield idx.reshape(size, n_blocks * block_length)[:, :n]
        done += size


def bootstrap_sharpe_difference_pvalue(
    returns_a: npt.ArrayLike,
    returns_b: npt.ArrayLike,
    n_resamples: int = 2000,
    block_length: int = 20,
    seed: int = 0,
    periods: int = TRADING_DAYS,
) -> float:
    """One-sided p-value that strategy A's Sharpe ratio is *not* above strategy B's.

    Paired circular block bootstrap: each resample draws ``ceil(n / block_length)``
    blocks of ``block_length`` consecutive days (wrapping around the end) at uniform
    random starts and keeps the first ``n`` days; the *same* days are used for both
    series, preserving their cross-correlation and short-range serial dependence.
    With the observed difference ``d = Sharpe(a) - Sharpe(b)`` and the bootstrap
    differences ``d*_k``, the centred bootstrap p-value for ``H0: d = 0`` against
    ``H1: d > 0`` is ``p = mean(d*_k - d >= d)``. Ties count toward H0, so identical
    series give ``p = 1``. No risk-free rate is subtracted.

    :param returns_a: simple per-period returns of strategy A, 1-D, non-constant.
    :param returns_b: simple per-period returns of strategy B, same length, non-constant.
    :param n_resamples: number of bootstrap resamples (>= 1).
    :param block_length: days per block (>= 1); 1 gives the ordinary i.i.d. bootstrap.
    :param seed: seed of :func:`numpy.random.default_rng`; the result is deterministic.
    :param periods: periods per year used to annualise the Sharpe ratios.
    :return: p-value in ``[0, 1]``; small values favour ``Sharpe(a) > Sharpe(b)``.
    :raises ValueError: on invalid or constant returns, unequal lengths, or bad parameters.
    """
    a = _as_returns(returns_a, min_length=2, name="returns_a")
    b = _as_returns(returns_b, min_length=2, name="returns_b")
    if a.size != b.size:
        raise ValueError(
            f"returns_a and returns_b must have equal length, got {a.size} and {b.size}"
        )
    for name, arr in (("returns_a", a), ("returns_b", b)):
        if np.ptp(arr) == 0.0:
            raise ValueError(f"{name} is constant; its Sharpe ratio has no sampling distribution")
    _check_positive_int(n_resamples, "n_resamples")
    _check_positive_int(block_length, "block_length")
    _check_periods(periods)

    scale = math.sqrt(periods)
    observed = (_per_period_sharpe(a) - _per_period_sharpe(b)) * scale
    rng = np.random.default_rng(seed)
    exceed = 0
    for idx in _circular_block_indices(rng, a.size, n_resamples, block_length):
        with np.errstate(invalid="ignore"):
            diffs = (_row_sharpes(a[idx]) - _row_sharpes(b[idx])) * scale
        diffs = np.nan_to_num(diffs, nan=0.0)  # inf - inf on doubly degenerate resamples
        exceed += int(np.count_nonzero(diffs - observed >= observed))
    return exceed / n_resamples


# --------------------------------------------------------------------------- windows


def success_rate(returns: npt.ArrayLike, window: int = 21) -> float:
    """Share of fixed-length evaluation windows with positive net return.

    The series is cut into consecutive, non-overlapping windows of ``window`` periods
    starting at the first return (``r[0:w]``, ``r[w:2w]``, ...); a trailing partial
    window is dropped. A window succeeds when its compounded net return
    ``prod(1 + r) - 1`` is strictly greater than 0 (a flat window is not a success).

    :param returns: simple per-period returns, 1-D, at least ``window`` values.
    :param window: window length in periods (21 trading days is about one month).
    :return: number of successful windows divided by the number of full windows.
    :raises ValueError: on invalid returns, a non-positive window, or fewer than
        ``window`` returns.
    """
    _check_positive_int(window, "window")
    arr = _as_returns(returns, min_length=1)
    if arr.size < window:
        raise ValueError(
            f"success_rate needs at least one full window of {window} returns, got {arr.size}"
        )
    n_windows = arr.size // window
    blocks = arr[: n_windows * window].reshape(n_windows, window)
    growth = np.prod(1.0 + blocks, axis=1)
    return float(np.count_nonzero(growth > 1.0)) / n_windows


# --------------------------------------------------------------------------- summary


@attrs.frozen
class PerformanceSummary:
    """All headline statistics of one return series (see :func:`summarize`).

    Ratios, rates and the volatility are annualised; ``max_drawdown`` is a positive
    fraction; ``success_rate`` is NaN when the series is shorter than one window.
    """

    sharpe: float
    sharpe_ci_low: float
    sharpe_ci_high: float
    sortino: float
    max_drawdown: float
    calmar: float
    cagr: float
    volatility: float
    total_return: float
    final_value: float
    success_rate: float
    n_days: int

    def to_dict(self) -> dict[str, float | int]:
        """Return the fields as a plain dictionary.

        :return: mapping of field name to value, in declaration order.
        """
        data: dict[str, Any] = attrs.asdict(self)
        return data


def summarize(
    returns: npt.ArrayLike,
    initial_value: float = 1.0,
    risk_free_rate: float = 0.0,
    success_window: int = 21,
    periods: int = TRADING_DAYS,
) -> PerformanceSummary:
    """Compute every statistic of this module for one return series.

    :param returns: simple per-period returns, 1-D, at least two values.
    :param initial_value: portfolio value before the first return (> 0).
    :param risk_free_rate: annual risk-free rate for Sharpe, Sortino and the 95% CI.
    :param success_window: window length for :func:`success_rate`; the success rate is
        NaN (not an error) when there are fewer returns than one window.
    :param periods: periods per year.
    :return: a frozen :class:`PerformanceSummary`.
    :raises ValueError: on invalid returns, fewer than two of them, or bad parameters.
    """
    arr = _as_returns(returns, min_length=2)
    _check_positive_int(success_window, "success_window")
    if not math.isfinite(initial_value) or initial_value <= 0.0:
        raise ValueError(f"initial_value must be finite and > 0, got {initial_value}")
    growth = float(np.prod(1.0 + arr))
    low, high = sharpe_confidence_interval(arr, 0.95, risk_free_rate, periods)
    return PerformanceSummary(
        sharpe=sharpe_ratio(arr, risk_free_rate, periods),
        sharpe_ci_low=low,
        sharpe_ci_high=high,
        sortino=sortino_ratio(arr, risk_free_rate, periods),
        max_drawdown=max_drawdown(arr),
        calmar=calmar_ratio(arr, periods),
        cagr=cagr(arr, periods),
        volatility=annualised_volatility(arr, periods),
        total_return=growth - 1.0,
        final_value=initial_value * growth,
        success_rate=(
            success_rate(arr, success_window) if arr.size >= success_window else math.nan
        ),
        n_days=int(arr.size),
    )
