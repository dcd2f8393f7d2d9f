"""``ploutos compare``: the curriculum against a from-scratch agent over several seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ploutos_core.api import compare
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, device_option, split_list, stage_file_option
from ploutos_core.comparison.report import format_comparison
from ploutos_core.errors import ConfigError

DEFAULT_SEEDS = 3


def parse_seeds(seeds: int | None, seed_list: str | None) -> tuple[int, ...]:
    """Seeds from ``--seeds N`` (``0..N-1``) or ``--seed-list 0,4,7``.

    :raises ConfigError: both given, a count below 1, or a list entry that is not an integer.
    """
    if seeds is not None and seed_list is not None:
        raise ConfigError(f"give --seeds or --seed-list, not both (got --seeds {seeds} and "
                          f"--seed-list {seed_list})")
    if seed_list is not None:
        try:
            return tuple(int(part) for part in split_list(seed_list))
        except ValueError as exc:
            raise ConfigError(f"--seed-list {seed_list!r}: expected integers like 0,1,2") \
                from exc
    count = DEFAULT_SEEDS if seeds is None else seeds
    if count < 1:
        raise ConfigError(f"--seeds must be >= 1, got {count}")
    return tuple(range(count))


@click.command("compare")
@click.option("--curriculum", default="default", show_default=True,
              help="Which curriculum (stages declare the one they belong to).")
@click.option("--stages", "selection",
              help="Stages of the curriculum arm: positions like 1-3 or names like "
                   "stage1,stage2; the last one is the scratch arm's stage.")
@click.option("--seeds", type=int,
              help=f"Train each arm with seeds 0..N-1 [default: {DEFAULT_SEEDS}].")
@click.option("--seed-list", help="Explicit comma-separated seeds instead, e.g. 0,4,7.")
@click.option("--data-seed", type=int, default=0, show_default=True,
              help="Seed of generating data sources (synthetic): the same market for every "
                   "training seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("compare"), show_default=True,
              help="Holds seed<k>/curriculum, seed<k>/scratch and reports/compare.*.")
@data_options
@device_option
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Multiply every stage's timesteps (0.001 for a smoke run).")
@click.option("--n-envs", type=int, help="Environments per stage instead of the stage's figure.")
@click.option("--resume", is_flag=True,
              help="Skip seed/arm runs that finished; continue interrupted ones.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier comparison.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@stage_file_option
@pass_app
def compare_command(app: AppContext, /, curriculum: str, selection: str | None, seeds: int | None,
                    seed_list: str | None, data_seed: int, out_dir: Path, device: str,
                    scale: float, n_envs: int | None, resume: bool, overwrite: bool,
                    no_progress: bool, stage_files: tuple[str, ...], **data: Any) -> None:
    """Train the curriculum and a from-scratch agent on its last stage with the same
    total steps, for several seeds; compare them on the last stage's validation split.

    Gates are ignored so that every seed finishes. Prints the median and spread across
    seeds of both arms, the per-seed difference and the baselines, and writes
    OUT/reports/compare.json, compare.md and compare.png.
    """
    comparison = compare(
        curriculum, seeds=parse_seeds(seeds, seed_list), stages=selection, out_dir=out_dir,
        source=data["source"], data_dir=data["data_dir"], cache_dir=data["cache_dir"],
        refresh=data["refresh"], data_seed=data_seed, registry=app.registry(stage_files),
        device=device, scale=scale, n_envs=n_envs, resume=resume, overwrite=overwrite,
        progress=not no_progress)
    reports = out_dir / "reports"
    click.echo("")
    click.echo(format_comparison(comparison))
    click.echo(f"wrote {reports / 'compare.json'}, compare.md, compare.png")
