"""``ploutos evaluate``: backtest a model on a split beside its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ploutos_core.api import evaluate, evaluate_universes
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import (
    data_options,
    device_option,
    seed_option,
    split_list,
    stage_file_option,
)
from ploutos_core.env.base import Split
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.report import format_table


def parse_multipliers(value: str) -> list[float]:
    """``"1,2,3"`` → ``[1.0, 2.0, 3.0]``.

    :raises ConfigError: for a non-number or a negative multiplier.
    """
    try:
        multipliers = [float(part) for part in split_list(value)]
    except ValueError as exc:
        raise ConfigError(f"--cost-multiplier {value!r}: expected numbers like 1,2,3") from exc
    if not multipliers or any(m < 0 for m in multipliers):
        raise ConfigError(f"--cost-multiplier {value!r}: expected numbers >= 0 like 1,2,3")
    return multipliers


def parse_pool(value: str) -> list[str]:
    """``"A,B,C"`` or ``"@file"`` (one ticker per line, ``#`` comments) → tickers.

    :raises ConfigError: for an unreadable file or an empty pool.
    """
    if value.startswith("@"):
        try:
            lines = Path(value[1:]).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"--pool {value}: cannot read the file ({exc})") from exc
        tickers = [line.split("#")[0].strip() for line in lines]
    else:
        tickers = list(split_list(value))
    tickers = [t for t in tickers if t]
    if not tickers:
        raise ConfigError(f"--pool {value!r} names no ticker")
    return tickers


@click.command("evaluate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--stage", "stage_name",
              help="Stage whose tickers, splits and costs define the backtest (default: the "
                   "stage the model file records).")
@click.option("--split", type=click.Choice(["validation", "test", "train"]), default="validation",
              show_default=True, help="train is reported as in-sample, never as a result.")
@click.option("--cost-multiplier", default="1", show_default=True,
              help="Comma-separated multipliers of the stage's cost, e.g. 1,2,3.")
@click.option("--risk-free-rate", type=float, default=0.0, show_default=True,
              help="Annual risk-free rate for Sharpe and Sortino.")
@click.option("--algorithm", help="Algorithm the model was trained with (default: from the "
                                  "model file).")
@click.option("--trials", type=click.IntRange(min=1),
              help="Configurations looked at before choosing this model, for the deflated "
                   "Sharpe ratio (default: what the model file records — a tuned model its "
                   "study's trials — else 1).")
@click.option("--sets", type=click.IntRange(min=1),
              help="Also backtest the model on this many sub-universes drawn from --pool, "
                   "each beside 1/N (writes <split>_universes.json/.md).")
@click.option("--pool", help="Tickers the sets are drawn from: A,B,C or @FILE (one per line).")
@click.option("--set-size", type=click.IntRange(min=1),
              help="Tickers per set (default: as many as the stage trades).")
@click.option("--sets-seed", type=int, default=0, show_default=True,
              help="Seed of the draws: the same sets for every model compared.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Reports go to OUT/reports/<stage>/.")
@data_options
@seed_option
@device_option
@stage_file_option
@pass_app
def evaluate_command(app: AppContext, /, model: Path, stage_name: str | None, split: Split,
                     cost_multiplier: str, risk_free_rate: float, algorithm: str | None,
                     trials: int | None, sets: int | None, pool: str | None,
                     set_size: int | None, sets_seed: int, out_dir: Path, seed: int,
                     device: str,
                     stage_files: tuple[str, ...], **data: Any) -> None:
    """Backtest MODEL deterministically on a split, with baselines on the same days and costs.

    Writes reports/<stage>/<split>.json, .md and .png (with a _costNx suffix for
    multipliers other than 1).
    """
    registry = app.registry(stage_files)
    for multiplier in parse_multipliers(cost_multiplier):
        evaluation = evaluate(model, stage=stage_name, split=split, source=data["source"],
                              data_dir=data["data_dir"], cache_dir=data["cache_dir"],
                              refresh=data["refresh"], seed=seed, device=device,
                              algorithm=algorithm, cost_multiplier=multiplier,
                              risk_free_rate=risk_free_rate, trials=trials, out_dir=out_dir,
                              registry=registry)
        files = evaluation.files
        assert files is not None  # out_dir is always set here
        click.echo(format_table(evaluation.result))
        click.echo(f"wrote {files.json}, {files.markdown.name}, {files.plot.name}, "
                   f"{files.daily.name}\n")
    if sets:
        if not pool:
            raise click.UsageError("--sets needs --pool (the tickers to draw sets from)")
        verdict = evaluate_universes(
            model, pool=parse_pool(pool), sets=sets, set_size=set_size, sets_seed=sets_seed,
            stage=stage_name, split=split, source=data["source"], data_dir=data["data_dir"],
            cache_dir=data["cache_dir"], refresh=data["refresh"], seed=seed, device=device,
            algorithm=algorithm, out_dir=out_dir, registry=registry)
        click.echo(verdict.describe())
