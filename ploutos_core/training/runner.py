"""The curriculum runner: for each stage, (tune) → train with checkpoints → evaluate on
validation → gate → save ``<stage>_final`` → the next stage starts from it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import Agent, Algorithm, TrainingSetup
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.data.panel import Panel
from ploutos_core.data.source import DataSource
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.agents.device import resolve_device
from ploutos_core.env.base import EnvRequest
from ploutos_core.env.episode_starts import episode_start_mask
from ploutos_core.errors import ConfigError, GateFailedError, TrainingInterrupted
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.evaluate import evaluate_agent
from ploutos_core.evaluation.gate import judge_gate
from ploutos_core.evaluation.report import format_table, write_reports
from ploutos_core.tracking.session import logger_names
from ploutos_core.runfiles.manifest import Manifest, options_record
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.training.records import Checkpoint, StageResult, StageRun
from ploutos_core.training.interrupts import stop_on_signals
from ploutos_core.config.stage import Hyperparameters, StageSpec, stage_to_dict
from ploutos_core.training.monitor import StageMonitor


@attrs.frozen
class RunOptions:
    """Settings of one ``ploutos run`` invocation.

    :param out_dir: the run directory (``--out``).
    :param data: where prices come from.
    :param seed: seed of networks, sampling and synthetic data.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    :param scale: multiplies every stage's timesteps (``--scale 0.001`` for a smoke run).
    :param n_envs: environments per stage instead of the stage's figure.
    :param algorithm: algorithm for every stage instead of the stage's own.
    :param resume: skip finished stages and continue the interrupted one.
    :param overwrite: replace outputs of an earlier run instead of refusing.
    :param ignore_gates: continue past a stage that misses its validation gate.
    :param checkpoints: checkpoints per stage (when ``checkpoint_freq`` is not set).
    :param checkpoint_freq: steps between checkpoints.
    :param eval_freq: steps between periodic validation evaluations (0: off).
    :param load_model: model whose weights the first stage starts from.
    :param auto_optimize: tune each stage before training it.
    :param tuner: registered tuner name.
    :param storage: tuning storage URL (default: SQLite beside the stage).
    :param trials: trial budget instead of the stage's.
    :param loggers: logger names (``None``: the default set).
    :param progress: show progress bars.
    """

    out_dir: Path = Path(".")
    data: DataOptions = attrs.Factory(DataOptions)
    seed: int = 0
    device: str = "auto"
    scale: float = 1.0
    n_envs: int | None = None
    algorithm: str | None = None
    resume: bool = False
    overwrite: bool = False
    ignore_gates: bool = False
    checkpoints: int = 10
    checkpoint_freq: int | None = None
    eval_freq: int = 0
    load_model: Path | None = None
    auto_optimize: bool = False
    tuner: str = "optuna"
    storage: str | None = None
    trials: int | None = None
    loggers: tuple[str, ...] | None = None
    progress: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.scale > 0:
            raise ConfigError(f"--scale must be > 0, got {self.scale}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ConfigError(f"--n-envs must be >= 1, got {self.n_envs}")
        if self.checkpoint_freq is not None and self.checkpoint_freq < 1:
            raise ConfigError(f"--checkpoint-freq must be >= 1, got {self.checkpoint_freq}")
        if self.eval_freq < 0:
            raise ConfigError(f"--eval-freq must be >= 0, got {self.eval_freq}")


def scaled_timesteps(stage: StageSpec, scale: float) -> int:
    """The stage's timesteps times ``scale``, at least 1."""
    return max(1, round(stage.timesteps * scale))


def fit_to_budget(hp: Hyperparameters, timesteps: int, n_envs: int) -> Hyperparameters:
    """Shorten rollouts so whole rollouts tile the step budget, and fit the batch to them.

    On-policy algorithms train in whole rollouts of ``n_steps × n_envs`` steps.
    ``n_steps`` is lowered to the smallest value that covers ``timesteps`` with
    the same number of rollouts, so a run overshoots its budget by less than
    one step per environment and rollout. At full scale this leaves ``n_steps``
    unchanged (3,000,000 steps over 4 × 512 stays 512); a smoke run of 5,000
    steps on 8 environments gets two rollouts of 313 steps instead of two of
    512 (8,192 steps). ``batch_size`` is then capped at the rollout and moved
    to a divisor of it when one lies within a factor of two, so no minibatch
    is truncated.
    """
    rollouts = max(1, math.ceil(timesteps / (hp.n_steps * n_envs)))
    n_steps = max(2, math.ceil(timesteps / (rollouts * n_envs)))
    buffer = n_steps * n_envs
    batch_size = max(2, min(hp.batch_size, buffer))
    divisor = next((size for size in range(batch_size, batch_size // 2, -1)
                    if buffer % size == 0), batch_size)
    return attrs.evolve(hp, n_steps=n_steps, batch_size=divisor)


class CurriculumRunner:
    """Runs stages in order, each starting from the previous stage's final model.

    :param registry: what the plugins registered.
    :param options: the run's settings.
    :param echo: where progress lines go.
    :param hook: the plugin manager's hook relay, for the event hooks.
    """

    def __init__(self, registry: Registry, options: RunOptions,
                 echo: Callable[[str], None] = click.echo, hook: Any = None) -> None:
        self.registry = registry
        self.options = options
        self.echo = echo
        self.hook = hook
        self.layout = RunLayout(options.out_dir)
        self.device = resolve_device(options.device)
        self.manifest: Manifest | None = None

    # --- the curriculum ---------------------------------------------------------------

    def run(self, stages: Sequence[StageSpec]) -> list[StageResult]:
        """Run ``stages`` in order and return their results.

        :raises GateFailedError: when a stage misses its gate (unless ``ignore_gates``).
        :raises TrainingInterrupted: on SIGINT/SIGTERM, after saving a checkpoint.
        """
        self.check_before_training(stages)
        # Written with the first stage record, once data loaded: a run that fails on
        # bad input leaves no files behind.
        self.manifest = Manifest(self.layout.manifest(), self._run_record(stages))
        results: list[StageResult] = []
        start_from = self.options.load_model
        for position, stage in enumerate(stages, start=1):
            result = self.run_stage(stage, position, start_from)
            results.append(result)
            start_from = result.final_model
        return results

    def check_before_training(self, stages: Sequence[StageSpec]) -> None:
        """Refuse, before any training, what would fail later.

        :raises ConfigError: unknown names, earlier outputs in the way, or an algorithm
            that cannot carry weights between asset counts.
        """
        for stage in stages:
            self.registry.env_builder(stage.env_builder)
            algorithm = self.algorithm_for(stage)
            if stage.env.day_filter:
                self.registry.day_filter(stage.env.day_filter)
            if not (self.options.resume or self.options.overwrite) and \
                    self.layout.has_outputs(stage.name):
                raise ConfigError(
                    f"{self.layout.stage_dir(stage.name)} already holds outputs of an earlier "
                    f"run; pass --resume to continue it, --overwrite to replace it, or choose "
                    f"another --out"
                )
            transfers = stage is not stages[0] or self.options.load_model is not None
            if transfers and not algorithm.supports_transfer:
                raise ConfigError(
                    f"algorithm {algorithm.name!r} cannot transfer weights between stages "
                    f"(its policy depends on the asset count); run the stages one at a time "
                    f"with 'ploutos run stage', or use --algorithm ppo"
                )
        self.registry.data_source(self.options.data.source)

    def algorithm_for(self, stage: StageSpec) -> Algorithm:
        """The algorithm a stage trains with (``--algorithm`` overrides the stage)."""
        return self.registry.algorithm(self.options.algorithm or stage.algorithm)

    # --- one stage --------------------------------------------------------------------

    def run_stage(self, stage: StageSpec, position: int, start_from: Path | None
                  ) -> StageResult:
        """Train, evaluate and gate one stage."""
        final = self.layout.final_model(stage.name)
        if self.options.resume and final.exists():
            self.echo(f"{stage.name}: already finished ({final}); skipping")
            metadata = read_metadata(final)
            return StageResult(stage=stage.name, final_model=final, last_checkpoint=None,
                               num_timesteps=int(metadata.get("num_timesteps", 0)),
                               train_seconds=0.0, steps_per_second=0.0, gate_passed=None)
        options = self.options
        algorithm = self.algorithm_for(stage)
        source = self.registry.data_source(options.data.source)
        panel = load_stage_panel(source, stage, options.data, through="validation")
        timesteps = scaled_timesteps(stage, options.scale)
        n_envs = stage.environments(options.n_envs)
        resume_from = self.layout.newest_checkpoint(stage.name) if options.resume else None
        hyperparameters = self.hyperparameters(stage, panel, start_from, resume_from,
                                               timesteps, n_envs)
        setup = TrainingSetup(hyperparameters=hyperparameters, seed=options.seed,
                              device=self.device)
        env = self.registry.env_builder(stage.env_builder).build(EnvRequest(
            panel=panel, stage=stage, split="train", n_envs=n_envs, seed=options.seed,
            start_mask=self.start_mask(stage, panel, source), device=self.device))
        run = StageRun(stage=stage, position=position, run_dir=options.out_dir,
                       seed=options.seed, device=self.device, timesteps=timesteps,
                       n_envs=n_envs, hyperparameters=hyperparameters,
                       algorithm=algorithm.name, start_from=start_from, resume_from=resume_from)
        agent = self.make_agent(algorithm, env, setup, start_from, resume_from)
        self._record(stage, run, panel)
        self._call_hook("ploutos_before_stage", run=run)
        self.echo(f"{stage.name}: training {timesteps:,} steps on {','.join(stage.tickers)} "
                  f"with {algorithm.name} ({n_envs} envs, {self.device})")
        started = time.monotonic()
        monitor = self.train(agent, run, panel)
        train_seconds = time.monotonic() - started
        last = monitor.checkpoint(agent.num_timesteps)
        validation = evaluate_agent(agent, self.registry, stage, panel, "validation",
                                    model=str(last))
        files = write_reports(validation, self.layout.report_dir(stage.name),
                              training=self._training_record(run, agent.num_timesteps))
        self.echo(format_table(validation))
        self.echo(f"{stage.name}: reports in {files.json.parent}")
        result = self.gate(stage, run, validation, last, agent.num_timesteps, train_seconds,
                           monitor.steps_per_second)
        return result

    def hyperparameters(self, stage: StageSpec, panel: Panel, start_from: Path | None,
                        resume_from: Path | None, timesteps: int, n_envs: int
                        ) -> Hyperparameters:
        """The stage's hyperparameters: from the checkpoint when resuming, else tuned
        (``--auto-optimize``) or the stage's, fitted to the step budget."""
        if resume_from is not None:
            saved = read_metadata(resume_from).get("hyperparameters")
            if saved:
                return Hyperparameters(**saved)
        hp = stage.hyperparameters
        if self.options.auto_optimize:
            from ploutos_core.tuning.study import tune_stage

            hp = tune_stage(self, stage, panel, start_from, timesteps, n_envs)
        return fit_to_budget(hp, timesteps, n_envs)

    def start_mask(self, stage: StageSpec, panel: Panel, source: DataSource
                   ) -> NDArray[np.bool_] | None:
        """Allowed episode starts from the stage's day filter, or ``None`` without one."""
        mask = episode_start_mask(self.registry, stage, panel, source, self.options.data)
        if mask is not None:
            first, last = panel.index_range(stage.splits.train, label="train split")
            self.echo(f"{stage.name}: day filter {stage.env.day_filter!r} allows episode "
                      f"starts on {int(mask[first:last + 1].sum()):,} of "
                      f"{last - first + 1:,} training days")
        return mask

    def make_agent(self, algorithm: Algorithm, env: Any, setup: TrainingSetup,
                   start_from: Path | None, resume_from: Path | None) -> Agent:
        """Resume from a checkpoint, transfer weights from ``start_from``, or start fresh."""
        if resume_from is not None:
            agent = algorithm.load(resume_from, env, setup)
            self.echo(f"resuming from {resume_from} at step {agent.num_timesteps:,}")
            return agent
        agent = algorithm.build(env, setup)
        if start_from is not None:
            self.echo(str(agent.transfer_from(start_from)))
        return agent

    def train(self, agent: Agent, run: StageRun, panel: Panel) -> StageMonitor:
        """Train ``agent`` to ``run.timesteps`` with checkpoints and a progress bar.

        :raises TrainingInterrupted: on a signal, after writing a checkpoint.
        """
        from tqdm import tqdm

        from ploutos_core.tracking.session import open_loggers, periodic_evaluator

        name = run.stage.name
        every = self.options.checkpoint_freq or max(1, run.timesteps // self.options.checkpoints)
        loggers = open_loggers(self.registry, self.options.loggers, self.layout, run,
                               start_step=agent.num_timesteps)
        progress = tqdm(total=run.timesteps, initial=agent.num_timesteps, unit="step",
                        unit_scale=True, desc=name, dynamic_ncols=True,
                        disable=not self.options.progress, mininterval=0.5)
        try:
            with stop_on_signals() as stop:
                monitor = StageMonitor(
                    agent=agent,
                    checkpoint_path=lambda steps: self.layout.checkpoint(name, steps),
                    checkpoint_every=every,
                    save=lambda a, path: a.save(path, self._model_metadata(run)),
                    on_checkpoint=lambda path, steps: self._call_hook(
                        "ploutos_on_checkpoint", run=run,
                        checkpoint=Checkpoint(path=path, num_timesteps=steps)),
                    loggers=loggers,
                    stop=stop,
                    progress=progress,
                    evaluate=(periodic_evaluator(self, run, panel) if self.options.eval_freq
                              else None),
                    evaluate_every=self.options.eval_freq,
                )
                agent.learn(run.timesteps, monitor)
        finally:
            progress.close()
            for logger in loggers:
                logger.close()
        if stop.requested:
            path = monitor.checkpoint(agent.num_timesteps)
            raise TrainingInterrupted(
                f"{name}: stopped by {stop.signal_name} at step {agent.num_timesteps:,}; "
                f"checkpoint saved to {path}; continue with the same command and --resume"
            )
        steps = agent.num_timesteps
        self.echo(f"{name}: trained {steps:,} steps at {monitor.steps_per_second:,.0f} steps/s")
        return monitor

    def gate(self, stage: StageSpec, run: StageRun, validation: EvaluationResult, last: Path,
             steps: int, train_seconds: float, steps_per_second: float) -> StageResult:
        """Promote the stage's model if its validation result passes the stage's gate."""
        verdict = judge_gate(stage.gate, validation)
        passed = verdict.passed
        ignored = not passed and self.options.ignore_gates
        final = self.layout.promote(last, self.layout.final_model(stage.name)) \
            if passed or ignored else None
        result = StageResult(stage=stage.name, final_model=final, last_checkpoint=last,
                             num_timesteps=steps, train_seconds=train_seconds,
                             steps_per_second=steps_per_second, validation=validation,
                             gate_passed=passed, gate_ignored=ignored)
        assert self.manifest is not None  # created in run(); not user input
        self.manifest.record_stage(
            stage.name, final_model=str(final) if final else None, last_checkpoint=str(last),
            num_timesteps=steps, train_seconds=round(train_seconds, 3),
            steps_per_second=round(steps_per_second, 1), validation_sharpe=verdict.sharpe,
            gate=verdict.to_dict(), gate_passed=passed, gate_ignored=ignored)
        self._call_hook("ploutos_after_stage", run=run, result=result)
        suffix = " (ignored: --ignore-gates)" if ignored else ""
        self.echo(f"{stage.name}: {verdict.describe()}{suffix}")
        if not passed and not ignored:
            raise GateFailedError(
                f"{stage.name}: validation Sharpe {verdict.sharpe:.2f} is below the gate "
                f"{verdict.required:.2f}; the trained model is kept at {last}; to promote it "
                f"anyway rerun with --resume --ignore-gates, or train longer / change the stage"
            )
        return result

    # --- bookkeeping ------------------------------------------------------------------

    def _training_record(self, run: StageRun, steps: int) -> dict[str, Any]:
        return {"algorithm": run.algorithm, "num_timesteps": steps, "n_envs": run.n_envs,
                "seed": run.seed, "tuned": self.options.auto_optimize,
                "hyperparameters": attrs.asdict(run.hyperparameters),
                "start_from": str(run.start_from) if run.start_from else None}

    def _model_metadata(self, run: StageRun) -> dict[str, Any]:
        return {"stage": run.stage.name, "tickers": list(run.stage.tickers),
                "target_timesteps": run.timesteps, "n_envs": run.n_envs, "seed": run.seed,
                "hyperparameters": attrs.asdict(run.hyperparameters),
                "start_from": str(run.start_from) if run.start_from else None}

    def _run_record(self, stages: Sequence[StageSpec]) -> dict[str, Any]:
        options = self.options
        return {"stages": [s.name for s in stages], "seed": options.seed,
                "device": self.device, "scale": options.scale,
                "source": options.data.source,
                "data_dir": str(options.data.data_dir) if options.data.data_dir else None,
                "resume": options.resume, "ignore_gates": options.ignore_gates,
                "auto_optimize": options.auto_optimize,
                "load_model": str(options.load_model) if options.load_model else None,
                "eval_freq": options.eval_freq,
                "loggers": logger_names(self.registry, options.loggers),
                "options": options_record(options)}

    def _record(self, stage: StageSpec, run: StageRun, panel: Panel) -> None:
        assert self.manifest is not None  # created in run(); not user input
        self.manifest.record_stage(
            stage.name, position=run.position, config=stage_to_dict(stage),
            algorithm=run.algorithm, timesteps=run.timesteps, n_envs=run.n_envs,
            hyperparameters=attrs.asdict(run.hyperparameters), seed=run.seed,
            device=run.device,
            start_from=str(run.start_from) if run.start_from else None,
            resumed_from=str(run.resume_from) if run.resume_from else None,
            data={"source": panel.source, "tickers": list(panel.tickers),
                  "first_date": str(panel.date(0)), "last_date": str(panel.date(panel.n_days - 1)),
                  "days": panel.n_days, "fingerprint": panel.fingerprint()})

    def _call_hook(self, name: str, **kwargs: Any) -> None:
        if self.hook is None:
            return
        from ploutos_core.pluginmanager.registry import call_impl

        for impl in reversed(getattr(self.hook, name).get_hookimpls()):
            call_impl(impl, name, kwargs)

