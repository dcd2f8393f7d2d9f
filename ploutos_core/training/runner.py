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

from ploutos_core.agents.contract import Agent
from ploutos_core.agents.device import resolve_device
from ploutos_core.agents.model_files import continues_itself, read_metadata
from ploutos_core.config.stage import Hyperparameters, StageSpec, stage_to_dict
from ploutos_core.errors import ConfigError, GateFailedError, ModelError, TrainingInterrupted
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.evaluate import evaluate_agent
from ploutos_core.evaluation.gate import judge_gate
from ploutos_core.evaluation.report import format_table, write_reports
from ploutos_core.pluginmanager.manager import plugin_infos
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.atomic import remove_stale_temporaries
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.runfiles.lock import run_lock
from ploutos_core.runfiles.manifest import Manifest, options_record
from ploutos_core.tracking.session import logger_names
from ploutos_core.training.builder import (
    build_agent,
    build_env,
    check_stage_data,
    fit_to_budget,
    prepare_stage,
    resumed_hyperparameters,
    training_setup,
)
from ploutos_core.training.context import RunContext, RunOptions, StageContext
from ploutos_core.training.interrupts import StopFlag, stop_on_signals
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
        options = self.context.options
        with run_lock(options.out_dir, echo=self.context.echo), stop_on_signals() as stop:
            # Under the lock: another process may have written since the first check.
            self.check_before_training(stages)
            stale = remove_stale_temporaries(options.out_dir)
            if stale:
                self.context.echo(f"removed {len(stale)} temporary file(s) an interrupted run "
                                  f"left in {options.out_dir}")
            names = [stage.name for stage in stages]
            if options.resume:
                check_resume_matches(self.layout.manifest(), self._run_record(stages), stages)
            if options.overwrite:
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                moved = self.layout.move_aside(names, stamp)
                if moved is not None:
                    self.context.echo(f"--overwrite: moved the earlier outputs of "
                                      f"{', '.join(names)} to {moved}")
            pending = [stage for stage in stages
                       if not (options.resume and self.layout.final_model(stage.name).exists())]
            if len(pending) > 1:
                check_stage_data(self.context, pending)
            # The manifest is written with the first stage record, once data loaded: a run
            # that fails on bad input leaves no files behind.
            manifest = Manifest(self.layout.manifest(), self._run_record(stages))
            if options.overwrite:
                manifest.forget(names)
            run = self.context = attrs.evolve(self.context, manifest=manifest)
            results: list[StageResult] = []
            start_from = options.load_model
            for position, stage in enumerate(stages, start=1):
                result = run_stage(run, stage, position, start_from, stop)
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
            try:
                algorithm.parse_options(stage.algorithm_options)
            except ConfigError as exc:
                raise ConfigError(f"{stage.name}: {exc}") from exc
            if stage.promote == "best" and not (options.eval_freq or stage.selection_every):
                raise ConfigError(f"{stage.name}: promote = \"best\" needs evaluations on the "
                                  f"selection window: set selection_every or --eval-freq")
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
            if stage.universe.enabled and not algorithm.supports_universe:
                raise ConfigError(f"{stage.name}: algorithm {algorithm.name!r} cannot train "
                                  f"on a [stage.universe]; remove the universe from the "
                                  f"stage or use --algorithm ppo")
            if not (options.resume or options.overwrite) and layout.has_outputs(stage.name):
                raise ConfigError(
                    f"{layout.stage_dir(stage.name)} already holds outputs of an earlier "
                    f"run; pass --resume to continue it, --overwrite to replace it, or choose "
                    f"another --out"
                )
            transfers = stage is not stages[0] or options.load_model is not None
            if transfers and stage.transfer.freeze_fraction and not algorithm.supports_freeze \
                    and (stage is not stages[0] or not continues_itself(options.load_model,
                                                                        stage.name)):
                raise ConfigError(f"{stage.name}: algorithm {algorithm.name!r} cannot keep "
                                  f"the transferred tensors fixed, which [stage.transfer] "
                                  f"freeze_fraction needs; set it to 0 or use --algorithm ppo")
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


#: run options that must match when a run is resumed (what shapes its results).
RESUME_KEYS = ("seed", "scale", "source", "data_dir", "n_envs", "algorithm", "load_model")


def check_resume_matches(manifest: Path, record: dict[str, Any],
                         stages: Sequence[StageSpec]) -> None:
    """Refuse ``--resume`` with options or stage settings other than the interrupted run's.

    :raises ConfigError: listing every difference.
    """
    try:
        previous = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return  # nothing recorded (e.g. killed before the first stage started)
    before = previous.get("run", {})
    now_options, then_options = record["options"], before.get("options", {})
    differences = []
    for key in RESUME_KEYS:
        if key in before:
            then = before[key]
        elif key in then_options:
            then = then_options[key]
        else:
            continue
        now = record[key] if key in record else now_options.get(key)
        now, then = ("none" if value is None else value for value in (now, then))
        if str(now) != str(then):
            differences.append(f"{key} {now} (the interrupted run used {then})")
    for stage in stages:
        recorded = previous.get("stages", {}).get(stage.name, {}).get("config")
        if recorded is not None and recorded != json.loads(json.dumps(stage_to_dict(stage),
                                                                      default=str)):
            differences.append(f"the settings of stage {stage.name} changed since")
    if differences:
        raise ConfigError(f"--resume must continue the run as it was started: "
                          f"{'; '.join(differences)}; rerun with the original options, or "
                          f"start over with --overwrite")


# --- one stage ------------------------------------------------------------------------


def run_stage(run: RunContext, stage: StageSpec, position: int, start_from: Path | None,
              stop: StopFlag | None = None) -> StageResult:
    """Train, evaluate and gate one stage of ``run``.

    :param stop: set by SIGINT/SIGTERM outside training; the stage stops at the next
        safe point (after the checkpoint, the reports or the gate) with
        :class:`TrainingInterrupted`.
    """
    stop = stop or StopFlag()
    layout, options = run.layout, run.options
    final = layout.final_model(stage.name)
    if options.resume and final.exists():
        run.echo(f"{stage.name}: already finished ({final}); skipping")
        metadata = read_metadata(final)
        return StageResult(stage=stage.name, final_model=final, last_checkpoint=None,
                           num_timesteps=int(metadata.get("num_timesteps", 0)),
                           train_seconds=0.0, steps_per_second=0.0, gate_passed=None)
    ctx = prepare_stage(run, stage, position)
    if options.resume:
        check_same_data(run, ctx)
    env = build_env(ctx)
    candidates = [path for _, path in reversed(layout.checkpoints(stage.name))] \
        if options.resume else []
    while True:
        resume_from = candidates.pop(0) if candidates else None
        try:
            hyperparameters = choose_hyperparameters(ctx, start_from, resume_from)
            agent = build_agent(ctx, env, hyperparameters, start_from=start_from,
                                resume_from=resume_from)
            break
        except ModelError as exc:
            if resume_from is None:
                raise
            moved = layout.quarantine(resume_from)
            run.echo(f"{stage.name}: the checkpoint {resume_from.name} is unreadable ({exc}); "
                     f"moved it to {moved.name} and "
                     + (f"resuming from {candidates[0].name}" if candidates
                        else "starting the stage afresh"))
    record = StageRun(stage=stage, position=position, run_dir=options.out_dir,
                      seed=options.seed, device=run.device, timesteps=ctx.timesteps,
                      n_envs=ctx.n_envs, hyperparameters=hyperparameters,
                      algorithm=ctx.algorithm.name, start_from=start_from,
                      resume_from=resume_from, selection_trials=tuning_trials(ctx))
    run.record_stage(stage.name, **_stage_record(ctx, record))
    run.call_event("ploutos_before_stage", run=record)
    run.echo(f"{stage.name}: training {ctx.timesteps:,} steps on {','.join(stage.tickers)} "
             f"with {ctx.algorithm.name} ({ctx.n_envs} envs, {run.device})")
    started = time.monotonic()
    stop_if_requested(stop, stage.name, "before training")
    monitor = train_agent(ctx, agent, record, env, stop)
    train_seconds = time.monotonic() - started
    last = monitor.checkpoint(agent.num_timesteps)
    stop_if_requested(stop, stage.name, f"after training (checkpoint {last})")
    chosen, agent_for_validation = promoted_model(ctx, agent, last, hyperparameters)
    validation = evaluate_agent(agent_for_validation, ctx.registry, stage, ctx.panel,
                                "validation", model=str(chosen),
                                trials=record.selection_trials)
    training = {**record.to_dict(), "num_timesteps": agent.num_timesteps,
                "tuned": options.auto_optimize}
    files = write_reports(validation, layout.report_dir(stage.name), training=training)
    run.echo(format_table(validation))
    run.echo(f"{stage.name}: reports in {files.json.parent}")
    stop_if_requested(stop, stage.name, "after its validation reports")
    result = gate(run, record, validation, chosen, agent.num_timesteps, train_seconds,
                  monitor.steps_per_second)
    stop_if_requested(stop, stage.name, "after its gate")
    return result


def promoted_model(ctx: StageContext, agent: Agent, last: Path,
                   hyperparameters: Hyperparameters) -> tuple[Path, Agent]:
    """The model the stage promotes and the agent that holds it: the last checkpoint, or
    with ``promote = "best"`` the best model on the selection window (``best.zip``)."""
    best = ctx.run.layout.best_model(ctx.stage.name)
    if ctx.stage.promote != "best" or not best.exists():
        return last, agent
    selected = read_metadata(best)
    ctx.run.echo(f"{ctx.stage.name}: promoting the best model on the selection window "
                 f"(step {selected.get('selection_step', '?')}, Sharpe "
                 f"{selected.get('selection_sharpe', float('nan')):.2f} there), not the last")
    env = build_env(ctx, "validation", mode="backtest")
    return best, ctx.algorithm.load(best, env, training_setup(ctx, hyperparameters))


def stop_if_requested(stop: StopFlag, stage: str, where: str) -> None:
    """Stop at a safe point when SIGINT/SIGTERM arrived after training.

    :raises TrainingInterrupted: with the signal's exit code.
    """
    if stop.requested:
        raise TrainingInterrupted(f"{stage}: stopped by {stop.signal_name} {where}; continue "
                                  f"with the same command and --resume",
                                  exit_code=stop.exit_code)


def check_same_data(run: RunContext, ctx: StageContext) -> None:
    """Refuse to resume a stage on other prices than the interrupted run trained on.

    :raises ConfigError: naming both fingerprints.
    """
    recorded = (run.manifest.data["stages"].get(ctx.stage.name, {}).get("data", {})
                if run.manifest is not None else {})
    then, now = recorded.get("fingerprint"), ctx.panel.fingerprint()
    if then and then != now:
        raise ConfigError(f"{ctx.stage.name}: the prices differ from the interrupted run's "
                          f"(data fingerprint {now}, then {then}); resume with the same data "
                          f"source and files, or start over with --overwrite")


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
