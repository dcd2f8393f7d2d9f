"""``ploutos trade``: one daily cycle on a broker's account; ``ploutos trade status``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ploutos_core.api import trade, trade_status
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, device_option, seed_option, stage_file_option
from ploutos_core.cli.signal_cmd import as_date, date_type
from ploutos_core.errors import ConfigError

#: what the exit codes of ``ploutos trade`` mean (docs/deployment.md).
EXIT_CODES = {0: "the cycle was recorded, or the day was already recorded (nothing changed)",
              1: "refused (stale data, bad model, corrupt ledger …): nothing changed",
              75: "another cycle holds the account: nothing changed, retry later"}


def parse_broker_options(values: tuple[str, ...]) -> dict[str, str]:
    """``("KEY=VALUE", …)`` → a dict.

    :raises ConfigError: for an item without ``=``.
    """
    options = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--broker-option {item!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


account_options: list[Callable[[Any], Any]] = [
    click.option("--broker", default="paper", show_default=True,
                 help="Broker plugin holding the account."),
    click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                 default=Path("."), show_default=True,
                 help="The ledger is OUT/trading/<stage>/<broker>.sqlite."),
    click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path),
                 help="The ledger file instead (snapshots and status go beside it)."),
]


F = TypeVar("F", bound=Callable[..., Any])


def with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Apply click options in the order listed."""
    def apply(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


@click.group("trade", invoke_without_command=True,
             epilog="Exit codes: " + "; ".join(f"{c}: {m}" for c, m in EXIT_CODES.items()))
@click.option("--model", type=click.Path(path_type=Path),
              help="The model to trade (e.g. models/stage1_final).")
@click.option("--stage", "stage_name", help="Stage traded (default: the model's).")
@with_options(account_options)
@click.option("--as-of", type=date_type,
              help="Trade the close of this day (default: today; the newest trading day of "
                   "the data on or before it).")
@click.option("--start", type=date_type, help="First day of the signal's replay.")
@click.option("--initial-cash", type=float, default=100_000.0, show_default=True,
              help="Cash of a new paper account.")
@click.option("--lock-timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for another cycle on the same account before exit 75.")
@click.option("--broker-option", "broker_options", multiple=True, metavar="KEY=VALUE",
              help="Broker-specific setting (repeatable).")
@click.option("--allow-stale", is_flag=True, help="Trade on prices older than --max-lag.")
@click.option("--max-lag", type=click.IntRange(min=0), default=1, show_default=True,
              help="Business days the newest price may lag the as-of date.")
@click.option("--fractional", is_flag=True, help="Allow fractional shares in orders.")
@click.option("--algorithm", help="Algorithm the model was trained with (default: its file's).")
@click.option("--json", "as_json", is_flag=True, help="Print the cycle as JSON.")
@data_options
@seed_option
@device_option
@stage_file_option
@click.pass_context
def trade_group(ctx: click.Context, /, model: Path | None, stage_name: str | None,
                broker: str, out_dir: Path, ledger: Path | None, as_of: dt.datetime | None,
                start: dt.datetime | None, initial_cash: float, lock_timeout: float,
                broker_options: tuple[str, ...], allow_stale: bool, max_lag: int,
                fractional: bool, algorithm: str | None, as_json: bool, seed: int,
                device: str, stage_files: tuple[str, ...], **data: Any) -> None:
    """Run one daily cycle: refresh the data, compute the signal, plan the orders and
    record them in the broker's account, at most once per trading day.

    'ploutos trade --model models/stage1_final --stage stage1 --out live' trades the paper
    account live/trading/stage1/paper.sqlite; 'ploutos trade status --stage stage1 --out
    live' shows how it fares against the baselines.
    """
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        raise click.UsageError("pass --model MODEL (or a subcommand: status)")
    app = ctx.find_object(AppContext)
    assert app is not None  # main() always passes one
    cycle = trade(model, stage=stage_name, broker=broker, as_of=as_date(as_of),
                  start=as_date(start), out_dir=out_dir, ledger=ledger,
                  initial_cash=initial_cash, lock_timeout=lock_timeout,
                  broker_options=parse_broker_options(broker_options),
                  allow_stale=allow_stale, max_lag=max_lag, whole_shares=not fractional,
                  source=data["source"], data_dir=data["data_dir"],
                  cache_dir=data["cache_dir"], refresh=data["refresh"], seed=seed,
                  device=device, algorithm=algorithm, registry=app.registry(stage_files))
    if as_json:
        click.echo(json.dumps(cycle.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        click.echo(cycle.describe())


@trade_group.command("status")
@click.option("--stage", "stage_name", required=True, help="Stage traded.")
@with_options(account_options)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@data_options
@seed_option
@stage_file_option
@pass_app
def status_command(app: AppContext, /, stage_name: str, broker: str, out_dir: Path,
                   ledger: Path | None, as_json: bool, seed: int,
                   stage_files: tuple[str, ...], **data: Any) -> None:
    """The account's equity at each cycle day beside the stage's baselines over the same
    days and costs, its holdings and the costs paid; writes <broker>_status.json and .png
    beside the ledger."""
    status = trade_status(stage_name, broker=broker, out_dir=out_dir, ledger=ledger,
                          source=data["source"], data_dir=data["data_dir"],
                          cache_dir=data["cache_dir"], refresh=data["refresh"], seed=seed,
                          registry=app.registry(stage_files))
    if as_json:
        click.echo(json.dumps(status.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(status.describe())
