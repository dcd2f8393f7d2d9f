"""Issue 12: ``ploutos trade`` (one daily cycle on the paper ledger) and ``trade status``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ploutos
from ploutos_core import Registry
from tests.trading_helpers import save_probe_model, trading_pm, trading_stage, write_csv_prices

STAGE = trading_stage()
WIDE = trading_stage("wide", tickers=("AAA", "BBB", "CCC"))
DAYS = ("2013-06-25", "2013-06-26", "2013-06-27", "2013-06-28")


@pytest.fixture
def trade_pm() -> Any:
    return trading_pm(STAGE, WIDE)


@pytest.fixture
def model(tmp_path: Path, trade_pm: Any) -> Path:
    return save_probe_model(Registry(trade_pm), STAGE, tmp_path / "models" / "trader.zip")


def ledger_dump(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def trade_args(model: Path, out: Path, day: str, *extra: str) -> list[str]:
    return ["trade", "--model", str(model), "--as-of", day, "--source", "synthetic",
            "--out", str(out), *extra]


def test_daily_cycles_fill_at_the_next_close_and_a_day_runs_once(
        model: Path, trade_pm: Any, run_cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "live"
    for day in DAYS:
        result = run_cli(*trade_args(model, out, day), pm=trade_pm)
        assert result.code == 0, result
        assert f"cycle of {day} recorded" in result.out
    ledger = out / "trading" / "trader" / "paper.sqlite"
    assert (out / "trading" / "trader" / "paper_cycles" / f"{DAYS[-1]}.json").is_file()
    before = ledger_dump(ledger)
    again = run_cli(*trade_args(model, out, DAYS[-1]), pm=trade_pm)
    assert again.code == 0 and "already recorded" in again.out and "nothing changed" in again.out
    assert ledger_dump(ledger) == before
    history = ploutos.trade_status("trader", out_dir=out, source="synthetic",
                                   registry=Registry(trade_pm), write=False)
    assert [d.isoformat() for d in history.days] == list(DAYS)
    # The first cycle's orders filled at the second day's close.
    snapshot = json.loads((out / "trading" / "trader" / "paper_cycles" /
                           f"{DAYS[1]}.json").read_text())
    fills = snapshot["record"]["fills"]
    assert fills and {f["filled_on"] for f in fills} == {DAYS[1]}
    assert {f["order_day"] for f in fills} == {DAYS[0]}
    assert snapshot["signal"]["as_of"] == DAYS[1] and snapshot["plan"]["orders"] is not None
    # The account is traded toward the model's smoothed target under the turnover rule.
    first = json.loads((out / "trading" / "trader" / "paper_cycles" /
                        f"{DAYS[0]}.json").read_text())
    assert first["plan"]["weights_before"]["cash"] == 1.0
    target = [first["signal"]["target"][k] for k in ("AAA", "BBB", "cash")]
    after = [first["plan"]["weights_after"][k] for k in ("AAA", "BBB", "cash")]
    np.testing.assert_allclose(after, target)


def test_trade_status_compares_the_account_with_the_baselines(
        model: Path, trade_pm: Any, run_cli: Any, tmp_path: Path) -> None:
    for day in DAYS:
        assert run_cli(*trade_args(model, tmp_path, day), pm=trade_pm).code == 0
    result = run_cli("trade", "status", "--stage", "trader", "--out", str(tmp_path),
                     "--source", "synthetic", pm=trade_pm)
    assert result.code == 0, result
    assert f"4 cycles {DAYS[0]}…{DAYS[-1]}" in result.out
    assert "equal_weight_rebalanced" in result.out and "costs paid" in result.out
    directory = tmp_path / "trading" / "trader"
    payload = json.loads((directory / "paper_status.json").read_text())
    assert (directory / "paper_status.png").stat().st_size > 1000
    assert payload["days"] == list(DAYS) and payload["cycles"] == 4
    baselines = payload["baselines"]
    assert {"cash", "equal_weight_rebalanced", "buy_and_hold_AAA"} <= set(baselines)
    for values in baselines.values():  # every baseline starts with the account's cash
        assert values["equity"][0] == pytest.approx(100_000.0)
    assert baselines["cash"]["total_return"] == 0.0
    assert payload["account"]["costs_paid"] > 0 and payload["holdings"]["positions"]
    as_json = json.loads(run_cli("trade", "status", "--stage", "trader", "--out",
                                 str(tmp_path), "--source", "synthetic", "--json",
                                 pm=trade_pm).out)
    assert as_json["account"]["equity"] == payload["account"]["equity"]


def test_bad_inputs_change_nothing(model: Path, trade_pm: Any, run_cli: Any,
                                   tmp_path: Path) -> None:
    ledger = tmp_path / "trading" / "trader" / "paper.sqlite"
    # Refused before a ledger exists: no file is created.
    prices = write_csv_prices(tmp_path / "prices", STAGE.tickers, "2013-06-21")
    cases = [
        (["trade", "--model", str(model), "--as-of", DAYS[0], "--source", "csv",
          "--data-dir", str(prices), "--out", str(tmp_path)], "are from 2013-06-21"),
        (trade_args(tmp_path / "missing", tmp_path, DAYS[0], "--stage", "trader"),
         "no model file"),
        (trade_args(model, tmp_path, DAYS[0], "--stage", "wide"), "observations of shape"),
        (trade_args(model, tmp_path, DAYS[0], "--broker", "alpaca"), "unknown broker 'alpaca'"),
    ]
    for args, message in cases:
        result = run_cli(*args, pm=trade_pm)
        assert result.code == 1 and message in result.err, result
        assert not ledger.exists() and not (tmp_path / "trading" / "wide").exists()
    assert run_cli(*trade_args(model, tmp_path, DAYS[1]), pm=trade_pm).code == 0
    before = ledger_dump(ledger)
    for args, message in [*cases[:3], (trade_args(model, tmp_path, DAYS[0]),
                                       "cycles run in date order")]:
        result = run_cli(*args, pm=trade_pm)
        assert result.code == 1 and message in result.err, result
        assert ledger_dump(ledger) == before
    # A corrupt ledger is refused and left byte for byte as it was.
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"SQLite format 3\x00" + os.urandom(500))
    content = broken.read_bytes()
    result = run_cli(*trade_args(model, tmp_path, DAYS[2], "--ledger", str(broken)),
                     pm=trade_pm)
    assert result.code == 1 and "is not a usable paper ledger" in result.err
    assert "left untouched" in result.err and broken.read_bytes() == content


def test_a_busy_ledger_exits_75_and_changes_nothing(model: Path, trade_pm: Any, run_cli: Any,
                                                    tmp_path: Path) -> None:
    assert run_cli(*trade_args(model, tmp_path, DAYS[0]), pm=trade_pm).code == 0
    ledger = tmp_path / "trading" / "trader" / "paper.sqlite"
    before = ledger_dump(ledger)
    holder = sqlite3.connect(ledger, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another cycle in progress
    try:
        result = run_cli(*trade_args(model, tmp_path, DAYS[1], "--lock-timeout", "0.2"),
                         pm=trade_pm)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.code == 75 and "retry later" in result.err, result
    assert ledger_dump(ledger) == before
    assert run_cli(*trade_args(model, tmp_path, DAYS[1]), pm=trade_pm).code == 0


def test_trade_json_and_ledger_option(model: Path, trade_pm: Any, run_cli: Any,
                                      tmp_path: Path) -> None:
    ledger = tmp_path / "elsewhere" / "account.sqlite"
    result = run_cli(*trade_args(model, tmp_path, DAYS[0], "--ledger", str(ledger), "--json",
                                 "--initial-cash", "5000"), pm=trade_pm)
    assert result.code == 0, result
    payload = json.loads(result.out)
    assert payload["recorded"] is True and payload["ledger"] == str(ledger)
    assert payload["record"]["holdings"]["cash"] == 5000.0
    assert (tmp_path / "elsewhere" / "account_cycles" / f"{DAYS[0]}.json").is_file()
    signal_with_broker = run_cli("signal", str(model), "--as-of", DAYS[0], "--source",
                                 "synthetic", "--broker", "paper", "--ledger", str(ledger),
                                 "--json", pm=trade_pm)
    assert json.loads(signal_with_broker.out)["holdings"]["cash"] == 5000.0
    assert payload["record"]["orders"]  # the first cycle bought: its orders are pending
    as_text = run_cli("signal", str(model), "--as-of", DAYS[0], "--source", "synthetic",
                      "--broker", "paper", "--ledger", str(ledger), pm=trade_pm)
    assert f"orders of {DAYS[0]} are still pending" in as_text.out
    assert run_cli("trade", pm=trade_pm).code == 2  # neither --model nor a subcommand


DRILL = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ploutos_core import BrokerRequest, Order
    from ploutos_core.testing.brokers import check_market
    from ploutos_plugins.paper_broker import PaperBroker

    market = check_market(("AAA", "BBB"))
    request = BrokerRequest(stage="s", tickers=("AAA", "BBB"), cost_bps=10.0,
                            location=Path(sys.argv[1]), initial_cash=10000.0)
    account = PaperBroker().open(request)
    day = market.date(int(sys.argv[2]))

    def plan(holdings):
        print("inside", flush=True)
        time.sleep(60)   # killed here, with the fills of the day already written
        return [Order("BBB", 3.0, 110.0)]

    account.run_cycle(day, market, plan, {"drill": True})
""")


@pytest.mark.slow
def test_kill_9_mid_cycle_leaves_the_ledger_before_the_cycle(tmp_path: Path) -> None:
    from ploutos_core import BrokerRequest, Order
    from ploutos_core.testing.brokers import check_market
    from ploutos_plugins.paper_broker import PaperBroker

    ledger = tmp_path / "l.sqlite"
    market = check_market(("AAA", "BBB"))
    request = BrokerRequest(stage="s", tickers=("AAA", "BBB"), cost_bps=10.0,
                            location=ledger, initial_cash=10_000.0)
    PaperBroker().open(request).run_cycle(market.date(0), market,
                                          lambda h: [Order("AAA", 10.0, 100.0)], {})
    before = ledger_dump(ledger)
    script = tmp_path / "drill.py"
    script.write_text(DRILL)
    process = subprocess.Popen([sys.executable, str(script), str(ledger), "1"],
                               stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    assert process.stdout is not None and process.stdout.readline().strip() == "inside"
    time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert ledger_dump(ledger) == before  # the hot journal is rolled back on the next open
    account = PaperBroker().open(request)
    assert account.holdings().pending == (Order("AAA", 10.0, 100.0),)
    after = account.run_cycle(market.date(1), market, lambda h: [], {})
    assert [f.shares for f in after.record.fills] == [10.0]
