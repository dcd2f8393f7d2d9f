"""``ploutos signal``: the model's target weights for the next session, and the orders."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from ploutos_core.api import signal
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, device_option, seed_option, stage_file_option
from ploutos_core.trading.signal import Signal

date_type = click.DateTime(formats=["%Y-%m-%d"])


def as_date(value: dt.datetime | None) -> dt.date | None:
    """click's datetime → a date."""
    return value.date() if value is not None else None


def signal_lines(result: Signal) -> list[str]:
    """The signal as terminal lines: weights, target, closes, then orders if any."""
    lines = [f"{result.stage}: target weights at the close of {result.as_of} for the session "
             f"of {result.next_session}",
             f"  model {result.model}, replayed from {result.start}; {result.source} prices "
             f"through {result.as_of} (fingerprint {result.fingerprint})"
             + (f" — STALE: {result.lag_days} business days before {result.requested}"
                if result.stale else "")]
    lines.append(f"  {'':<10} {'weight':>8} {'target':>8} {'close':>12}")
    for name, weight, target in zip([*result.tickers, "cash"], result.weights, result.target,
                                    strict=True):
        close = f"{result.closes[name]:.4f}" if name in result.closes else ""
        lines.append(f"  {name:<10} {weight:>8.2%} {target:>8.2%} {close:>12}")
    if result.model_turnover == 0.0:
        lines.append("  the model portfolio does not trade today (inside the no-trade band)")
    plan = result.plan
    if plan is not None:
        lines.append(f"  account worth {plan.value:,.2f}: turnover {plan.turnover:.2%}, "
                     f"estimated cost {plan.estimated_cost:,.2f}")
        holdings = result.holdings
        if holdings is not None and holdings.pending:
            lines.append(f"  note: {len(holdings.pending)} orders of {holdings.day} are still "
                         f"pending and not counted in these holdings")
        if not plan.rebalance:
            lines.append("  no orders: the account is inside the no-trade band")
        elif not plan.orders:
            lines.append("  no orders: nothing to change in whole shares")
        for order in plan.orders:
            lines.append(f"  {order.side:<4} {abs(order.shares):>10g} {order.ticker:<8} "
                         f"(~{abs(order.shares) * order.reference_price:,.2f})")
    return lines


@click.command("signal")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--stage", "stage_name", help="Stage traded (default: the model's).")
@click.option("--as-of", type=date_type,
              help="Use the close of this day (default: today; the newest trading day of the "
                   "data on or before it).")
@click.option("--start", type=date_type,
              help="First day of the replay (default: first day of the stage's split that "
                   "holds the as-of day).")
@click.option("--positions", type=click.Path(dir_okay=False, path_type=Path),
              help="Holdings as JSON {\"cash\": …, \"positions\": {TICKER: shares}} or CSV "
                   "ticker,shares (a row 'cash'): prints the orders.")
@click.option("--broker", help="Read the holdings from this broker's account (e.g. paper).")
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path),
              help="The broker's ledger (default: OUT/trading/<stage>/<broker>.sqlite).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Where --broker looks for ledgers.")
@click.option("--allow-stale", is_flag=True,
              help="Use prices older than --max-lag business days before the as-of date.")
@click.option("--max-lag", type=click.IntRange(min=0), default=1, show_default=True,
              help="Business days the newest price may lag the as-of date.")
@click.option("--fractional", is_flag=True, help="Allow fractional shares in orders.")
@click.option("--algorithm", help="Algorithm the model was trained with (default: its file's).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: as-of date, model, weights, orders, data fingerprint.")
@data_options
@seed_option
@device_option
@stage_file_option
@pass_app
def signal_command(app: AppContext, /, model: Path, stage_name: str | None,
                   as_of: dt.datetime | None, start: dt.datetime | None,
                   positions: Path | None, broker: str | None, ledger: Path | None,
                   out_dir: Path, allow_stale: bool, max_lag: int, fractional: bool,
                   algorithm: str | None, as_json: bool, seed: int, device: str,
                   stage_files: tuple[str, ...], **data: Any) -> None:
    """Target weights of every ticker and cash for the next session, from MODEL's decision
    at the as-of close, and (with --positions or --broker) the orders after the stage's
    turnover rule.

    Exit code 1 with the newest date when the prices are stale (see --allow-stale).
    """
    result = signal(model, stage=stage_name, as_of=as_date(as_of), start=as_date(start),
                    positions=positions, broker=broker, ledger=ledger, out_dir=out_dir,
                    allow_stale=allow_stale, max_lag=max_lag, whole_shares=not fractional,
                    source=data["source"], data_dir=data["data_dir"],
                    cache_dir=data["cache_dir"], refresh=data["refresh"], seed=seed,
                    device=device, algorithm=algorithm, registry=app.registry(stage_files))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(signal_lines(result)))
