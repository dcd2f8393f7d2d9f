"""Tune a stage before it trains: the trial objective, the tuner call, ``optimized_params.json``.

Each trial is a short training run of the stage with the trial's
``learning_rate``, ``n_steps`` and ``ent_coef`` (everything else, costs and the
market included, is the stage's own), starting from the same weights the stage
starts from. Trials train on the train split without the stage's selection
window and report their Sharpe on that window at regular intervals, so the tuner
can prune them; the final Sharpe there is the trial's score. Validation is never
the objective of a stage with a selection window (issue 11), and the test split
is never loaded while tuning (issue 5).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ploutos_core.agents.contract import Agent, TrainingMonitor
from ploutos_core.config.stage import Hyperparameters, StageSpec
from ploutos_core.errors import ConfigError, DataError, PloutosError, TrainingInterrupted
from ploutos_core.runfiles.atomic import write_json
from ploutos_core.runfiles.lock import file_lock
from ploutos_core.training.context import StageContext
from ploutos_core.training.interrupts import StopFlag, stop_on_signals
from ploutos_core.tuning.contract import (
    TUNED,
    ReportFn,
    TrialPruned,
    TuningProblem,
    TuningResult,
    default_storage,
    format_params,
    redact_storage,
)

if TYPE_CHECKING:
    from ploutos_core.data.panel import Panel

#: version of the ``optimized_params.json`` layout.
PARAMS_FORMAT = 1
#: a trial's Sharpe is clipped to this magnitude (a flat portfolio gives ±inf).
SHARPE_LIMIT = 100.0


class TuningStopped(Exception):
    """SIGINT/SIGTERM arrived during a trial; the tuner marks the trial failed."""


def default_study_name(stage: StageSpec) -> str:
    """The study name ``run --auto-optimize`` uses, and ``ploutos tune``'s default."""
    return f"ploutos-{stage.name}"


def apply_params(hp: Hyperparameters, params: Mapping[str, Any]) -> Hyperparameters:
    """``hp`` with the tuned parameters replaced.

    :raises ConfigError: when ``params`` holds a parameter that is never tuned.
    """
    unknown = sorted(set(params) - set(TUNED))
    if unknown:
        raise ConfigError(f"tuned parameters {', '.join(unknown)} are not tunable; a tuner may "
                          f"change only {', '.join(TUNED)}")
    changes: dict[str, Any] = {}
    if "learning_rate" in params:
        changes["learning_rate"] = float(params["learning_rate"])
    if "n_steps" in params:
        changes["n_steps"] = int(params["n_steps"])
    if "ent_coef" in params:
        changes["ent_coef"] = float(params["ent_coef"])
    return attrs.evolve(hp, **changes)


def check_no_test_data(stage: StageSpec, panel: Panel) -> None:
    """Refuse to tune on prices past the end of the validation split.

    :raises DataError: when the panel reaches into the test split.
    """
    end = stage.splits.validation.end
    last = panel.date(panel.n_days - 1)
    if end is not None and last > end:
        raise DataError(
            f"{stage.name}: tuning must not see the test split, but the prices of source "
            f"{panel.source!r} run to {last}, past the end of validation ({end}); the data "
            f"source returned more than was requested"
        )


def trial_timesteps(stage: StageSpec, timesteps: int, n_envs: int) -> int:
    """Steps of one trial: ``trial_fraction`` of the stage's (scaled) budget, at least
    two steps per environment."""
    return max(2 * n_envs, round(stage.tuning.trial_fraction * timesteps))


def sharpe_value(value: float) -> float:
    """A Sharpe ratio a study can rank: NaN → ``-SHARPE_LIMIT``, clipped to ±limit."""
    if math.isnan(value):
        return -SHARPE_LIMIT
    return max(-SHARPE_LIMIT, min(SHARPE_LIMIT, float(value)))


# --- one trial --------------------------------------------------------------------------


class _TrialMonitor(TrainingMonitor):
    """Evaluates on validation at the report points; stops training when pruned or signalled."""

    def __init__(self, objective: TrialObjective, agent: Agent, report: ReportFn,
                 targets: list[int]) -> None:
        self.objective = objective
        self.agent = agent
        self.report = report
        self.targets = targets
        self.reported = 0
        self.pruned_at: tuple[int, float] | None = None

    def on_step(self, num_timesteps: int, infos: list[dict[str, Any]]) -> bool:
        return self.pruned_at is None and not self.objective.stop.requested

    def on_iteration(self, num_timesteps: int) -> None:
        if self.reported >= len(self.targets) or num_timesteps < self.targets[self.reported]:
            return
        value = self.objective.evaluate(self.agent)
        # One evaluation per update; report points the update jumped over are skipped.
        while self.reported < len(self.targets) and num_timesteps >= self.targets[self.reported]:
            self.reported += 1
        if self.report(value, self.reported):
            self.pruned_at = (self.reported, value)


class TrialObjective:
    """``objective(params, report)`` of :class:`~ploutos_core.tuning.contract.TuningProblem`
    for a stage.

    Trials train on the stage's training split without its selection window — in the
    stage's phases (its universe first, transferred tensors fixed), shrunk to the trial's
    steps — and are scored on that window (validation only for a stage that has none,
    said once).

    :param ctx: the stage, resolved for the run (data, algorithm, environments).
    :param start_from: weights every trial starts from (those the stage starts from).
    :param steps: training steps per trial.
    """

    def __init__(self, ctx: StageContext, start_from: Path | None, steps: int) -> None:
        from ploutos_core.training.builder import build_env
        from ploutos_core.training.loop import Phases
        from ploutos_core.training.selection import selection_split

        self.ctx = ctx
        self.start_from = start_from
        self.steps = steps
        self.stop = StopFlag()
        self.split = selection_split(ctx)
        self.selection_env = build_env(ctx, self.split, mode="backtest")  # type: ignore[arg-type]
        self.phases = Phases.scaled(ctx, start_from, steps)

    def __call__(self, params: Mapping[str, float | int], report: ReportFn) -> float:
        """Train one trial; report the selection Sharpe ``reports`` times; return the last.

        :raises TrialPruned: when ``report`` asks for the trial to stop.
        :raises TuningStopped: on SIGINT/SIGTERM.
        """
        from ploutos_core.training.builder import build_agent, build_env, fit_to_budget
        from ploutos_core.training.loop import learn_in_phases

        if self.stop.requested:
            raise TuningStopped(self.stop.signal_name)
        stage = self.ctx.stage
        quiet = attrs.evolve(self.ctx, run=attrs.evolve(self.ctx.run, echo=_quiet))
        hp = fit_to_budget(apply_params(stage.hyperparameters, params), self.steps,
                           quiet.n_envs)
        env = build_env(quiet)
        try:
            agent = build_agent(quiet, env, hp, start_from=self.start_from)
            reports = stage.tuning.reports
            targets = [math.ceil(self.steps * k / reports) for k in range(1, reports)]
            monitor = _TrialMonitor(self, agent, report, targets)
            # The stage's universe and freeze phases, shrunk to the trial's budget.
            learn_in_phases(quiet, agent, self.phases, monitor,
                            lambda: monitor.pruned_at is not None or self.stop.requested, env)
        finally:
            env.close()
        if self.stop.requested:
            raise TuningStopped(self.stop.signal_name)
        if monitor.pruned_at is not None:
            step, value = monitor.pruned_at
            raise TrialPruned(f"{self.split} Sharpe {value:.3f} at report {step} of {reports}")
        value = self.evaluate(agent)
        # The last report is the final score; the trial has finished, so it is not pruned.
        report(value, reports)
        return value

    def evaluate(self, agent: Agent) -> float:
        """Sharpe of ``agent`` on the selection window (a deterministic backtest)."""
        from ploutos_core.evaluation.evaluate import evaluate_agent

        ctx = self.ctx
        result = evaluate_agent(agent, ctx.registry, ctx.stage, ctx.panel,
                                self.split,  # type: ignore[arg-type]
                                model="tuning trial", env=self.selection_env)
        return sharpe_value(result.agent.summary.sharpe)


def _quiet(_: str) -> None:
    """Trials do not print what the stage prints (transfers, resumes)."""


# --- the study --------------------------------------------------------------------------


def tune_stage(ctx: StageContext, start_from: Path | None) -> Hyperparameters:
    """Tune the stage (``--auto-optimize``) and return the hyperparameters it trains with.

    Reuses ``models/<stage>/optimized_params.json`` when its study already reached
    the trial budget; otherwise runs (or resumes, or joins) the study.

    :param ctx: the stage, resolved for the run.
    :param start_from: the model the stage starts from, or ``None``.
    """
    return run_study(ctx, start_from, study_name=default_study_name(ctx.stage),
                     sampler_seed=ctx.seed)


def run_study(ctx: StageContext, start_from: Path | None, *, study_name: str,
              sampler_seed: int) -> Hyperparameters:
    """:func:`tune_stage` with an explicit study name and sampler seed (``ploutos tune``).

    :raises TrainingInterrupted: on SIGINT/SIGTERM; the study keeps finished trials.
    :raises DataError: when the stage's prices reach into the test split.
    """
    options, stage, echo = ctx.options, ctx.stage, ctx.run.echo
    tuner = ctx.registry.tuner(options.tuner)
    check_no_test_data(stage, ctx.panel)
    budget = options.trials if options.trials is not None else stage.tuning.trials
    if budget < 1:
        raise ConfigError(f"--trials must be >= 1, got {budget}")
    layout = ctx.run.layout
    stage_dir = layout.stage_dir(stage.name)
    storage = options.storage or default_storage(stage_dir)
    path = layout.optimized_params(stage.name)
    if options.overwrite and not options.resume and options.storage is None:
        # --overwrite replaces earlier outputs, the default study beside the stage included.
        for old in (stage_dir / "optuna.db", path):
            old.unlink(missing_ok=True)
    saved = _reusable(path, stage, study_name, storage, budget)
    if saved is not None:
        hp = apply_params(stage.hyperparameters, saved["params"])
        echo(f"{stage.name}: the study {study_name!r} already ran its {budget} trials; "
             f"using {format_params(saved['params'])} from {path}")
        _record(ctx, saved, path, reused=True)
        return hp
    steps = trial_timesteps(stage, ctx.timesteps, ctx.n_envs)
    objective = TrialObjective(ctx, start_from, steps)
    phases = objective.phases
    echo(f"{stage.name}: tuning {', '.join(TUNED)} with {tuner.name}: {budget} trials "
         f"of {steps:,} steps"
         + (f" (the first {phases.universe_until:,} on sub-universes)"
            if phases.universe_until else "")
         + f" scored on {objective.split}, study {study_name!r} in "
         f"{redact_storage(storage)}" + (f", from {start_from}" if start_from else ""))
    problem = TuningProblem(stage_name=stage.name, space=stage.tuning, objective=objective,
                            storage=storage, study_name=study_name, n_trials=budget,
                            seed=sampler_seed,
                            on_trial=lambda line: echo(f"{stage.name}: {line}"),
                            score_name=f"{objective.split} Sharpe")
    started = time.monotonic()
    created = not stage_dir.exists()
    stage_dir.mkdir(parents=True, exist_ok=True)
    resume = (f"the study keeps its finished trials in {redact_storage(storage)}; run the same "
              f"command again to resume it")
    try:
        with stop_on_signals() as stop:
            objective.stop = stop
            result = tuner.tune(problem)
    except PloutosError:
        if created and not any(stage_dir.iterdir()):
            stage_dir.rmdir()  # a refused tuning (e.g. a bad storage) leaves no folder
        raise
    except TuningStopped as exc:
        raise TrainingInterrupted(f"{stage.name}: tuning stopped by {exc}; {resume}",
                                  exit_code=objective.stop.exit_code) from exc
    except KeyboardInterrupt as exc:
        raise TrainingInterrupted(f"{stage.name}: tuning interrupted; {resume}") from exc
    record = _params_record(stage, tuner.name, result, budget, steps, start_from, sampler_seed,
                            objective.split)
    # Workers sharing a run directory finish at about the same time: the first writes the
    # file (atomically), the others find it complete and leave it as it is (issue 14).
    with file_lock(stage_dir / ".optimized_params.lock"):
        written = _reusable(path, stage, study_name, storage, budget)
        if written is None:
            write_json(path, record)
        else:
            echo(f"{stage.name}: {path.name} was written by another worker of the study "
                 f"(pid {written.get('written_by', {}).get('pid', '?')}); leaving it as it is")
            record = written
    _record(ctx, record, path, reused=written is not None)
    echo(f"{stage.name}: tuned in {time.monotonic() - started:.0f}s: best {objective.split} "
         f"Sharpe {result.best_value:.3f} with {format_params(result.best_params)} "
         f"({result.trials_completed} trials completed, {result.trials_pruned} pruned, "
         f"budget {budget}); " + (f"saved to {path}" if written is None
                                  else f"{path} holds it (another worker wrote it)"))
    return apply_params(stage.hyperparameters, result.best_params)


def _params_record(stage: StageSpec, tuner: str, result: TuningResult, budget: int,
                   steps: int, start_from: Path | None, sampler_seed: int, split: str
                   ) -> dict[str, Any]:
    hp = apply_params(stage.hyperparameters, result.best_params)
    return {
        "format": PARAMS_FORMAT,
        "stage": stage.name,
        "tuner": tuner,
        "objective": f"{split} Sharpe",
        "selection_split": split,
        "params": {key: result.best_params[key] for key in TUNED if key in result.best_params},
        "best_value": result.best_value,
        "trials_completed": result.trials_completed,
        "trials_pruned": result.trials_pruned,
        "trials_budget": budget,
        "study_name": result.study_name,
        "storage": redact_storage(result.storage),
        "trial_timesteps": steps,
        "start_from": str(start_from) if start_from else None,
        "sampler_seed": sampler_seed,
        "written_by": {"pid": os.getpid(), "host": socket.gethostname()},
        "hyperparameters": attrs.asdict(hp),
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _reusable(path: Path, stage: StageSpec, study_name: str, storage: str, budget: int
              ) -> dict[str, Any] | None:
    """The saved record when it belongs to this study and that study reached ``budget``."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("format") != PARAMS_FORMAT:
        return None
    same = (saved.get("stage") == stage.name and saved.get("study_name") == study_name
            and saved.get("storage") == redact_storage(storage)
            and isinstance(saved.get("params"), dict))
    finished = int(saved.get("trials_completed", 0)) + int(saved.get("trials_pruned", 0))
    return saved if same and finished >= budget else None


def _record(ctx: StageContext, record: Mapping[str, Any], path: Path, reused: bool) -> None:
    """Say in the run manifest which parameters the tuner chose and where they came from."""
    ctx.run.record_stage(
        ctx.stage.name, tuned_params=dict(record["params"]),
        tuning={"file": str(path), "reused": reused,
                **{key: record.get(key) for key in (
                    "tuner", "best_value", "trials_completed", "trials_pruned",
                    "trials_budget", "study_name", "storage", "selection_split")}})
