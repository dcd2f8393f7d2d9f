"""``ploutos ensemble``: seed ensembles whose target weights are averaged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ploutos_core.api import make_ensemble, train_ensemble
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, device_option, split_list, stage_file_option
from ploutos_core.errors import ConfigError


@click.group("ensemble")
def ensemble_group() -> None:
    """Seed ensembles: K policies whose target weights are averaged."""


@ensemble_group.command("make")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The ensemble file to write (e.g. models/stage3_ensemble.zip).")
def make_command(models: tuple[Path, ...], out: Path) -> None:
    """Combine MODELS (of one stage) into one ensemble file; it loads wherever a model
    does (evaluate, compare, --load-model takes its first member)."""
    click.echo(f"wrote {make_ensemble(models, out)} ({len(models)} members)")


@ensemble_group.command("train")
@click.option("--curriculum", default="default", show_default=True)
@click.option("--stages", "selection", help="Stages: positions like 1-3 or names.")
@click.option("--seeds", "seeds", default="0,1,2", show_default=True,
              help="Seeds of the members, comma-separated.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("ensemble"), show_default=True,
              help="Holds seed<k>/ runs, models/<stage>_ensemble.zip and reports/.")
@data_options
@device_option
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Multiply every stage's timesteps.")
@click.option("--n-envs", type=int, help="Environments per stage instead of the stage's.")
@click.option("--resume", is_flag=True, help="Continue interrupted member runs.")
@click.option("--overwrite", is_flag=True, help="Replace earlier member runs.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@stage_file_option
@pass_app
def train_command(app: AppContext, /, curriculum: str, selection: str | None, seeds: str,
                  out_dir: Path, device: str, scale: float, n_envs: int | None, resume: bool,
                  overwrite: bool, no_progress: bool, stage_files: tuple[str, ...],
                  **data: Any) -> None:
    """Train the curriculum once per seed, then combine each stage's final models into an
    ensemble and evaluate it on validation beside the baselines."""
    try:
        seed_list = [int(part) for part in split_list(seeds)]
    except ValueError as exc:
        raise ConfigError(f"--seeds {seeds!r}: expected integers like 0,1,2") from exc
    result = train_ensemble(
        curriculum, seeds=seed_list, stages=selection, out_dir=out_dir, source=data["source"],
        data_dir=data["data_dir"], cache_dir=data["cache_dir"], refresh=data["refresh"],
        registry=app.registry(stage_files), device=device, scale=scale, n_envs=n_envs,
        resume=resume, overwrite=overwrite, progress=not no_progress)
    for stage, path in result.ensembles.items():
        click.echo(f"{stage}: {path}")
