"""``ploutos trade status``: an account's equity beside the stage's baselines on the same days.

The account is valued at the close of each recorded cycle day; every baseline of
``ploutos evaluate`` (buy-and-hold, 1/N, volatility-targeted, cash) starts in cash at
the close of the first cycle day, pays the stage's costs and is read at the same
days, scaled to the account's first value. Written as JSON and a PNG beside the
ledger.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import StageSpec
from ploutos_core.data.panel import Panel
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import baseline_backtests
from ploutos_core.evaluation.metrics import summarize
from ploutos_core.runfiles.atomic import atomic_path, json_number, write_json
from ploutos_core.trading.contract import CycleRecord, Holdings

Array = NDArray[np.float64]


@attrs.frozen(eq=False)
class TradeStatus:
    """An account's record against the baselines.

    :param stage: the stage traded.
    :param ledger: where the account lives.
    :param days: the recorded cycle days, oldest first.
    :param equity: the account's value at each day's close.
    :param baselines: baseline name → its value at the same days, starting at the
        account's first value.
    :param holdings: cash, positions and pending orders now.
    :param closes: the closes of the last cycle day.
    :param costs_paid: costs of every fill so far.
    :param fills: number of fills so far.
    """

    stage: str
    ledger: Path | None
    days: tuple[dt.date, ...]
    equity: Array
    baselines: dict[str, Array]
    holdings: Holdings
    closes: dict[str, float]
    costs_paid: float
    fills: int

    def statistics(self, values: Array) -> dict[str, float | None]:
        """Total return, max drawdown and (from two day-to-day returns on) the annualised
        Sharpe ratio of a value series."""
        returns = values[1:] / values[:-1] - 1.0
        stats: dict[str, float | None] = {
            "total_return": json_number(values[-1] / values[0] - 1.0),
            "max_drawdown": json_number(float(np.min(values / np.maximum.accumulate(values)))
                                        - 1.0)}
        if len(returns) >= 2:
            summary = summarize(returns)
            stats["sharpe"] = json_number(summary.sharpe)
        else:
            stats["sharpe"] = None
        return stats

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready status."""
        value = self.holdings.value(self.closes) if self.closes else self.holdings.cash
        positions = {
            ticker: {"shares": shares, "close": self.closes.get(ticker),
                     "value": shares * self.closes[ticker] if ticker in self.closes else None,
                     "weight": shares * self.closes[ticker] / value
                     if ticker in self.closes and value > 0 else None}
            for ticker, shares in self.holdings.positions.items()}
        return {
            "stage": self.stage, "ledger": str(self.ledger) if self.ledger else None,
            "first_day": self.days[0].isoformat() if self.days else None,
            "last_day": self.days[-1].isoformat() if self.days else None,
            "cycles": len(self.days),
            "account": {"equity": [json_number(v) for v in self.equity],
                        **(self.statistics(self.equity) if len(self.days) else {}),
                        "costs_paid": self.costs_paid, "fills": self.fills},
            "baselines": {name: {"equity": [json_number(v) for v in values],
                                 **self.statistics(values)}
                          for name, values in self.baselines.items()},
            "days": [d.isoformat() for d in self.days],
            "holdings": {"cash": self.holdings.cash, "positions": positions,
                         "value": value,
                         "pending": [o.to_dict() for o in self.holdings.pending]},
        }

    def describe(self) -> str:
        """A few lines for the terminal."""
        if not self.days:
            return f"{self.stage}: no cycle recorded yet in {self.ledger}"
        account = self.statistics(self.equity)
        lines = [f"{self.stage}: {len(self.days)} cycles {self.days[0]}…{self.days[-1]} in "
                 f"{self.ledger}",
                 f"  {'strategy':<34} {'total':>8} {'max DD':>8} {'Sharpe':>7}",
                 _row("account", account)]
        lines += [_row(name, self.statistics(values)) for name, values in self.baselines.items()]
        held = ", ".join(f"{shares:g} {ticker}" for ticker, shares in
                         self.holdings.positions.items()) or "no shares"
        lines.append(f"  holdings: {held}; cash {self.holdings.cash:,.2f}; "
                     f"{len(self.holdings.pending)} pending orders; costs paid "
                     f"{self.costs_paid:,.2f} over {self.fills} fills")
        return "\n".join(lines)


def _row(name: str, stats: dict[str, float | None]) -> str:
    def fmt(value: float | None, pattern: str) -> str:
        return "n/a" if value is None or math.isnan(value) else pattern.format(value)

    return (f"  {name:<34} {fmt(stats['total_return'], '{:+.2%}'):>8} "
            f"{fmt(stats['max_drawdown'], '{:.2%}'):>8} {fmt(stats['sharpe'], '{:.2f}'):>7}")


def build_status(stage: StageSpec, history: list[CycleRecord], holdings: Holdings,
                 panel: Panel | None, ledger: Path | None) -> TradeStatus:
    """The status of an account from its cycle records and the stage's prices.

    :param panel: prices covering the cycle days (``None`` without cycles).
    :raises ConfigError: when a cycle day is missing from the prices.
    """
    days = tuple(record.day for record in history)
    equity = np.array([record.equity for record in history], dtype=np.float64)
    fills = [fill for record in history for fill in record.fills]
    baselines: dict[str, Array] = {}
    closes: dict[str, float] = {}
    if history and panel is not None:
        rows = []
        for day in days:
            row = int(np.searchsorted(panel.dates, np.datetime64(day, "D")))
            if row >= panel.n_days or panel.date(row) != day:
                raise ConfigError(f"the {panel.source} prices have no close on {day}, a cycle "
                                  f"day of the ledger; use the data source the cycles used")
            rows.append(row)
        closes = {t: float(p) for t, p in zip(panel.tickers, panel.close[rows[-1]], strict=True)}
        if len(rows) >= 2:
            decision_days = np.arange(rows[0], rows[-1], dtype=np.int64)
            for backtest in baseline_backtests(panel.close, panel.tickers, decision_days,
                                               stage.transaction_cost):
                path = np.concatenate([[1.0], backtest.equity])
                baselines[backtest.name] = equity[0] * path[np.array(rows) - rows[0]]
    return TradeStatus(stage=stage.name, ledger=ledger, days=days, equity=equity,
                       baselines=baselines, holdings=holdings, closes=closes,
                       costs_paid=float(sum(f.cost for f in fills)), fills=len(fills))


def write_status(status: TradeStatus, directory: Path, stem: str) -> tuple[Path, Path | None]:
    """Write ``<stem>.json`` and (with two cycles or more) ``<stem>.png``."""
    json_path = directory / f"{stem}.json"
    write_json(json_path, status.to_dict())
    if len(status.days) < 2:
        return json_path, None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    dates = [np.datetime64(d, "D").astype(object) for d in status.days]
    figure, axis = plt.subplots(figsize=(10, 5))
    axis.plot(dates, status.equity, color="black", linewidth=2.2, label="account")
    for name, values in status.baselines.items():
        axis.plot(dates, values, linewidth=1.0, alpha=0.75, label=name)
    axis.set_title(f"{status.stage}: account vs baselines, {status.days[0]}…{status.days[-1]} "
                   f"(close of each cycle day)")
    axis.set_ylabel("value")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    png = directory / f"{stem}.png"
    with atomic_path(png) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    return json_path, png
