"""``ploutos data``: fetch, verify, list and clear market data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, split_list, stage_file_option
from ploutos_core.data.cache import ParquetCache
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import Panel
from ploutos_core.data.source import DataRequest
from ploutos_core.data.stage_data import DataOptions, stage_request
from ploutos_core.errors import ConfigError
from ploutos_core.pluginmanager.registry import Registry


@click.group("data")
def data_group() -> None:
    """Fetch, verify, list and clear market data."""


def _request(registry: Registry, options: DataOptions, stage: str | None, tickers: str | None,
             start: dt.datetime | None, end: dt.datetime | None) -> DataRequest:
    if stage and tickers:
        raise ConfigError("give either --stage or --tickers, not both")
    if stage:
        request = stage_request(registry.stage(stage), options, "validation")
        return DataRequest(tickers=request.tickers, start=start.date() if start else request.start,
                           end=end.date() if end else request.end, data_dir=options.data_dir,
                           cache_dir=options.cache_dir, seed=options.seed,
                           refresh=options.refresh)
    names = split_list(tickers)
    if not names:
        raise ConfigError("name the data: --tickers SPY,QQQ or --stage stage1")
    return DataRequest(tickers=names, start=start.date() if start else None,
                       end=end.date() if end else None, data_dir=options.data_dir,
                       cache_dir=options.cache_dir, seed=options.seed, refresh=options.refresh)


def _describe(panel: Panel) -> str:
    return (f"{','.join(panel.tickers)}: {panel.n_days} aligned days "
            f"{panel.date(0)}…{panel.date(panel.n_days - 1)} from {panel.source} "
            f"(fingerprint {panel.fingerprint()})")


_selection = [
    click.option("--stage", help="Use the tickers and dates of this stage."),
    click.option("--tickers", help="Comma-separated tickers, e.g. SPY,QQQ."),
    click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First date (YYYY-MM-DD)."),
    click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last date (YYYY-MM-DD)."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _with_selection(function: F) -> F:
    for option in reversed(_selection):
        function = option(function)
    return function


@data_group.command("fetch")
@_with_selection
@data_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of synthetic data.")
@stage_file_option
@pass_app
def fetch(app: AppContext, stage: str | None, tickers: str | None, start: dt.datetime | None,
          end: dt.datetime | None, source: str, data_dir: Path | None, cache_dir: Path,
          refresh: bool, seed: int, stage_files: tuple[str, ...]) -> None:
    """Download (or read) data and store it in the cache; validate it on the way."""
    registry = app.registry(stage_files)
    options = DataOptions(source, data_dir, cache_dir, seed, refresh)
    panel = load_panel(registry.data_source(source),
                       _request(registry, options, stage, tickers, start, end))
    click.echo(_describe(panel))


@data_group.command("verify")
@_with_selection
@data_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of synthetic data.")
@stage_file_option
@pass_app
def verify(app: AppContext, stage: str | None, tickers: str | None, start: dt.datetime | None,
           end: dt.datetime | None, source: str, data_dir: Path | None, cache_dir: Path,
           refresh: bool, seed: int, stage_files: tuple[str, ...]) -> None:
    """Load and validate data; with --stage, also check every split has days.

    Without --stage or --tickers, re-validate every file in the cache.
    """
    registry = app.registry(stage_files)
    if not stage and not tickers:
        _verify_cache(cache_dir)
        return
    options = DataOptions(source, data_dir, cache_dir, seed, refresh)
    panel = load_panel(registry.data_source(source),
                       _request(registry, options, stage, tickers, start, end))
    click.echo(_describe(panel))
    if stage:
        spec = registry.stage(stage)
        for split in ("train", "validation"):
            first, last = panel.index_range(spec.splits.get(split), label=f"{split} split")
            click.echo(f"  {split}: {last - first + 1} days {panel.date(first)}…{panel.date(last)}")
        click.echo(f"  test: {spec.splits.test} (not loaded here: the test split is only read "
                   f"by 'ploutos evaluate --split test')")
    click.echo("ok")


def _verify_cache(cache_dir: Path) -> None:
    from ploutos_core.data.validation import normalise_frame, validate_frame

    cache = ParquetCache(cache_dir)
    entries = cache.entries()
    if not entries:
        click.echo(f"the cache {cache_dir} is empty")
        return
    for entry in entries:
        frame = normalise_frame(entry.ticker, cache.load(entry.path))
        validate_frame(entry.ticker, frame)
        click.echo(f"ok  {entry.path.name}: {len(frame)} rows")


@data_group.command("list")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data_cache"), show_default=True)
def list_cache(cache_dir: Path) -> None:
    """List cached downloads."""
    entries = ParquetCache(cache_dir).entries()
    if not entries:
        click.echo(f"the cache {cache_dir} is empty")
    for entry in entries:
        click.echo(f"{entry.ticker:8} {entry.interval:4} {entry.start}…{entry.end}  "
                   f"{entry.size_bytes / 1024:.0f} KiB  {entry.path}")


@data_group.command("clear")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data_cache"), show_default=True)
@click.option("--tickers", help="Only these tickers (comma-separated).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_cache(cache_dir: Path, tickers: str | None, yes: bool) -> None:
    """Delete cached downloads."""
    cache = ParquetCache(cache_dir)
    wanted = split_list(tickers)
    matching = [e for e in cache.entries() if not wanted or e.ticker.upper() in
                {t.upper() for t in wanted}]
    if not matching:
        click.echo("nothing to clear")
        return
    if not yes:
        click.confirm(f"delete {len(matching)} cached file(s) in {cache_dir}?", abort=True)
    removed = cache.clear(wanted)
    click.echo(f"deleted {len(removed)} file(s)")


@data_group.command("sources")
@pass_app
def list_sources(app: AppContext) -> None:
    """List the registered data sources."""
    registry = app.registry()
    for name, entry in registry.all("data_sources").items():
        click.echo(f"{name:12} {entry.item.description}  [plugin {entry.plugin}]")
