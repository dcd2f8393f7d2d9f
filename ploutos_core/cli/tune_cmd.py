"""``ploutos tune``: tune one stage, alone or as an extra worker of a shared study."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import click

from ploutos_core.api import tune
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, device_option, seed_option, stage_file_option


@click.command("tune")
@click.option("--stage", "stage_name", required=True, metavar="NAME", help="The stage to tune.")
@click.option("--storage",
              help="Optuna storage the workers share: a database URL (sqlite:///path.db, "
                   "postgresql://user:pw@host/db, mysql+pymysql://…) or a journal file "
                   "(*.log, *.journal). Default: SQLite in --out/models/<stage>/optuna.db.")
@click.option("--study-name",
              help="Study inside the storage. Default: ploutos-<stage>, the name that "
                   "'ploutos run --auto-optimize' uses.")
@click.option("--trials", type=click.IntRange(min=1),
              help="Trial budget of the whole study, over all workers (default: the stage's).")
@click.option("--tuner", default="optuna", show_default=True, help="Tuner plugin.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True,
              help="Run directory; optimized_params.json goes to models/<stage>/.")
@click.option("--load-model", type=click.Path(path_type=Path),
              help="Trials start from this model's weights: pass what the stage itself starts "
                   "from (models/<previous stage>_final.zip in a curriculum run).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Multiply the stage's timesteps; use the main run's value.")
@click.option("--n-envs", type=int, help="Environments per trial; use the main run's value.")
@click.option("--algorithm", help="Algorithm instead of the stage's; use the main run's value.")
@click.option("--sampler-seed", type=int,
              help="Seed of this worker's sampler (default: a fresh one, so that workers "
                   "explore different points).")
@data_options
@seed_option
@device_option
@stage_file_option
@pass_app
def tune_command(app: AppContext, /, stage_name: str, storage: str | None,
                 study_name: str | None, trials: int | None, tuner: str, out_dir: Path,
                 load_model: Path | None, scale: float, n_envs: int | None,
                 algorithm: str | None, sampler_seed: int | None, **kw: Any) -> None:
    """Tune learning_rate, n_steps and ent_coef of one stage on its selection window.

    Runs trials until the study holds its trial budget, counting the trials of
    earlier runs and of other workers, then writes
    models/<stage>/optimized_params.json. Several machines share one study by
    running this command with the same --storage URL and --study-name, the same
    data options and --seed, and the same --load-model, --scale and --n-envs as
    the main run.
    """
    if sampler_seed is None:
        sampler_seed = secrets.randbelow(2**31)
        click.echo(f"{stage_name}: sampler seed {sampler_seed} (--sampler-seed to repeat)")
    hp = tune(stage_name, study_name=study_name, sampler_seed=sampler_seed,
              load_model=load_model, out_dir=out_dir, source=kw["source"],
              data_dir=kw["data_dir"], cache_dir=kw["cache_dir"], refresh=kw["refresh"],
              seed=kw["seed"], registry=app.registry(kw["stage_files"]), device=kw["device"],
              scale=scale, n_envs=n_envs, algorithm=algorithm, tuner=tuner, storage=storage,
              trials=trials)
    click.echo(f"{stage_name}: learning_rate={hp.learning_rate:.2e} n_steps={hp.n_steps} "
               f"ent_coef={hp.ent_coef:.2e}")
