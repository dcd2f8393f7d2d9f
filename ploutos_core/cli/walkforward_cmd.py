"""``ploutos walkforward`` (retrain every N days, trade out of sample, stitch) and
``ploutos retrain`` (one production fold, promoted only when not worse)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from ploutos_core.api import retrain, walkforward
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import (
    data_options,
    device_option,
    seed_option,
    split_list,
    stage_file_option,
)
from ploutos_core.cli.signal_cmd import as_date, date_type
from ploutos_core.evaluation.report import format_table

training_options = [
    click.option("--steps", type=click.IntRange(min=1),
                 help="Training steps of each fold (default: the stage's timesteps × --scale)."),
    click.option("--scale", type=float, default=1.0, show_default=True,
                 help="Multiplies the stage's timesteps when --steps is not given."),
    click.option("--n-envs", type=click.IntRange(min=1),
                 help="Environments stepped at once, instead of the stage's."),
    click.option("--algorithm", help="Algorithm instead of the stage's."),
    click.option("--logger", "loggers", multiple=True,
                 help="Logger of each fold (repeatable; default: the default set)."),
    click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                 default=Path("."), show_default=True, help="The run directory."),
    data_options, seed_option, device_option, stage_file_option,
]


def with_training_options(function: Any) -> Any:
    """Apply :data:`training_options`."""
    for option in reversed(training_options):
        function = option(function)
    return function


@click.command("walkforward")
@click.option("--stage", "stage_name", required=True, metavar="NAME", help="The stage.")
@click.option("--from", "start", type=date_type, required=True,
              help="First day traded out of sample (the first retraining date).")
@click.option("--to", "end", type=date_type, help="Last day (default: the newest data).")
@click.option("--retrain-every", type=click.IntRange(min=1), required=True, metavar="N_DAYS",
              help="Trading days between retraining dates (21: monthly).")
@click.option("--window", default="expanding", show_default=True,
              help="Training window of each fold: expanding (from the stage's train start) "
                   "or rolling:N_DAYS (the last N trading days).")
@click.option("--load-model", type=click.Path(path_type=Path),
              help="Model the first fold starts from (later folds start from the fold "
                   "before).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted walk-forward: finished folds are kept, the "
                   "interrupted one continues from its checkpoint.")
@click.option("--overwrite", is_flag=True, help="Move an earlier walk-forward aside.")
@with_training_options
@pass_app
def walkforward_command(app: AppContext, /, stage_name: str, start: dt.datetime,
                        end: dt.datetime | None, retrain_every: int, window: str,
                        load_model: Path | None, resume: bool, overwrite: bool,
                        steps: int | None, scale: float, n_envs: int | None,
                        algorithm: str | None, loggers: tuple[str, ...], no_progress: bool,
                        out_dir: Path, seed: int, device: str, stage_files: tuple[str, ...],
                        **data: Any) -> None:
    """Retrain every N_DAYS trading days on data strictly before each retraining date,
    trade each period out of sample, and report the stitched days beside the baselines
    over exactly the same days.

    Writes OUT/walkforward/<stage>/ (plan, one run directory per fold) and
    OUT/reports/<stage>/walkforward.{json,md,png}, walkforward_daily.csv and
    walkforward_folds.csv.
    """
    walk = walkforward(stage_name, start=as_date(start), end=as_date(end),
                       retrain_every=retrain_every, window=window, steps=steps,
                       load_model=load_model, resume=resume, overwrite=overwrite,
                       out_dir=out_dir, source=data["source"], data_dir=data["data_dir"],
                       cache_dir=data["cache_dir"], refresh=data["refresh"], seed=seed,
                       device=device, n_envs=n_envs, algorithm=algorithm, scale=scale,
                       progress=not no_progress, loggers=split_loggers(loggers),
                       registry=app.registry(stage_files))
    click.echo(format_table(walk.result))
    files = walk.files
    click.echo(f"wrote {files.json}, {files.markdown.name}, {files.plot.name}, "
               f"{files.daily.name}, walkforward_folds.csv; folds in {walk.directory}")


def split_loggers(loggers: tuple[str, ...]) -> list[str] | None:
    """``--logger a,b --logger c`` → names; none given: ``None`` (the default set)."""
    names = [name for value in loggers for name in split_list(value)]
    return names or None


@click.command("retrain")
@click.option("--stage", "stage_name", required=True, metavar="NAME", help="The stage.")
@click.option("--model", type=click.Path(path_type=Path),
              help="The first production model (only before OUT/production/<stage> exists).")
@click.option("--as-of", type=date_type,
              help="Train through this day (default: today; the newest data on or before it).")
@click.option("--holdout", type=click.IntRange(min=2), default=63, show_default=True,
              metavar="N_DAYS",
              help="The most recent trading days on which the shadow fold must not be worse "
                   "than the production model (use your retraining interval).")
@click.option("--allow-stale", is_flag=True, help="Retrain on prices older than --max-lag.")
@click.option("--max-lag", type=click.IntRange(min=0), default=1, show_default=True,
              help="Business days the newest price may lag the as-of date.")
@with_training_options
@pass_app
def retrain_command(app: AppContext, /, stage_name: str, model: Path | None,
                    as_of: dt.datetime | None, holdout: int, allow_stale: bool, max_lag: int,
                    steps: int | None, scale: float, n_envs: int | None,
                    algorithm: str | None, loggers: tuple[str, ...], no_progress: bool,
                    out_dir: Path, seed: int, device: str, stage_files: tuple[str, ...],
                    **data: Any) -> None:
    """One production fold: retrain on everything up to the as-of day, keep the previous
    model, and promote the new one to OUT/production/<stage>/current.zip only if a shadow
    fold trained the same way is not worse on the last --holdout days.

    OUT/production/<stage>/lineage.json records every model's parent, data fingerprint
    and dates, and every decision.
    """
    result = retrain(stage_name, model=model, as_of=as_date(as_of), holdout=holdout,
                     steps=steps, out_dir=out_dir, allow_stale=allow_stale, max_lag=max_lag,
                     source=data["source"], data_dir=data["data_dir"],
                     cache_dir=data["cache_dir"], refresh=data["refresh"], seed=seed,
                     device=device, n_envs=n_envs, algorithm=algorithm, scale=scale,
                     progress=not no_progress, loggers=split_loggers(loggers),
                     registry=app.registry(stage_files))
    click.echo(result.describe())
