"""``check_broker``: exercise a broker plugin the way ``ploutos trade`` uses it."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd

from ploutos_core.errors import BrokerError
from ploutos_core.testing.errors import ContractError
from ploutos_core.trading.contract import (
    Broker,
    BrokerAccount,
    BrokerRequest,
    CycleOutcome,
    CycleRecord,
    Holdings,
    MarketCloses,
    Order,
)


@attrs.frozen(eq=False)
class BrokerCheck:
    """What :func:`check_broker` observed.

    :param holdings: the account's holdings after the check's cycles.
    :param history: the cycles the check recorded.
    """

    holdings: Holdings
    history: list[CycleRecord]


class _Boom(RuntimeError):
    pass


def check_market(tickers: Sequence[str]) -> MarketCloses:
    """Five business days of closes (2024-01-02 …) for ``tickers``: 100, 101, … per day,
    plus ten per ticker position."""
    dates = pd.bdate_range("2024-01-02", periods=5).values.astype("datetime64[D]")
    close = np.array([[100.0 + day + 10 * column for column in range(len(tickers))]
                      for day in range(5)])
    return MarketCloses(dates=dates, tickers=tuple(tickers), close=close)


def check_broker(broker: Broker, *, tickers: Sequence[str] = ("AAA", "BBB"),
                 location: Path | None = None, options: Mapping[str, str] | None = None,
                 simulated: bool = True) -> BrokerCheck:
    """Open an account of ``broker`` and run cycles on it as ``ploutos trade`` does.

    Checks that a cycle is recorded with its orders; that a second cycle of the same
    day changes nothing and never asks for orders (idempotency key: the trading day);
    that a cycle whose planner raises leaves the account as it was (atomicity); that
    a day before the last recorded one is refused with
    :class:`~ploutos_core.BrokerError`; that the account reads back the same after
    reopening. With ``simulated``, the first day's order must fill at the next day's
    close with the request's cost.

    :param broker: an instance of your :class:`~ploutos_core.Broker` subclass.
    :param tickers: symbols the account may trade (a sandbox account's, for a real broker).
    :param location: the account's state location (a temporary ledger when ``None``).
    :param options: broker-specific options of the request.
    :param simulated: the broker fills at the closes it is handed (like ``paper``); pass
        ``False`` for a real broker's sandbox, whose fills arrive on their own.
    :raises ContractError: naming the broker and what broke.
    """
    name = getattr(broker, "name", None)
    if not isinstance(name, str) or not name:
        raise ContractError(f"{type(broker).__name__}: a broker needs a non-empty string "
                                  f"class attribute 'name'")
    if not isinstance(broker, Broker):
        raise ContractError(f"broker {name!r} is a {type(broker).__name__}; subclass "
                                  f"ploutos_core.Broker")
    with tempfile.TemporaryDirectory(prefix="ploutos-check-") as tmp:
        request = BrokerRequest(stage="check", tickers=tuple(tickers), cost_bps=10.0,
                                location=location or Path(tmp) / "ledger.sqlite",
                                initial_cash=10_000.0, lock_timeout=1.0,
                                options=dict(options or {}))
        return _exercise(broker, name, request, simulated)


def _open(broker: Broker, name: str, request: BrokerRequest) -> BrokerAccount:
    account = broker.open(request)
    if not isinstance(account, BrokerAccount):
        raise ContractError(f"broker {name!r}: open returned {type(account).__name__}; "
                                  f"it must return a ploutos_core.BrokerAccount")
    return account


def _state(account: BrokerAccount) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return account.holdings().to_dict(), [r.to_dict() for r in account.history()]


def _exercise(broker: Broker, name: str, request: BrokerRequest, simulated: bool
              ) -> BrokerCheck:
    market = check_market(request.tickers)
    day1, day2 = market.date(0), market.date(1)
    ticker = request.tickers[0]
    account = _open(broker, name, request)
    try:
        before = account.holdings()
        if not isinstance(before, Holdings):
            raise ContractError(f"broker {name!r}: holdings() returned "
                                      f"{type(before).__name__}, not ploutos_core.Holdings")
        order = Order(ticker=ticker, shares=1.0, reference_price=float(market.close[0, 0]))
        first = account.run_cycle(day1, market, lambda holdings: [order], {"check": 1})
        _expect_outcome(name, first, day1, already=False)
        if tuple(first.record.orders) != (order,):
            raise ContractError(f"broker {name!r}: the cycle of {day1} records orders "
                                      f"{first.record.orders}, expected {(order,)}")
        recorded = _state(account)

        def never(holdings: Holdings) -> list[Order]:
            raise ContractError(f"broker {name!r} asked for orders again on {day1}, a "
                                      f"day already recorded; the trading day is the "
                                      f"idempotency key")

        again = account.run_cycle(day1, market, never, {"check": 2})
        _expect_outcome(name, again, day1, already=True)
        if _state(account) != recorded:
            raise ContractError(f"broker {name!r}: a second cycle of {day1} changed the "
                                      f"account; it must change nothing")

        def boom(holdings: Holdings) -> list[Order]:
            raise _Boom("planner failed")

        try:
            account.run_cycle(day2, market, boom, {"check": 3})
        except _Boom:
            pass
        else:
            raise ContractError(f"broker {name!r} swallowed the planner's exception; let "
                                      f"it propagate after rolling the cycle back")
        if _state(account) != recorded:
            raise ContractError(f"broker {name!r}: a cycle whose planner raised changed "
                                      f"the account; a cycle is all or nothing")
        second = account.run_cycle(day2, market, lambda holdings: [], {"check": 4})
        _expect_outcome(name, second, day2, already=False)
        if simulated:
            _expect_fill(name, second, order, market, request.cost_rate)
        settled = _state(account)
        try:
            account.run_cycle(day1 - dt.timedelta(days=1), market, never, {"check": 5})
        except BrokerError:
            pass
        else:
            raise ContractError(f"broker {name!r} accepted a cycle before the last "
                                      f"recorded day; refuse it with ploutos_core.BrokerError")
        if _state(account) != settled:
            raise ContractError(f"broker {name!r}: a refused cycle changed the account")
    finally:
        account.close()
    reopened = _open(broker, name, request)
    try:
        if _state(reopened) != settled:
            raise ContractError(f"broker {name!r}: the account reads back differently "
                                      f"after reopening; cycles must persist")
        history = reopened.history()
        if [r.day for r in history] != [day1, day2]:
            raise ContractError(f"broker {name!r}: history() lists days "
                                      f"{[r.day for r in history]}, expected {[day1, day2]}")
        return BrokerCheck(holdings=reopened.holdings(), history=history)
    finally:
        reopened.close()


def _expect_outcome(name: str, outcome: CycleOutcome, day: dt.date, *, already: bool) -> None:
    if not isinstance(outcome, CycleOutcome):
        raise ContractError(f"broker {name!r}: run_cycle returned "
                                  f"{type(outcome).__name__}, not ploutos_core.CycleOutcome")
    if outcome.record.day != day or outcome.already_recorded != already:
        raise ContractError(f"broker {name!r}: the cycle of {day} returned day "
                                  f"{outcome.record.day}, already_recorded="
                                  f"{outcome.already_recorded}; expected {day}, {already}")


def _expect_fill(name: str, outcome: CycleOutcome, order: Order, market: MarketCloses,
                 cost_rate: float) -> None:
    fills = outcome.record.fills
    price = float(market.close[1, 0])
    if len(fills) != 1 or fills[0].shares != order.shares or fills[0].price != price or \
            not np.isclose(fills[0].cost, price * abs(order.shares) * cost_rate):
        raise ContractError(f"broker {name!r}: the order {order} of {market.date(0)} "
                                  f"should fill once at the next close {price} with cost "
                                  f"{price * cost_rate:g}; the next cycle reports {fills}")
