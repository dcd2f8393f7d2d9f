"""One daily trade cycle: refresh data → signal → orders → the broker's ledger.

Everything that can be refused is checked before the broker records anything: the
broker name, the account (a corrupt ledger), the data (stale prices), the model
(missing, of another stage's shape). The broker then runs the cycle in one
transaction, at most once per trading day; a snapshot of the cycle (signal, orders,
fills) is written beside the ledger afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ploutos_core.agents.contract import Agent
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.atomic import write_json
from ploutos_core.trading.contract import BrokerAccount, BrokerRequest, CycleOutcome, Holdings
from ploutos_core.trading.orders import OrderPlan, plan_orders
from ploutos_core.trading.signal import (
    Signal,
    check_staleness,
    compute_signal,
    load_signal_panel,
)


@attrs.frozen(eq=False)
class TradeCycle:
    """What one ``ploutos trade`` cycle did.

    :param signal: the model's decision at the as-of close.
    :param outcome: the broker's record of the day (``already_recorded``: nothing changed).
    :param plan: the orders planned for the account (``None`` when the day was recorded
        before).
    :param snapshot: the cycle's JSON snapshot (``None`` when nothing was recorded).
    :param ledger: where the account lives (the ``paper`` broker's ledger file).
    """

    signal: Signal
    outcome: CycleOutcome
    plan: OrderPlan | None
    snapshot: Path | None
    ledger: Path | None

    @property
    def recorded(self) -> bool:
        """Whether this call recorded the day's cycle."""
        return not self.outcome.already_recorded

    def describe(self) -> str:
        """A few lines for the terminal."""
        record = self.outcome.record
        signal = self.signal
        if self.outcome.already_recorded:
            return (f"{signal.stage}: the cycle of {record.day} was already recorded at "
                    f"{record.recorded_at} in {self.ledger}; nothing changed")
        lines = [f"{signal.stage}: cycle of {record.day} recorded in {self.ledger} "
                 f"(orders fill at the close of {signal.next_session})"]
        for fill in record.fills:
            note = f" — {fill.note}" if fill.note else ""
            lines.append(f"  filled {fill.shares:+g} {fill.ticker} at {fill.price:.4f} on "
                         f"{fill.filled_on} (cost {fill.cost:.2f}){note}")
        lines.append(f"  equity {record.equity:,.2f} at the close of {record.day}; cash "
                     f"{record.holdings.cash:,.2f}")
        if not record.orders:
            reason = ("inside the no-trade band" if self.plan is not None and
                      not self.plan.rebalance else "nothing to change")
            lines.append(f"  no orders ({reason})")
        for order in record.orders:
            lines.append(f"  order {order.side} {abs(order.shares):g} {order.ticker} "
                         f"(~{abs(order.shares) * order.reference_price:,.2f} at "
                         f"{order.reference_price:.4f})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready cycle (the snapshot's content)."""
        return {"recorded": self.recorded, "ledger": str(self.ledger) if self.ledger else None,
                "signal": self.signal.to_dict(), "record": self.outcome.record.to_dict(),
                "plan": self.plan.to_dict() if self.plan else None}


def cycle_details(signal: Signal, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What the broker keeps with the cycle: the audit trail of the decision."""
    return {"stage": signal.stage, "model": signal.model,
            "model_steps": metadata.get("num_timesteps"), "as_of": signal.as_of.isoformat(),
            "next_session": signal.next_session.isoformat(), "start": signal.start.isoformat(),
            "source": signal.source, "fingerprint": signal.fingerprint,
            "stale": signal.stale, "weights": signal.named(signal.weights),
            "target": signal.named(signal.target)}


def run_cycle(registry: Registry, stage: StageSpec, path: Path,
              load_agent: Callable[[Any], Agent], account: BrokerAccount,
              request: BrokerRequest, data: DataOptions, *, requested: dt.date,
              start: dt.date | None = None, allow_stale: bool = False, max_lag: int = 1,
              whole_shares: bool = True, device: str = "cpu",
              snapshots: Path | None = None) -> TradeCycle:
    """Compute the signal of ``requested`` and run the broker's cycle for its day.

    :param account: the open account (checked before any data is loaded).
    :param snapshots: directory for ``<day>.json`` snapshots (``None``: none written).
    :raises StaleDataError: when the prices lag ``requested`` (unless ``allow_stale``).
    :raises BrokerError: when the broker refuses the cycle (nothing changes).
    """
    from ploutos_core.agents.model_files import read_metadata

    panel = load_signal_panel(registry, stage, data, requested)
    stale, lag = check_staleness(panel, requested, max_lag, allow_stale)
    signal = compute_signal(registry, stage, path, load_agent, panel, requested=requested,
                            start=start, stale=stale, lag_days=lag, device=device)
    plans: list[OrderPlan] = []

    def plan(holdings: Holdings) -> list[Any]:
        chosen = plan_orders(holdings, stage.tickers, signal.closes, signal.target,
                             stage.env, stage.transaction_cost, whole_shares=whole_shares)
        plans.append(chosen)
        return list(chosen.orders)

    outcome = account.run_cycle(signal.as_of, signal.market, plan,
                                cycle_details(signal, read_metadata(path)))
    chosen_plan = plans[-1] if plans and not outcome.already_recorded else None
    signal = attrs.evolve(signal, plan=chosen_plan,
                          holdings=outcome.record.holdings if chosen_plan else None)
    cycle = TradeCycle(signal=signal, outcome=outcome, plan=chosen_plan, snapshot=None,
                       ledger=request.location)
    if snapshots is not None and cycle.recorded:
        target = snapshots / f"{signal.as_of.isoformat()}.json"
        write_json(target, cycle.to_dict())
        cycle = attrs.evolve(cycle, snapshot=target)
    return cycle
