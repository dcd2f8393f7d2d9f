"""Built-in ``paper`` broker: a simulated account kept in one SQLite ledger file.

Orders submitted in the cycle of trading day *t* fill at the close of the next
trading day, at the stage's transaction cost, and are settled by the next cycle
(sells before buys; a buy larger than the cash is cut to what the cash pays for).
The ledger holds every cycle (the audit trail), order, fill, position and the cash.

* **Idempotent per trading day**: a cycle whose day is recorded changes nothing.
* **Atomic per cycle**: one SQLite transaction, begun with ``BEGIN IMMEDIATE``; a
  crash or ``kill -9`` leaves the ledger as it was before the cycle or after it.
* **One writer**: a second process waits up to ``lock_timeout`` seconds for the
  first, then sees the day recorded; past the timeout it is refused
  (:class:`~ploutos_core.BrokerBusyError`). Nothing is ever doubled.
* **A corrupt ledger is refused, never overwritten**: a file that is not a Ploutos
  ledger, fails SQLite's integrity check or belongs to another stage is left as it is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ploutos_core import (
    Broker,
    BrokerAccount,
    BrokerBusyError,
    BrokerError,
    BrokerRequest,
    CycleOutcome,
    CycleRecord,
    Fill,
    Holdings,
    MarketCloses,
    Order,
    OrderPlanner,
    Registrar,
    hookimpl,
)

#: ``PRAGMA application_id`` of a Ploutos ledger ("PLTS"), and the schema version.
APPLICATION_ID = 0x504C5453
SCHEMA_VERSION = 1
_SQLITE_HEADER = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cycles (
    day TEXT PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    cash REAL NOT NULL,
    positions TEXT NOT NULL,
    equity REAL NOT NULL,
    details TEXT NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL REFERENCES cycles(day),
    ticker TEXT NOT NULL,
    shares REAL NOT NULL CHECK (shares != 0),
    reference_price REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'filled', 'cancelled'))
);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL UNIQUE REFERENCES orders(id),
    settled_in TEXT NOT NULL REFERENCES cycles(day) DEFERRABLE INITIALLY DEFERRED,
    order_day TEXT NOT NULL,
    filled_on TEXT NOT NULL,
    ticker TEXT NOT NULL,
    shares REAL NOT NULL,
    price REAL NOT NULL,
    cost REAL NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE positions (ticker TEXT PRIMARY KEY, shares REAL NOT NULL CHECK (shares >= 0));
CREATE TABLE cash (id INTEGER PRIMARY KEY CHECK (id = 1), amount REAL NOT NULL);
"""
TABLES = ("meta", "cycles", "orders", "fills", "positions", "cash")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class PaperAccount(BrokerAccount):
    """One paper ledger (a SQLite file).

    :param request: the stage, its tickers and costs, the ledger path, the initial cash.
    """

    def __init__(self, request: BrokerRequest) -> None:
        if request.location is None:
            raise BrokerError("the paper broker needs a ledger file: pass --ledger PATH or "
                              "--out DIR")
        self.request = request
        self.path = Path(request.location)
        if self.path.exists():
            self._check(self.path)

    # --- opening and checking ---------------------------------------------------------

    def _refuse(self, problem: str) -> BrokerError:
        return BrokerError(f"{self.path} is not a usable paper ledger ({problem}); it is left "
                           f"untouched: move it away or pass another --ledger")

    def _busy(self) -> BrokerBusyError:
        return BrokerBusyError(
            f"another process has held the paper ledger {self.path} for more than "
            f"{self.request.lock_timeout:g} s (a cycle is running); nothing was changed: "
            f"retry later")

    def _check(self, path: Path) -> None:
        """Refuse, without writing, a file that is not a healthy ledger of this stage."""
        if path.is_dir():
            raise self._refuse("it is a directory")
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise self._refuse(f"cannot read it: {exc}") from exc
        if header != _SQLITE_HEADER:
            raise self._refuse("not an SQLite database")
        try:
            with contextlib.closing(self._raw_connect()) as conn:
                application_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if application_id != APPLICATION_ID:
                    raise self._refuse("an SQLite database of another application")
                if version != SCHEMA_VERSION:
                    raise self._refuse(f"schema version {version}; this Ploutos reads "
                                       f"version {SCHEMA_VERSION}")
                found = {row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                missing = [t for t in TABLES if t not in found]
                if missing:
                    raise self._refuse(f"missing table(s) {', '.join(missing)}")
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise self._refuse(f"integrity check failed: {verdict}")
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise self._busy() from exc
            raise self._refuse(f"corrupt: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise self._refuse(f"corrupt: {exc}") from exc
        stage, tickers = meta.get("stage"), json.loads(meta.get("tickers", "[]"))
        if stage != self.request.stage or tuple(tickers) != self.request.tickers:
            raise BrokerError(f"{self.path} is the paper ledger of stage {stage!r} "
                              f"({','.join(tickers)}), not of {self.request.stage!r} "
                              f"({','.join(self.request.tickers)}); pass another --ledger")

    def _raw_connect(self) -> sqlite3.Connection:
        # mode=rw never creates a file (a ledger appears only through _create), and lets
        # SQLite roll back the journal a killed cycle left (read-only connections cannot).
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                               timeout=max(self.request.lock_timeout, 0.0),
                               isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _create(self) -> None:
        """Create the ledger atomically: build it beside the target, then link it into
        place, so no process ever sees a half-made ledger (and two creators make one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        tmp.unlink(missing_ok=True)
        try:
            with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("BEGIN")
                for statement in SCHEMA.strip().split(";"):
                    if statement.strip():
                        conn.execute(statement)
                request = self.request
                meta = {"broker": "paper", "stage": request.stage,
                        "tickers": json.dumps(list(request.tickers)),
                        "cost_bps": repr(request.cost_bps),
                        "initial_cash": repr(request.initial_cash), "created_at": _now()}
                conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
                conn.execute("INSERT INTO cash VALUES (1, ?)", (request.initial_cash,))
                conn.execute("COMMIT")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self._check(self.path)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        self._check(self.path)
        with contextlib.closing(self._raw_connect()) as conn:
            try:
                conn.execute("BEGIN")  # one consistent snapshot for the whole read
                conn.execute("SELECT COUNT(*) FROM meta").fetchone()  # takes the read lock
            except sqlite3.OperationalError as exc:
                raise self._busy() from exc
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # --- reading --------------------------------------------------------------------

    def holdings(self) -> Holdings:
        """Cash, positions and pending orders now (the initial cash before any cycle)."""
        with self._reading() as conn:
            if conn is None:
                return Holdings(cash=self.request.initial_cash)
            return _holdings(conn)

    def history(self) -> list[CycleRecord]:
        """Every cycle, oldest first."""
        with self._reading() as conn:
            if conn is None:
                return []
            return [_record(conn, row) for row in conn.execute(
                "SELECT day, recorded_at, cash, positions, equity, details FROM cycles "
                "ORDER BY day")]

    def meta(self) -> dict[str, str]:
        """The ledger's settings (stage, tickers, cost, initial cash, creation time)."""
        with self._reading() as conn:
            if conn is None:
                return {}
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    # --- the cycle ------------------------------------------------------------------

    def run_cycle(self, day: dt.date, market: MarketCloses, plan: OrderPlanner,
                  details: Mapping[str, Any]) -> CycleOutcome:
        """Settle earlier orders, plan and submit the day's orders, record the cycle: one
        transaction, at most once per ``day``."""
        if market.row(day) is None:
            raise BrokerError(f"the market data handed to the paper broker have no close on "
                              f"{day}; a cycle needs the day's closes")
        if not self.path.exists():
            self._create()
        self._check(self.path)
        with contextlib.closing(self._raw_connect()) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._busy() from exc
            try:
                outcome = self._cycle(conn, day, market, plan, details)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if outcome.already_recorded:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
            return outcome

    def _cycle(self, conn: sqlite3.Connection, day: dt.date, market: MarketCloses,
               plan: OrderPlanner, details: Mapping[str, Any]) -> CycleOutcome:
        key = day.isoformat()
        row = conn.execute("SELECT day, recorded_at, cash, positions, equity, details FROM "
                           "cycles WHERE day = ?", (key,)).fetchone()
        if row is not None:
            return CycleOutcome(record=_record(conn, row), already_recorded=True)
        latest = conn.execute("SELECT MAX(day) FROM cycles").fetchone()[0]
        if latest is not None and latest > key:
            raise BrokerError(f"the paper ledger {self.path} already has the cycle of {latest}, "
                              f"after {key}; cycles run in date order (nothing was changed)")
        fills = self._settle(conn, day, market)
        holdings = _holdings(conn)
        orders = [self._checked(order, holdings) for order in plan(holdings)]
        prices = market.prices(market.row(day) or 0)
        equity = holdings.value(prices)
        recorded_at = _now()
        conn.execute("INSERT INTO cycles VALUES (?, ?, ?, ?, ?, ?)",
                     (key, recorded_at, holdings.cash,
                      json.dumps(dict(holdings.positions), sort_keys=True), equity,
                      json.dumps(dict(details), sort_keys=True, default=str)))
        conn.executemany("INSERT INTO orders (day, ticker, shares, reference_price, status) "
                         "VALUES (?, ?, ?, ?, 'pending')",
                         [(key, o.ticker, o.shares, o.reference_price) for o in orders])
        submitted = Holdings(cash=holdings.cash, positions=holdings.positions, day=day,
                             pending=tuple(orders))
        record = CycleRecord(day=day, recorded_at=recorded_at, holdings=submitted,
                             equity=equity, orders=tuple(orders),
                             fills=tuple(fills), details=dict(details))
        return CycleOutcome(record=record)

    def _checked(self, order: Order, holdings: Holdings) -> Order:
        if order.ticker not in self.request.tickers:
            raise BrokerError(f"an order names {order.ticker!r}, which stage "
                              f"{self.request.stage!r} does not trade")
        if not (math.isfinite(order.shares) and order.shares != 0
                and math.isfinite(order.reference_price) and order.reference_price > 0):
            raise BrokerError(f"invalid order {order}: shares must be finite and non-zero, "
                              f"the reference price positive")
        if order.shares < 0 and -order.shares > holdings.positions.get(order.ticker, 0.0) + 1e-9:
            raise BrokerError(f"an order sells {-order.shares:g} {order.ticker}, more than the "
                              f"{holdings.positions.get(order.ticker, 0.0):g} held (long-only)")
        return order

    def _settle(self, conn: sqlite3.Connection, day: dt.date, market: MarketCloses
                ) -> list[Fill]:
        """Fill pending orders at the close of the first trading day after their own, when
        that close is known; sells first, then buys within the cash."""
        rate = float(self._meta(conn).get("cost_bps", "0")) / 10_000
        pending = conn.execute("SELECT id, day, ticker, shares, reference_price FROM orders "
                               "WHERE status = 'pending' ORDER BY day, shares, id").fetchall()
        cash = float(conn.execute("SELECT amount FROM cash WHERE id = 1").fetchone()[0])
        positions = dict(conn.execute("SELECT ticker, shares FROM positions").fetchall())
        fills: list[Fill] = []
        for order_id, order_day, ticker, shares, _ in pending:  # sells (negative) first
            row = market.first_after(dt.date.fromisoformat(order_day))
            if row is None or market.date(row) > day:
                continue
            price = float(market.close[row, market.tickers.index(ticker)])
            note, executed = "", float(shares)
            if executed < 0:
                held = positions.get(ticker, 0.0)
                if -executed > held:
                    executed, note = -held, f"cut from {shares:g}: only {held:g} held"
            else:
                affordable = cash / (price * (1.0 + rate))
                if executed > affordable:
                    cut = math.floor(affordable) if float(shares).is_integer() else affordable
                    executed, note = float(max(cut, 0.0)), (f"cut from {shares:g} for want of cash "
                                                      f"({cash:.2f})")
            if executed == 0:
                conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (order_id,))
                continue
            cost = abs(executed) * price * rate
            cash -= executed * price + cost
            positions[ticker] = positions.get(ticker, 0.0) + executed
            fill = Fill(order_day=dt.date.fromisoformat(order_day),
                        filled_on=market.date(row), ticker=ticker, shares=executed,
                        price=price, cost=cost, note=note)
            conn.execute(
                "INSERT INTO fills (order_id, settled_in, order_day, filled_on, ticker, "
                "shares, price, cost, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (order_id, day.isoformat(), order_day, fill.filled_on.isoformat(), ticker,
                 executed, price, cost, note))
            conn.execute("UPDATE orders SET status = 'filled' WHERE id = ?", (order_id,))
            fills.append(fill)
        conn.execute("UPDATE cash SET amount = ? WHERE id = 1", (cash,))
        conn.execute("DELETE FROM positions")
        conn.executemany("INSERT INTO positions VALUES (?, ?)",
                         [(t, max(s, 0.0)) for t, s in sorted(positions.items()) if s > 1e-12])
        return fills

    @staticmethod
    def _meta(conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite gave up waiting for another connection's lock."""
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _holdings(conn: sqlite3.Connection) -> Holdings:
    cash = float(conn.execute("SELECT amount FROM cash WHERE id = 1").fetchone()[0])
    positions = dict(conn.execute("SELECT ticker, shares FROM positions ORDER BY ticker"))
    latest = conn.execute("SELECT MAX(day) FROM cycles").fetchone()[0]
    pending = tuple(Order(ticker=t, shares=s, reference_price=p) for t, s, p in conn.execute(
        "SELECT ticker, shares, reference_price FROM orders WHERE status = 'pending' "
        "ORDER BY id"))
    return Holdings(cash=cash, positions=positions,
                    day=dt.date.fromisoformat(latest) if latest else None, pending=pending)


def _record(conn: sqlite3.Connection, row: tuple[Any, ...]) -> CycleRecord:
    day, recorded_at, cash, positions, equity, details = row
    orders = tuple(Order(ticker=t, shares=s, reference_price=p) for t, s, p in conn.execute(
        "SELECT ticker, shares, reference_price FROM orders WHERE day = ? ORDER BY id", (day,)))
    fills = tuple(
        Fill(order_day=dt.date.fromisoformat(od), filled_on=dt.date.fromisoformat(fo),
             ticker=t, shares=s, price=p, cost=c, note=n)
        for od, fo, t, s, p, c, n in conn.execute(
            "SELECT order_day, filled_on, ticker, shares, price, cost, note FROM fills "
            "WHERE settled_in = ? ORDER BY id", (day,)))
    holdings = Holdings(cash=cash, positions=json.loads(positions),
                        day=dt.date.fromisoformat(day), pending=orders)
    return CycleRecord(day=dt.date.fromisoformat(day), recorded_at=recorded_at,
                       holdings=holdings, equity=equity, orders=orders, fills=fills,
                       details=json.loads(details))


class PaperBroker(Broker):
    """Simulated fills at the next close, kept in a SQLite ledger (no network, no money)."""

    name = "paper"
    description = ("simulated account in one SQLite ledger: fills at the next close with the "
                   "stage's costs; idempotent per day, atomic per cycle")

    def open(self, request: BrokerRequest) -> PaperAccount:
        """The ledger at ``request.location`` (created by the first cycle)."""
        return PaperAccount(request)


@hookimpl
def ploutos_register_brokers(register: Registrar[Broker]) -> None:
    """Register the paper broker."""
    register(PaperBroker())
