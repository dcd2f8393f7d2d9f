"""Issue 12: the ``paper`` broker's SQLite ledger — idempotent per day, atomic per cycle,
one writer at a time, a corrupt ledger refused and never overwritten."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from ploutos_core import (
    BrokerBusyError,
    BrokerError,
    BrokerRequest,
    Holdings,
    Order,
)
from ploutos_core.testing import ContractError, check_broker
from ploutos_core.testing.brokers import check_market
from ploutos_plugins.paper_broker import PaperAccount, PaperBroker

TICKERS = ("AAA", "BBB")
MARKET = check_market(TICKERS)
DAYS = [MARKET.date(i) for i in range(5)]


def request(path: Path, **changes: Any) -> BrokerRequest:
    settings: dict[str, Any] = {"stage": "s", "tickers": TICKERS, "cost_bps": 10.0,
                                "location": path, "initial_cash": 10_000.0,
                                "lock_timeout": 5.0}
    settings.update(changes)
    return BrokerRequest(**settings)


def buy(ticker: str = "AAA", shares: float = 10.0) -> Any:
    return lambda holdings: [Order(ticker, shares, 100.0)]


def dump(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_paper_broker_passes_check_broker(tmp_path: Path) -> None:
    checked = check_broker(PaperBroker(), location=tmp_path / "ledger.sqlite")
    assert [r.day for r in checked.history] == DAYS[:2]
    assert checked.holdings.positions == {"AAA": 1.0}


def test_check_broker_catches_a_broker_that_records_a_day_twice(tmp_path: Path) -> None:
    class Forgetful(PaperAccount):
        def run_cycle(self, day, market, plan, details):  # type: ignore[no-untyped-def]
            plan(self.holdings())  # asks for orders again: not idempotent
            return super().run_cycle(day, market, plan, details)

    class ForgetfulBroker(PaperBroker):
        name = "forgetful"

        def open(self, request: BrokerRequest) -> Forgetful:
            return Forgetful(request)

    with pytest.raises(ContractError, match="asked for orders again"):
        check_broker(ForgetfulBroker(), location=tmp_path / "ledger.sqlite")


def test_orders_fill_at_the_next_close_with_the_stage_costs(tmp_path: Path) -> None:
    account = PaperBroker().open(request(tmp_path / "l.sqlite"))
    first = account.run_cycle(DAYS[0], MARKET, buy("AAA", 10), {"n": 1})
    assert first.record.holdings.cash == 10_000.0 and first.record.orders
    second = account.run_cycle(DAYS[1], MARKET, lambda h: [Order("AAA", -4.0, 101.0)], {})
    (fill,) = second.record.fills
    price = float(MARKET.close[1, 0])  # the close of the day after the order's
    assert (fill.order_day, fill.filled_on, fill.price) == (DAYS[0], DAYS[1], price)
    assert fill.cost == pytest.approx(10 * price * 0.001)
    holdings = second.record.holdings
    assert holdings.positions == {"AAA": 10.0}
    assert holdings.cash == pytest.approx(10_000.0 - 10 * price * 1.001)
    assert second.record.equity == pytest.approx(holdings.cash + 10 * price)
    third = account.run_cycle(DAYS[2], MARKET, lambda h: [], {})
    assert third.record.holdings.positions == {"AAA": 6.0}
    assert account.holdings().day == DAYS[2] and account.holdings().pending == ()
    assert len(account.fills()) == 2


def test_a_buy_beyond_the_cash_is_cut_and_sells_fill_first(tmp_path: Path) -> None:
    account = PaperBroker().open(request(tmp_path / "l.sqlite", initial_cash=1_000.0))
    account.run_cycle(DAYS[0], MARKET, buy("BBB", 50), {})
    (fill,) = account.run_cycle(DAYS[1], MARKET, lambda h: [], {}).record.fills
    assert fill.shares == 9.0 and "for want of cash" in fill.note  # 1000 / (111 × 1.001)
    assert account.holdings().cash >= 0
    # Switching BBB for AAA needs the sale's cash: the sell fills first, the buy in full.
    account.run_cycle(DAYS[2], MARKET, lambda h: [Order("AAA", 9.0, 102.0),
                                                  Order("BBB", -9.0, 112.0)], {})
    fills = account.run_cycle(DAYS[3], MARKET, lambda h: [], {}).record.fills
    assert [(f.ticker, f.shares, f.note) for f in fills] == [("BBB", -9.0, ""),
                                                             ("AAA", 9.0, "")]
    assert account.holdings().positions == {"AAA": 9.0} and account.holdings().cash >= 0


def test_the_same_day_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    account = PaperBroker().open(request(path))
    account.run_cycle(DAYS[0], MARKET, buy(), {"model": "a"})
    before = dump(path)

    def never(holdings: Holdings) -> list[Order]:
        raise AssertionError("a recorded day must not plan again")

    again = account.run_cycle(DAYS[0], MARKET, never, {"model": "b"})
    assert again.already_recorded and again.record.details == {"model": "a"}
    assert dump(path) == before


def test_a_cycle_that_fails_midway_leaves_the_ledger_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    account = PaperBroker().open(request(path))
    account.run_cycle(DAYS[0], MARKET, buy(), {})
    before = dump(path)

    def crash(holdings: Holdings) -> list[Order]:
        # Fills of DAYS[0]'s order are already written inside the transaction here.
        assert holdings.positions == {"AAA": 10.0}
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        account.run_cycle(DAYS[1], MARKET, crash, {})
    assert dump(path) == before
    assert account.holdings().pending == (Order("AAA", 10.0, 100.0),)


def test_cycles_run_in_date_order(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    account = PaperBroker().open(request(path))
    account.run_cycle(DAYS[2], MARKET, buy(), {})
    before = dump(path)
    with pytest.raises(BrokerError, match=f"already has the cycle of {DAYS[2]}, after "
                                          f"{DAYS[1]}"):
        account.run_cycle(DAYS[1], MARKET, buy(), {})
    assert dump(path) == before


def test_invalid_orders_are_refused_without_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    account = PaperBroker().open(request(path))
    account.run_cycle(DAYS[0], MARKET, lambda h: [], {})
    before = dump(path)
    for bad, message in ((Order("ZZZ", 1.0, 10.0), "does not trade"),
                         (Order("AAA", -1.0, 10.0), "more than the 0 held"),
                         (Order("AAA", float("nan"), 10.0), "must be finite")):
        with pytest.raises(BrokerError, match=message):
            account.run_cycle(DAYS[1], MARKET, lambda h, bad=bad: [bad], {})
    assert dump(path) == before


def test_a_second_process_waits_or_is_refused_and_nothing_is_doubled(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    inside, release = threading.Event(), threading.Event()
    outcomes: dict[str, Any] = {}

    def slow_plan(holdings: Holdings) -> list[Order]:
        inside.set()
        assert release.wait(10)
        return [Order("AAA", 5.0, 100.0)]

    def first() -> None:
        account = PaperBroker().open(request(path))
        outcomes["first"] = account.run_cycle(DAYS[0], MARKET, slow_plan, {"who": "first"})

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    impatient = PaperBroker().open(request(path, lock_timeout=0.2))
    with pytest.raises(BrokerBusyError, match="retry later") as caught:
        impatient.run_cycle(DAYS[0], MARKET, buy(), {"who": "impatient"})
    assert caught.value.exit_code == 75
    patient = PaperBroker().open(request(path, lock_timeout=10.0))
    waiter = threading.Thread(target=lambda: outcomes.__setitem__(
        "patient", patient.run_cycle(DAYS[0], MARKET, buy(), {"who": "patient"})))
    waiter.start()
    release.set()
    thread.join(10)
    waiter.join(10)
    # The two threads finish in either order; what matters is who recorded the day.
    assert {who: o.already_recorded for who, o in outcomes.items()} == {
        "first": False, "patient": True}
    assert patient.history()[0].details == {"who": "first"}
    assert patient.holdings().pending == (Order("AAA", 5.0, 100.0),)


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "not an SQLite database"),
    (b"name,shares\nAAA,1\n", "not an SQLite database"),
    (b"SQLite format 3\x00" + b"\xff" * 200, "corrupt"),
])
def test_a_corrupt_ledger_is_refused_and_never_overwritten(tmp_path: Path, content: bytes,
                                                           problem: str) -> None:
    path = tmp_path / "l.sqlite"
    path.write_bytes(content)
    with pytest.raises(BrokerError, match=rf"is not a usable paper ledger \({problem}"):
        PaperBroker().open(request(path)).run_cycle(DAYS[0], MARKET, buy(), {})
    assert path.read_bytes() == content


def test_other_databases_and_other_stages_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = digest(other)
    with pytest.raises(BrokerError, match="another application"):
        PaperBroker().open(request(other))
    assert digest(other) == before
    ledger = tmp_path / "l.sqlite"
    PaperBroker().open(request(ledger)).run_cycle(DAYS[0], MARKET, buy(), {})
    before = digest(ledger)
    with pytest.raises(BrokerError, match="is the paper ledger of stage 's'"):
        PaperBroker().open(request(ledger, stage="t"))
    with pytest.raises(BrokerError, match=r"\(AAA,BBB\), not of 's' \(AAA\)"):
        PaperBroker().open(request(ledger, tickers=("AAA",)))
    assert digest(ledger) == before


def test_opening_and_reading_never_create_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "l.sqlite"
    account = PaperBroker().open(request(path))
    assert account.holdings() == Holdings(cash=10_000.0) and account.history() == []
    assert not path.exists() and not path.parent.exists()
    with pytest.raises(BrokerError, match="no close on 2024-01-01"):
        account.run_cycle(dt.date(2024, 1, 1), MARKET, buy(), {})
    assert not path.exists()


def test_a_locked_ledger_is_busy_not_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    PaperBroker().open(request(path)).run_cycle(DAYS[0], MARKET, buy(), {})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a cycle committing: nobody may even read
    try:
        with pytest.raises(BrokerBusyError, match="retry later"):
            PaperBroker().open(request(path, lock_timeout=0.1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert PaperBroker().open(request(path)).holdings().day == DAYS[0]
