"""``ploutos evaluate``: backtest a model on a split beside its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ploutos_core.agents.device import resolve_device
from ploutos_core.agents.model_files import read_metadata, resolve_model_path
from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import (
    data_options,
    device_option,
    make_data_options,
    seed_option,
    split_list,
    stage_file_option,
)
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.stage_data import load_stage_panel
from ploutos_core.env.base import Split
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.evaluate import (
    build_backtest_env,
    evaluate_agent,
    load_for_evaluation,
    with_cost_multiplier,
)
from ploutos_core.evaluation.report import format_table, write_reports
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.layout import RunLayout


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


SCRATCH_SUFFIX = "_scratch"


def model_stage(registry: Registry, name: str | None, metadata: dict[str, Any], path: Path
                ) -> StageSpec:
    """The stage to evaluate on: ``--stage``, else the one the model file records (a
    ``ploutos compare`` scratch model, ``<stage>_scratch``, is evaluated on ``<stage>``).

    :raises ConfigError: when neither names a stage.
    """
    name = name or metadata.get("stage")
    if not name:
        raise ConfigError(f"{path} does not record its stage; pass --stage NAME")
    if name.endswith(SCRATCH_SUFFIX) and name not in registry.all("stages"):
        name = name.removesuffix(SCRATCH_SUFFIX)
    return registry.stage(name)


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
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Reports go to OUT/reports/<stage>/.")
@data_options
@seed_option
@device_option
@stage_file_option
@pass_app
def evaluate_command(app: AppContext, /, model: Path, stage_name: str | None, split: Split,
                     cost_multiplier: str, risk_free_rate: float, algorithm: str | None,
                     trials: int | None, out_dir: Path, seed: int, device: str,
                     stage_files: tuple[str, ...], **data: Any) -> None:
    """Backtest MODEL deterministically on a split, with baselines on the same days and costs.

    Writes reports/<stage>/<split>.json, .md and .png (with a _costNx suffix for
    multipliers other than 1).
    """
    registry = app.registry(stage_files)
    multipliers = parse_multipliers(cost_multiplier)
    path = resolve_model_path(model)
    metadata = read_metadata(path)
    stage = model_stage(registry, stage_name, metadata, path)
    options = make_data_options(data["source"], data["data_dir"], data["cache_dir"],
                                data["refresh"], seed)
    panel = load_stage_panel(registry.data_source(options.source), stage, options, through=split)
    resolved_device = resolve_device(device)
    layout = RunLayout(out_dir)
    agent = None
    for multiplier in multipliers:
        costed = with_cost_multiplier(stage, multiplier)
        env = build_backtest_env(registry, costed, panel, split, resolved_device)
        if agent is None:
            agent = load_for_evaluation(registry, path, stage, env, seed=seed,
                                        device=resolved_device, algorithm=algorithm)
        result = evaluate_agent(agent, registry, costed, panel, split, model=str(path),
                                risk_free_rate=risk_free_rate, env=env,
                                trials=trials or int(metadata.get("selection_trials") or 1))
        stem = split if multiplier == 1 else f"{split}_cost{multiplier:g}x"
        training = {key: metadata.get(key) for key in ("algorithm", "num_timesteps", "n_envs",
                                                       "seed", "hyperparameters", "start_from",
                                                       "selection_trials")}
        files = write_reports(result, layout.report_dir(stage.name), stem, training=training)
        click.echo(format_table(result))
        click.echo(f"wrote {files.json}, {files.markdown.name}, {files.plot.name}, "
                   f"{files.daily.name}\n")
