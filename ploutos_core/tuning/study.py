"""Tune a stage before it trains: the trial objective, the tuner call, ``optimized_params.json``.

Each trial is a short training run of the stage with the trial's
``learning_rate``, ``n_steps`` and ``ent_coef`` (everything else, costs and the
market included, is the stage's own), starting from the same weights the stage
starts from. It reports the validation Sharpe at regular intervals so the tuner
can prune it, and returns the final validation Sharpe. The panel ends with the
validation split: the test split is never loaded while tuning (issue 5).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ploutos_core.agents.contract import Agent, TrainingMonitor
from ploutos_core.runfiles.atomic import write_json
from ploutos_core.errors import ConfigError, DataError, TrainingInterrupted
from ploutos_core.training.interrupts import StopFlag, stop_on_signals
from ploutos_core.config.stage import Hyperparameters, StageSpec
from ploutos_core.tuning.contract import ReportFn, TrialPruned, TuningProblem, TuningResult, default_storage

if TYPE_CHECKING:
    from ploutos_core.data.panel import Panel
    from ploutos_core.training.runner import CurriculumRunner

#: the hyperparameters a tuner may change; nothing else is ever tuned.
TUNED = ("learning_rate", "n_steps", "ent_coef")
#: version of the ``optimized_params.json`` layout.
PARAMS_FORMAT = 1
#: validation Sharpe is clipped to this magnitude (a flat portfolio gives ±inf).
SHARPE_LIMIT = 100.0


class TuningStopped(Exception):
    """SIGINT/SIGTERM arrived during a trial; the tuner marks the trial failed."""


def default_study_name(stage: StageSpec) -> str:
    """The study name ``run --auto-optimize`` uses, and ``ploutos tune``'s default."""
    return f"ploutos-{stage.name}"


def redact_storage(storage: str) -> str:
    """``storage`` with any password in a URL replaced by ``***``."""
    if "://" not in storage:
        return storage
    parts = urlsplit(storage)
    if parts.password is None:
        return storage
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def format_params(params: Mapping[str, Any]) -> str:
    """``learning_rate=1.2e-04 n_steps=256 ent_coef=3.1e-03``."""
    shown = []
    for key in sorted(params, key=lambda k: (TUNED.index(k) if k in TUNED else len(TUNED), k)):
        value = params[key]
        shown.append(f"{key}={value:.2e}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(shown)


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
    """A validation Sharpe a study can rank: NaN → ``-SHARPE_LIMIT``, clipped to ±limit."""
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
    """``objective(params, report)`` of :class:`~ploutos_core.tuning.TuningProblem` for a stage.

    :param runner: supplies the registry, options, device and start mask.
    :param stage: the stage being tuned.
    :param panel: its prices through the validation split.
    :param start_from: weights every trial starts from (those the stage starts from).
    :param steps: training steps per trial.
    :param n_envs: environments per trial.
    """

    def __init__(self, runner: CurriculumRunner, stage: StageSpec, panel: Panel,
                 start_from: Path | None, steps: int, n_envs: int) -> None:
        from ploutos_core.evaluation.evaluate import build_backtest_env

        self.runner = runner
        self.stage = stage
        self.panel = panel
        self.start_from = start_from
        self.steps = steps
        self.n_envs = n_envs
        self.stop = StopFlag()
        source = runner.registry.data_source(runner.options.data.source)
        self.start_mask = runner.start_mask(stage, panel, source)
        self.validation_env = build_backtest_env(runner.registry, stage, panel, "validation",
                                                 runner.device)

    def __call__(self, params: Mapping[str, float | int], report: ReportFn) -> float:
        """Train one trial; report validation Sharpe ``reports`` times; return the last.

        :raises TrialPruned: when ``report`` asks for the trial to stop.
        :raises TuningStopped: on SIGINT/SIGTERM.
        """
        from ploutos_core.agents.contract import TrainingSetup
        from ploutos_core.env.base import EnvRequest
        from ploutos_core.training.runner import fit_to_budget

        if self.stop.requested:
            raise TuningStopped(self.stop.signal_name)
        runner, stage = self.runner, self.stage
        hp = fit_to_budget(apply_params(stage.hyperparameters, params), self.steps, self.n_envs)
        env = runner.registry.env_builder(stage.env_builder).build(EnvRequest(
            panel=self.panel, stage=stage, split="train", n_envs=self.n_envs,
            seed=runner.options.seed, start_mask=self.start_mask, device=runner.device))
        try:
            agent = runner.algorithm_for(stage).build(env, TrainingSetup(
                hyperparameters=hp, seed=runner.options.seed, device=runner.device))
            if self.start_from is not None:
                agent.transfer_from(self.start_from)
            reports = stage.tuning.reports
            targets = [math.ceil(self.steps * k / reports) for k in range(1, reports)]
            monitor = _TrialMonitor(self, agent, report, targets)
            agent.learn(self.steps, monitor)
        finally:
            env.close()
        if self.stop.requested:
            raise TuningStopped(self.stop.signal_name)
        if monitor.pruned_at is not None:
            step, value = monitor.pruned_at
            raise TrialPruned(f"validation Sharpe {value:.3f} at report {step} of {reports}")
        value = self.evaluate(agent)
        # The last report is the final score; the trial has finished, so it is not pruned.
        report(value, reports)
        return value

    def evaluate(self, agent: Agent) -> float:
        """Validation Sharpe of ``agent`` (deterministic backtest of the validation split)."""
        from ploutos_core.evaluation.evaluate import evaluate_agent

        result = evaluate_agent(agent, self.runner.registry, self.stage, self.panel,
                                "validation", model="tuning trial", env=self.validation_env)
        return sharpe_value(result.agent.summary.sharpe)


# --- the study --------------------------------------------------------------------------


def tune_stage(runner: CurriculumRunner, stage: StageSpec, panel: Panel,
               start_from: Path | None, timesteps: int, n_envs: int) -> Hyperparameters:
    """Tune ``stage`` (``--auto-optimize``) and return the hyperparameters it trains with.

    Reuses ``models/<stage>/optimized_params.json`` when its study already reached
    the trial budget; otherwise runs (or resumes, or joins) the study.

    :param runner: the curriculum runner (registry, options, layout, echo, manifest).
    :param stage: the stage.
    :param panel: its prices through the validation split.
    :param start_from: the model the stage starts from, or ``None``.
    :param timesteps: the stage's (scaled) step budget.
    :param n_envs: environments of the stage.
    """
    return run_study(runner, stage, panel, start_from, timesteps, n_envs,
                     study_name=default_study_name(stage), sampler_seed=runner.options.seed)


def run_study(runner: CurriculumRunner, stage: StageSpec, panel: Panel,
              start_from: Path | None, timesteps: int, n_envs: int, *, study_name: str,
              sampler_seed: int) -> Hyperparameters:
    """:func:`tune_stage` with an explicit study name and sampler seed (``ploutos tune``).

    :raises TrainingInterrupted: on SIGINT/SIGTERM; the study keeps finished trials.
    :raises DataError: when ``panel`` reaches into the test split.
    """
    options = runner.options
    tuner = runner.registry.tuner(options.tuner)
    check_no_test_data(stage, panel)
    budget = options.trials if options.trials is not None else stage.tuning.trials
    if budget < 1:
        raise ConfigError(f"--trials must be >= 1, got {budget}")
    layout = runner.layout
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
        runner.echo(f"{stage.name}: the study {study_name!r} already ran its {budget} trials; "
                    f"using {format_params(saved['params'])} from {path}")
        _record(runner, stage, saved, path, reused=True)
        return hp
    steps = trial_timesteps(stage, timesteps, n_envs)
    objective = TrialObjective(runner, stage, panel, start_from, steps, n_envs)
    runner.echo(f"{stage.name}: tuning {', '.join(TUNED)} with {tuner.name}: {budget} trials "
                f"of {steps:,} steps, study {study_name!r} in {redact_storage(storage)}"
                + (f", from {start_from}" if start_from else ""))
    problem = TuningProblem(stage_name=stage.name, space=stage.tuning, objective=objective,
                            storage=storage, study_name=study_name, n_trials=budget,
                            seed=sampler_seed,
                            on_trial=lambda line: runner.echo(f"{stage.name}: {line}"))
    started = time.monotonic()
    stage_dir.mkdir(parents=True, exist_ok=True)
    resume = (f"the study keeps its finished trials in {redact_storage(storage)}; run the same "
              f"command again to resume it")
    try:
        with stop_on_signals() as stop:
            objective.stop = stop
            result = tuner.tune(problem)
    except TuningStopped as exc:
        raise TrainingInterrupted(f"{stage.name}: tuning stopped by {exc}; {resume}") from exc
    except KeyboardInterrupt as exc:
        raise TrainingInterrupted(f"{stage.name}: tuning interrupted; {resume}") from exc
    record = _params_record(stage, tuner.name, result, budget, steps, start_from, sampler_seed)
    write_json(path, record)
    _record(runner, stage, record, path, reused=False)
    runner.echo(f"{stage.name}: tuned in {time.monotonic() - started:.0f}s: best validation "
                f"Sharpe {result.best_value:.3f} with {format_params(result.best_params)} "
                f"({result.trials_completed} trials completed, {result.trials_pruned} pruned, "
                f"budget {budget}); saved to {path}")
    return apply_params(stage.hyperparameters, result.best_params)


def _params_record(stage: StageSpec, tuner: str, result: TuningResult, budget: int,
                   steps: int, start_from: Path | None, sampler_seed: int) -> dict[str, Any]:
    hp = apply_params(stage.hyperparameters, result.best_params)
    return {
        "format": PARAMS_FORMAT,
        "stage": stage.name,
        "tuner": tuner,
        "objective": "validation Sharpe",
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


def _record(runner: CurriculumRunner, stage: StageSpec, record: Mapping[str, Any], path: Path,
            reused: bool) -> None:
    """Say in the run manifest which parameters the tuner chose and where they came from."""
    if runner.manifest is None:
        return
    runner.manifest.record_stage(
        stage.name, tuned_params=dict(record["params"]),
        tuning={"file": str(path), "reused": reused,
                **{key: record.get(key) for key in (
                    "tuner", "best_value", "trials_completed", "trials_pruned",
                    "trials_budget", "study_name", "storage")}})
