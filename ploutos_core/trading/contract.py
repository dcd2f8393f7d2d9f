"""The broker contract: an account that holds cash and shares and runs one cycle per trading day.

A plugin registers a :class:`Broker` (``ploutos_register_brokers``); ``ploutos trade``
opens one :class:`BrokerAccount` per ledger or account and, once per trading day,
calls :meth:`BrokerAccount.run_cycle`. The broker owns the cycle's transaction: it
settles the fills of earlier orders, hands the resulting :class:`Holdings` to the
core's order planner, submits the orders it returns for the next session and
records the cycle, all or nothing, at most once per trading day (the idempotency
key). docs/brokers.md shows how the built-in ``paper`` broker, Alpaca and
Interactive Brokers map onto it.

Shares are signed in orders and fills (positive: buy, negative: sell); positions are
never negative (long-only, like the environment).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray


def _positions(value: Mapping[str, float]) -> dict[str, float]:
    return {str(ticker): float(shares) for ticker, shares in dict(value).items()}


@attrs.frozen
class BrokerRequest:
    """Which account to open, and what the core knows about the stage it trades.

    :param stage: the stage traded.
    :param tickers: the stage's tickers; orders name only these.
    :param cost_bps: the stage's transaction cost in basis points of traded value (what a
        simulated broker charges; a real broker charges its own).
    :param location: where the account's state lives (the ``paper`` broker's SQLite
        ledger); brokers that keep state elsewhere ignore it.
    :param initial_cash: cash of a new simulated account.
    :param lock_timeout: seconds to wait for another process's cycle on the same account
        before refusing with :class:`~ploutos_core.errors.BrokerBusyError`.
    :param options: broker-specific settings (``--broker-option KEY=VALUE``), e.g. an
        account id; never credentials (brokers read those from the environment).
    """

    stage: str
    tickers: tuple[str, ...]
    cost_bps: float = 0.0
    location: Path | None = None
    initial_cash: float = 100_000.0
    lock_timeout: float = 10.0
    options: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def cost_rate(self) -> float:
        """The cost as a fraction of traded value (10 bps → 0.001)."""
        return self.cost_bps / 10_000


@attrs.frozen
class Order:
    """An order for the next session, sized at the as-of close.

    :param ticker: one of the stage's tickers.
    :param shares: shares to trade; positive buys, negative sells.
    :param reference_price: the close the order was sized at (fills may differ).
    """

    ticker: str
    shares: float
    reference_price: float

    @property
    def side(self) -> str:
        """``buy`` or ``sell``."""
        return "buy" if self.shares > 0 else "sell"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready order."""
        return {"ticker": self.ticker, "side": self.side, "shares": self.shares,
                "reference_price": self.reference_price,
                "notional": abs(self.shares) * self.reference_price}


@attrs.frozen
class Fill:
    """An executed order.

    :param order_day: the trading day whose cycle submitted the order.
    :param filled_on: the session at whose close it filled.
    :param ticker: the ticker.
    :param shares: shares traded (signed; a buy cut for want of cash has fewer).
    :param price: the fill price.
    :param cost: commission and costs paid, in cash.
    :param note: why a fill differs from its order, if it does.
    """

    order_day: dt.date
    filled_on: dt.date
    ticker: str
    shares: float
    price: float
    cost: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fill."""
        return {"order_day": self.order_day.isoformat(), "filled_on": self.filled_on.isoformat(),
                "ticker": self.ticker, "shares": self.shares, "price": self.price,
                "cost": self.cost, "note": self.note}


@attrs.frozen
class Holdings:
    """Cash and positions of an account.

    :param cash: cash, in the account's currency.
    :param positions: shares held per ticker (never negative).
    :param day: the trading day of the last recorded cycle (``None``: none yet).
    :param pending: orders submitted and not yet filled.
    """

    cash: float
    positions: Mapping[str, float] = attrs.field(factory=dict, converter=_positions)
    day: dt.date | None = None
    pending: tuple[Order, ...] = ()

    def value(self, prices: Mapping[str, float]) -> float:
        """Cash plus every position at ``prices``.

        :raises KeyError: for a position without a price.
        """
        return self.cash + sum(shares * prices[ticker]
                               for ticker, shares in self.positions.items() if shares)

    def weights(self, tickers: Sequence[str], prices: Mapping[str, float]
                ) -> NDArray[np.float64]:
        """``(len(tickers) + 1,)`` weights at ``prices``, cash last (the environment's layout).

        :raises ValueError: when the account is worth nothing.
        """
        total = self.value(prices)
        if not total > 0:
            raise ValueError(f"the account is worth {total:.2f}; nothing to weigh")
        held = [self.positions.get(t, 0.0) * prices[t] for t in tickers]
        return np.array([*held, self.cash], dtype=np.float64) / total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready holdings."""
        return {"cash": self.cash, "positions": dict(self.positions),
                "day": self.day.isoformat() if self.day else None,
                "pending": [order.to_dict() for order in self.pending]}


@attrs.frozen(eq=False)
class MarketCloses:
    """Daily closes the core hands a broker: simulated brokers fill at them, every broker
    may use them to value positions.

    :param dates: trading days, strictly increasing (``datetime64[D]``).
    :param tickers: column order of ``close``.
    :param close: ``(n_days, n_tickers)`` closes, adjusted for splits.
    """

    dates: NDArray[np.datetime64]
    tickers: tuple[str, ...]
    close: NDArray[np.float64]

    def row(self, day: dt.date) -> int | None:
        """The row of ``day``, or ``None`` when it is not a trading day of the data."""
        stamp = np.datetime64(day, "D")
        index = int(np.searchsorted(self.dates, stamp))
        return index if index < len(self.dates) and self.dates[index] == stamp else None

    def first_after(self, day: dt.date) -> int | None:
        """The row of the first trading day after ``day``, or ``None`` when the data end
        before it."""
        index = int(np.searchsorted(self.dates, np.datetime64(day, "D"), "right"))
        return index if index < len(self.dates) else None

    def date(self, row: int) -> dt.date:
        """The calendar date of ``row``."""
        return self.dates[row].astype("datetime64[D]").astype(dt.date)  # type: ignore[no-any-return]

    def prices(self, row: int) -> dict[str, float]:
        """Closes of ``row`` by ticker."""
        return {t: float(p) for t, p in zip(self.tickers, self.close[row], strict=True)}


@attrs.frozen
class CycleRecord:
    """One recorded cycle: the audit trail of a trading day.

    :param day: the trading day (the idempotency key).
    :param recorded_at: when it was recorded (ISO 8601, UTC).
    :param holdings: cash and positions after settling earlier orders, before this
        cycle's orders fill (``pending`` holds them).
    :param equity: ``holdings`` valued at the day's close.
    :param orders: the orders submitted for the next session.
    :param fills: fills of earlier orders settled in this cycle.
    :param details: what the core asked the broker to record (model, data fingerprint,
        target weights …).
    """

    day: dt.date
    recorded_at: str
    holdings: Holdings
    equity: float
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    details: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def costs(self) -> float:
        """Costs of the fills settled in this cycle."""
        return sum(fill.cost for fill in self.fills)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {"day": self.day.isoformat(), "recorded_at": self.recorded_at,
                "holdings": self.holdings.to_dict(), "equity": self.equity,
                "orders": [o.to_dict() for o in self.orders],
                "fills": [f.to_dict() for f in self.fills], "costs": self.costs,
                "details": dict(self.details)}


@attrs.frozen
class CycleOutcome:
    """What :meth:`BrokerAccount.run_cycle` did.

    :param record: the day's cycle (the earlier one when it was already recorded).
    :param already_recorded: ``True`` when the day had a cycle: nothing changed.
    """

    record: CycleRecord
    already_recorded: bool = False


#: ``plan(holdings)`` → the orders to submit; called by the broker inside its cycle.
OrderPlanner = Callable[[Holdings], Sequence[Order]]


class BrokerAccount(abc.ABC):
    """One open account of a broker (the ``paper`` broker: one ledger file)."""

    @abc.abstractmethod
    def holdings(self) -> Holdings:
        """Cash, positions and pending orders now (a new account: its initial cash).

        Reading never changes the account.
        """

    @abc.abstractmethod
    def run_cycle(self, day: dt.date, market: MarketCloses, plan: OrderPlanner,
                  details: Mapping[str, Any]) -> CycleOutcome:
        """Run the cycle of trading day ``day``, all or nothing, at most once.

        In one transaction: when ``day`` already has a cycle, return it with
        ``already_recorded=True`` without calling ``plan`` (nothing changes); when a
        later day has one, raise :class:`~ploutos_core.errors.BrokerError`; otherwise
        settle the fills of earlier orders (a simulated broker fills them at
        ``market``'s closes), call ``plan`` with the holdings after those fills, submit
        the orders it returns for the next session and record the cycle with
        ``details``. An exception (from ``plan`` or a crash) leaves the account as it
        was before the call.

        :param day: the trading day the orders were decided at (its close is known).
        :param market: closes through ``day``.
        :param plan: the core's order planner.
        :param details: JSON-ready facts to keep with the cycle (the audit trail).
        :raises BrokerBusyError: when another process holds the account longer than
            the request's ``lock_timeout``.
        :raises BrokerError: for a refused cycle or an unusable account.
        """

    @abc.abstractmethod
    def history(self) -> list[CycleRecord]:
        """Every recorded cycle, oldest first."""

    def fills(self) -> list[Fill]:
        """Every fill, oldest first (default: gathered from :meth:`history`)."""
        return [fill for record in self.history() for fill in record.fills]

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections and locks."""


class Broker(abc.ABC):
    """A named kind of brokerage account, registered by a plugin (``--broker NAME``)."""

    #: registered name, used by ``--broker``.
    name: str = ""
    #: one line for listings.
    description: str = ""

    @abc.abstractmethod
    def open(self, request: BrokerRequest) -> BrokerAccount:
        """Open the account ``request`` describes.

        Opening never writes: a simulated broker creates its ledger when the first
        cycle runs, so inputs refused before a cycle leave no file behind.

        :raises BrokerError: when the account cannot be used (a corrupt ledger is
            refused and left untouched).
        """
