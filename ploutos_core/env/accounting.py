"""Portfolio accounting shared by the environment, backtests and baselines.

Weights have one column per asset plus a last column for cash. A decision made
at the close of day t moves the portfolio from its drifted weights to target
weights, pays ``cost_rate`` on the traded value (turnover), and then earns the
assets' growth from the close of t to the close of t+1.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@attrs.frozen(eq=False)
class StepOutcome:
    """The result of one rebalance-and-hold step, for every portfolio of a batch.

    :param net_growth: portfolio value at t+1 divided by value at t, after costs.
    :param weights: drifted weights at the close of t+1 (before the next decision).
    :param turnover: traded value as a fraction of the portfolio (sum of |Δw| over assets).
    :param cost: costs paid as a fraction of the portfolio value at t.
    """

    net_growth: Array
    weights: Array
    turnover: Array
    cost: Array


def rebalance_and_hold(drifted: Array, target: Array, growth: Array,
                       cost_rate: float) -> StepOutcome:
    """Trade from ``drifted`` to ``target`` weights, pay costs, and hold one day.

    :param drifted: ``(..., n_assets + 1)`` weights before trading (cash last).
    :param target: ``(..., n_assets + 1)`` weights after trading; rows sum to 1.
    :param growth: ``(..., n_assets)`` price ratios close(t+1) / close(t).
    :param cost_rate: cost per unit of traded value (10 bps → 0.001).
    """
    turnover = np.abs(target[..., :-1] - drifted[..., :-1]).sum(axis=-1)
    cost = cost_rate * turnover
    held = target[..., :-1] * growth
    gross = held.sum(axis=-1) + target[..., -1]
    weights = np.concatenate([held, target[..., -1:]], axis=-1) / gross[..., None]
    return StepOutcome(net_growth=(1.0 - cost) * gross, weights=weights, turnover=turnover,
                       cost=cost)


def softmax(scores: Array) -> Array:
    """Row-wise softmax over the last axis, numerically stable."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]
