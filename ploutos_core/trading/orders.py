"""From target weights and an account's holdings to orders, under the stage's turnover rule.

The environment trades its simulated portfolio to the smoothed target (scaled by the
stage's ``exposure`` rule) unless the turnover needed is inside ``no_trade_band``
(:func:`~ploutos_core.env.actions.apply_turnover_rule`). An account is treated alike:
its weights at the as-of close are the "drifted" weights, the signal's target is the
target, and the same rule decides
whether it trades and to what. Costs are reserved from the cash, so the orders
never spend more than the account holds at the reference prices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import EnvSettings
from ploutos_core.env.actions import apply_turnover_rule
from ploutos_core.errors import ConfigError
from ploutos_core.trading.contract import Holdings, Order

Array = NDArray[np.float64]


@attrs.frozen(eq=False)
class OrderPlan:
    """The orders that move an account to the target, and why.

    :param tickers: the stage's tickers (the weights' order; cash last).
    :param value: the account's value at the reference prices.
    :param current: the account's weights at the reference prices.
    :param traded: the weights the turnover rule trades to (``current`` inside the band).
    :param rebalance: whether the account trades at all (``False``: inside the band).
    :param orders: the orders, sells first.
    :param turnover: traded value over the account's value (sum of |Δw| over the assets).
    :param estimated_cost: the costs at the reference prices.
    """

    tickers: tuple[str, ...]
    value: float
    current: Array
    traded: Array
    rebalance: bool
    orders: tuple[Order, ...]
    turnover: float
    estimated_cost: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plan."""
        names = [*self.tickers, "cash"]
        return {"value": self.value, "rebalance": self.rebalance,
                "turnover": self.turnover, "estimated_cost": self.estimated_cost,
                "weights_before": dict(zip(names, map(float, self.current), strict=True)),
                "weights_after": dict(zip(names, map(float, self.traded), strict=True)),
                "orders": [order.to_dict() for order in self.orders]}


def plan_orders(holdings: Holdings, tickers: Sequence[str], prices: Mapping[str, float],
                target: Array, settings: EnvSettings, cost_rate: float, *,
                whole_shares: bool = True) -> OrderPlan:
    """Orders moving ``holdings`` to ``target`` under the stage's turnover rule.

    :param holdings: cash and shares now.
    :param tickers: the stage's tickers, in the weights' order.
    :param prices: the as-of closes the orders are sized at.
    :param target: ``(len(tickers) + 1,)`` smoothed target weights (cash last).
    :param settings: the stage's environment settings (``no_trade_band``).
    :param cost_rate: the stage's cost per unit of traded value.
    :param whole_shares: round to whole shares (buys down, sells up to what is held).
    :raises ConfigError: for an account worth nothing or a ticker without a price.
    """
    tickers = tuple(tickers)
    missing = [t for t in (*tickers, *holdings.positions) if t not in prices]
    if missing:
        raise ConfigError(f"no price for {', '.join(sorted(set(missing)))} at the as-of close")
    value = holdings.value(prices)
    if not value > 0:
        raise ConfigError(f"the account is worth {value:.2f}: there is nothing to allocate; "
                          f"give it cash or positions")
    current = holdings.weights(tickers, prices)
    traded = apply_turnover_rule(current[None, :], np.asarray(target, dtype=np.float64)[None, :],
                                 settings)[0]
    rebalance = not np.array_equal(traded, current)
    if not rebalance:
        return OrderPlan(tickers=tickers, value=value, current=current, traded=current,
                         rebalance=False, orders=(), turnover=0.0, estimated_cost=0.0)
    turnover = float(np.abs(traded[:-1] - current[:-1]).sum())
    # Costs are paid from the account: size the target on what is left after them.
    investable = value * (1.0 - cost_rate * turnover)
    orders: list[Order] = []
    for ticker, weight in zip(tickers, traded[:-1], strict=True):
        price = prices[ticker]
        held = holdings.positions.get(ticker, 0.0)
        wanted = weight * investable / price
        change = wanted - held
        if weight <= 0.0:
            change = -held  # close the position exactly, fractional shares included
        elif whole_shares:
            change = math.floor(change) if change > 0 else -min(math.ceil(-change), held)
        if abs(change) > 1e-9:
            orders.append(Order(ticker=ticker, shares=float(change), reference_price=price))
    orders = _within_cash(orders, holdings.cash, cost_rate, whole_shares)
    orders.sort(key=lambda order: (order.shares > 0, order.ticker))
    cost = cost_rate * sum(abs(o.shares) * o.reference_price for o in orders)
    return OrderPlan(tickers=tickers, value=value, current=current, traded=traded,
                     rebalance=True, orders=tuple(orders), turnover=turnover,
                     estimated_cost=cost)


def _within_cash(orders: list[Order], cash: float, cost_rate: float,
                 whole_shares: bool) -> list[Order]:
    """Trim the largest buys until the cash after every order and cost is not negative."""
    def remaining(chosen: list[Order]) -> float:
        return cash - sum(o.shares * o.reference_price + cost_rate * abs(o.shares) *
                          o.reference_price for o in chosen)

    chosen = list(orders)
    for _ in range(100):
        short = -remaining(chosen)
        if short <= 1e-9:
            break
        buys = [o for o in chosen if o.shares > 0]
        if not buys:
            break
        largest = max(buys, key=lambda o: o.shares * o.reference_price)
        cut = short / (largest.reference_price * (1.0 + cost_rate))
        shares = largest.shares - (math.ceil(cut) if whole_shares else cut)
        chosen.remove(largest)
        if shares > 1e-9:
            chosen.append(attrs.evolve(largest, shares=float(shares)))
    return chosen
