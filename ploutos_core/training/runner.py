"""The curriculum runner: for each stage, (tune) → train with checkpoints → evaluate on
validation → gate → save ``<stage>_final`` → the next stage starts from it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import click

from ploutos_core.agents.device import resolve_device
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.config.stage import Hyperparameters, StageSpec, stage_to_dict
from ploutos_core.errors import ConfigError, GateFailedError
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.evaluate import evaluate_agent
from ploutos_core.evaluation.gate import judge_gate
from ploutos_core.evaluation.report import format_table, write_reports
from ploutos_core.pluginmanager.manager import plugin_infos
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.runfiles.manifest import Manifest, options_record
from ploutos_core.tracking.session import logger_names
from ploutos_core.training.builder import (
    build_agent,
    build_env,
    fit_to_budget,
    prepare_stage,
    resumed_hyperparameters,
)
from ploutos_core.training.context import RunContext, RunOptions, StageContext
from ploutos_core.training.loop import train_agent
from ploutos_core.training.records import StageResult, StageRun
from ploutos_core.tuning.study import tune_stage

__all__ = ["CurriculumRunner", "RunOptions"]


class CurriculumRunner:
    """Runs stages in order, each starting from the previous stage's final model.

    :param registry: what the plugins registered (event hooks are called on its manager).
    :param options: the run's settings.
    :param echo: where progress lines go.
    """

    def __init__(self, registry: Registry, options: RunOptions,
                 echo: Callable[[str], None] = click.echo) -> None:
        self.context = RunContext(registry=registry, options=options,
                                  device=resolve_device(options.device), echo=echo)

    @property
    def layout(self) -> RunLayout:
        """The run directory's layout."""
        return self.context.layout

    def run(self, stages: Sequence[StageSpec]) -> list[StageResult]:
        """Run ``stages`` in order and return their results.

        :raises GateFailedError: when a stage misses its gate (unless ``ignore_gates``).
        :raises TrainingInterrupted: on SIGINT/SIGTERM, after saving a checkpoint.
        """
        self.check_before_training(stages)
        # The manifest is written with the first stage record, once data loaded: a run
        # that fails on bad input leaves no files behind.
        run = self.context = attrs.evolve(
            self.context, manifest=Manifest(self.layout.manifest(), self._run_record(stages)))
        results: list[StageResult] = []
        start_from = run.options.load_model
        for position, stage in enumerate(stages, start=1):
            result = run_stage(run, stage, position, start_from)
            results.append(result)
            start_from = result.final_model
        return results

    def check_before_training(self, stages: Sequence[StageSpec]) -> None:
        """Refuse, before any training, what would fail later.

        :raises ConfigError: unknown names, earlier outputs in the way, an algorithm that
            cannot carry weights between asset counts, or stages whose networks differ.
        """
        registry, options, layout = self.context.registry, self.context.options, self.layout
        for stage in stages:
            registry.env_builder(stage.env_builder)
            algorithm = registry.algorithm(options.algorithm or stage.algorithm)
            if stage.env.day_filter:
                registry.day_filter(stage.env.day_filter)
                if stage.universe.enabled:
                    raise ConfigError(f"{stage.name}: a day filter and a [stage.universe] "
                                      f"cannot be combined; remove one of them")
            if stage.universe.enabled and \
                    not registry.env_builder(stage.env_builder).supports_universe:
                raise ConfigError(f"{stage.name}: env builder {stage.env_builder!r} cannot "
                                  f"train on a [stage.universe]; use env_builder = "
                                  f"\"portfolio\" or remove the universe")
            if not (options.resume or options.overwrite) and layout.has_outputs(stage.name):
                raise ConfigError(
                    f"{layout.stage_dir(stage.name)} already holds outputs of an earlier "
                    f"run; pass --resume to continue it, --overwrite to replace it, or choose "
                    f"another --out"
                )
            transfers = stage is not stages[0] or options.load_model is not None
            if transfers and not algorithm.supports_transfer:
                raise ConfigError(
                    f"algorithm {algorithm.name!r} cannot transfer weights between stages "
                    f"(its policy depends on the asset count); run the stages one at a time "
                    f"with 'ploutos run stage', or use --algorithm ppo"
                )
        widths = {stage.hyperparameters.hidden_size for stage in stages}
        if len(widths) > 1:
            listed = ", ".join(f"{s.name}={s.hyperparameters.hidden_size}" for s in stages)
            raise ConfigError(f"the stages' hidden_size differ ({listed}); weights transfer "
                              f"only between equal networks: give every stage the same width")
        registry.data_source(options.data.source)

    def _run_record(self, stages: Sequence[StageSpec]) -> dict[str, Any]:
        context, options = self.context, self.context.options
        return {"stages": [s.name for s in stages], "seed": options.seed,
                "device": context.device, "scale": options.scale,
                "source": options.data.source,
                "data_dir": str(options.data.data_dir) if options.data.data_dir else None,
                "resume": options.resume, "ignore_gates": options.ignore_gates,
                "auto_optimize": options.auto_optimize,
                "load_model": str(options.load_model) if options.load_model else None,
                "eval_freq": options.eval_freq,
                "loggers": logger_names(context.registry, options.loggers),
                "plugins": [attrs.asdict(info) for info in plugin_infos(context.registry.pm)],
                "options": options_record(options)}


# --- one stage ------------------------------------------------------------------------


def run_stage(run: RunContext, stage: StageSpec, position: int, start_from: Path | None
              ) -> StageResult:
    """Train, evaluate and gate one stage of ``run``."""
    layout, options = run.layout, run.options
    final = layout.final_model(stage.name)
    if options.resume and final.exists():
        run.echo(f"{stage.name}: already finished ({final}); skipping")
        metadata = read_metadata(final)
        return StageResult(stage=stage.name, final_model=final, last_checkpoint=None,
                           num_timesteps=int(metadata.get("num_timesteps", 0)),
                           train_seconds=0.0, steps_per_second=0.0, gate_passed=None)
    ctx = prepare_stage(run, stage, position)
    resume_from = layout.newest_checkpoint(stage.name) if options.resume else None
    hyperparameters = choose_hyperparameters(ctx, start_from, resume_from)
    env = build_env(ctx)
    record = StageRun(stage=stage, position=position, run_dir=options.out_dir,
                      seed=options.seed, device=run.device, timesteps=ctx.timesteps,
                      n_envs=ctx.n_envs, hyperparameters=hyperparameters,
                      algorithm=ctx.algorithm.name, start_from=start_from,
                      resume_from=resume_from, selection_trials=tuning_trials(ctx))
    agent = build_agent(ctx, env, hyperparameters, start_from=start_from,
                        resume_from=resume_from)
    run.record_stage(stage.name, **_stage_record(ctx, record))
    run.call_event("ploutos_before_stage", run=record)
    run.echo(f"{stage.name}: training {ctx.timesteps:,} steps on {','.join(stage.tickers)} "
             f"with {ctx.algorithm.name} ({ctx.n_envs} envs, {run.device})")
    started = time.monotonic()
    monitor = train_agent(ctx, agent, record, env)
    train_seconds = time.monotonic() - started
    last = monitor.checkpoint(agent.num_timesteps)
    validation = evaluate_agent(agent, ctx.registry, stage, ctx.panel, "validation",
                                model=str(last), trials=record.selection_trials)
    training = {**record.to_dict(), "num_timesteps": agent.num_timesteps,
                "tuned": options.auto_optimize}
    files = write_reports(validation, layout.report_dir(stage.name), training=training)
    run.echo(format_table(validation))
    run.echo(f"{stage.name}: reports in {files.json.parent}")
    result = gate(run, record, validation, last, agent.num_timesteps, train_seconds,
                  monitor.steps_per_second)
    return result


def choose_hyperparameters(ctx: StageContext, start_from: Path | None,
                           resume_from: Path | None) -> Hyperparameters:
    """The stage's hyperparameters: from the checkpoint when resuming, else tuned
    (``--auto-optimize``) or the stage's, fitted to the step budget."""
    if resume_from is not None:
        saved = resumed_hyperparameters(resume_from)
        if saved is not None:
            return saved
    hp = tune_stage(ctx, start_from) if ctx.options.auto_optimize else ctx.stage.hyperparameters
    return fit_to_budget(hp, ctx.timesteps, ctx.n_envs)


def tuning_trials(ctx: StageContext) -> int:
    """Trials the stage's tuning study looked at (1 without ``--auto-optimize``)."""
    if not ctx.options.auto_optimize:
        return 1
    try:
        saved = json.loads(ctx.run.layout.optimized_params(ctx.stage.name).read_text())
        return max(1, int(saved["trials_completed"]) + int(saved["trials_pruned"]))
    except (OSError, ValueError, KeyError, TypeError):
        return 1


def gate(run: RunContext, record: StageRun, validation: EvaluationResult, last: Path,
         steps: int, train_seconds: float, steps_per_second: float) -> StageResult:
    """Promote the stage's model if its validation result passes the stage's gate.

    :raises GateFailedError: when it misses the gate and gates are not ignored.
    """
    stage = record.stage
    verdict = judge_gate(stage.gate, validation)
    passed = verdict.passed
    ignored = not passed and run.options.ignore_gates
    layout = run.layout
    final = layout.promote(last, layout.final_model(stage.name)) if passed or ignored else None
    result = StageResult(stage=stage.name, final_model=final, last_checkpoint=last,
                         num_timesteps=steps, train_seconds=train_seconds,
                         steps_per_second=steps_per_second, validation=validation,
                         gate_passed=passed, gate_ignored=ignored)
    run.record_stage(
        stage.name, final_model=str(final) if final else None, last_checkpoint=str(last),
        num_timesteps=steps, train_seconds=round(train_seconds, 3),
        steps_per_second=round(steps_per_second, 1), validation_sharpe=verdict.sharpe,
        gate=verdict.to_dict(), gate_passed=passed, gate_ignored=ignored)
    run.call_event("ploutos_after_stage", run=record, result=result)
    suffix = " (ignored: --ignore-gates)" if ignored else ""
    run.echo(f"{stage.name}: {verdict.describe()}{suffix}")
    if not passed and not ignored:
        raise GateFailedError(
            f"{stage.name}: validation Sharpe {verdict.sharpe:.2f} is below the gate "
            f"{verdict.required:.2f}; the trained model is kept at {last}; to promote it "
            f"anyway rerun with --resume --ignore-gates, or train longer / change the stage"
        )
    return result


def _stage_record(ctx: StageContext, record: StageRun) -> dict[str, Any]:
    panel = ctx.panel
    fields = record.to_dict()
    fields.pop("stage")
    return {**fields, "config": stage_to_dict(ctx.stage),
            "data": {"source": panel.source, "tickers": list(panel.tickers),
                     "first_date": str(panel.date(0)),
                     "last_date": str(panel.date(panel.n_days - 1)),
                     "days": panel.n_days, "fingerprint": panel.fingerprint()}}
