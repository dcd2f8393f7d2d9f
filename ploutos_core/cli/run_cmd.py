"""``ploutos run``: train the curriculum or one stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ploutos_core.api import train_curriculum, train_stage
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import data_options, device_option, seed_option, stage_file_option


def run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by ``run curriculum`` and ``run stage``."""
    decorators = [
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("."), show_default=True,
                     help="Run directory for models/, logs/ and reports/."),
        data_options,
        seed_option,
        device_option,
        click.option("--scale", type=float, default=1.0, show_default=True,
                     help="Multiply every stage's timesteps (0.001 for a smoke run)."),
        click.option("--n-envs", type=int,
                     help="Environments stepped at once, instead of the stage's batch_envs."),
        click.option("--algorithm", help="Algorithm for every stage instead of the stage's."),
        click.option("--resume", is_flag=True,
                     help="Skip finished stages; continue the interrupted one from its "
                          "newest checkpoint."),
        click.option("--overwrite", is_flag=True,
                     help="Replace the outputs of an earlier run in --out."),
        click.option("--ignore-gates", is_flag=True,
                     help="Continue past a stage whose validation Sharpe misses its gate."),
        click.option("--checkpoint-freq", type=int,
                     help="Steps between checkpoints (default: a tenth of the stage)."),
        click.option("--eval-freq", type=int, default=0, show_default=True,
                     help="Steps between evaluations on the selection window; keeps "
                          "models/<stage>/best.zip (0: off)."),
        click.option("--auto-optimize", is_flag=True,
                     help="Tune learning_rate, n_steps and ent_coef per stage with Optuna first."),
        click.option("--tuner", default="optuna", show_default=True, help="Tuner plugin."),
        click.option("--storage", help="Optuna storage URL shared by several workers "
                                       "(default: SQLite in models/<stage>/optuna.db)."),
        click.option("--trials", type=int, help="Trial budget instead of the stage's (15)."),
        click.option("--logger", "loggers", multiple=True,
                     help="Metric logger (repeatable): tensorboard, wandb, jsonl; default "
                          "tensorboard + jsonl."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
        stage_file_option,
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _train_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`ploutos_core.api.train_curriculum` from the options."""
    return {
        "out_dir": kw["out_dir"], "source": kw["source"], "data_dir": kw["data_dir"],
        "cache_dir": kw["cache_dir"], "refresh": kw["refresh"], "seed": kw["seed"],
        "device": kw["device"], "scale": kw["scale"], "n_envs": kw["n_envs"],
        "algorithm": kw["algorithm"], "resume": kw["resume"], "overwrite": kw["overwrite"],
        "ignore_gates": kw["ignore_gates"], "checkpoint_freq": kw["checkpoint_freq"],
        "eval_freq": kw["eval_freq"], "auto_optimize": kw["auto_optimize"],
        "tuner": kw["tuner"], "storage": kw["storage"], "trials": kw["trials"],
        "loggers": kw["loggers"] or None, "progress": not kw["no_progress"],
    }


def _summarise(results: list[Any]) -> None:
    for result in results:
        model = result.final_model or result.last_checkpoint
        click.echo(f"{result.stage}: {model}")


@click.group("run")
def run_group() -> None:
    """Train the curriculum or a single stage."""


@run_group.command("curriculum")
@click.option("--curriculum", default="default", show_default=True,
              help="Which curriculum (stages declare the one they belong to).")
@click.option("--stages", "selection",
              help="Stages to run: positions like 1-3 or 2,3, or names like stage1,stage2.")
@click.option("--load-model", type=click.Path(path_type=Path),
              help="Start the first selected stage from this model's weights.")
@run_options
@pass_app
def run_curriculum(app: AppContext, /, curriculum: str, selection: str | None,
                   load_model: Path | None, **kw: Any) -> None:
    """Train the stages in order, each starting from the previous stage's final model."""
    result = train_curriculum(curriculum, stages=selection, load_model=load_model,
                              registry=app.registry(kw["stage_files"]), **_train_kwargs(kw))
    _summarise(list(result.stages))


@run_group.command("stage")
@click.argument("name")
@click.option("--load-model", type=click.Path(path_type=Path),
              help="Start from this model's weights (e.g. models/stage1_final).")
@run_options
@pass_app
def run_stage(app: AppContext, /, name: str, load_model: Path | None, **kw: Any) -> None:
    """Train one stage, from scratch or from --load-model."""
    result = train_stage(name, load_model=load_model, registry=app.registry(kw["stage_files"]),
                         **_train_kwargs(kw))
    _summarise(list(result.stages))
