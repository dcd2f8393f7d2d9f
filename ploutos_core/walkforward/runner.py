"""Walk-forward retraining: train each fold on data strictly before it, trade it out of
sample, stitch the out-of-sample days and report them beside the baselines.

Each fold is a stage with adjusted splits (:meth:`~ploutos_core.walkforward.plan.Fold.stage`)
trained through the one builder (:func:`~ploutos_core.training.builder.prepare_stage`,
``build_env``, ``build_agent``) on a panel cut before the fold's first trading day, so
neither its training nor its features can see a later price. The out-of-sample days
are one continuous backtest over the whole period in which the model in charge
changes on each retraining date: the portfolio and the turnover rule's state carry
over from one fold to the next, as they would for a trader who swaps models.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from ploutos_core.agents.model_files import resolve_model_path
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import Panel
from ploutos_core.data.stage_data import DataOptions, stage_request_until
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import (
    EvaluationResult,
    baseline_backtests,
    evaluation_dates,
    first_and_last,
    scheduled_backtest,
)
from ploutos_core.evaluation.evaluate import build_backtest_env, load_for_evaluation
from ploutos_core.evaluation.report import ReportFiles, write_reports
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.atomic import write_json, write_text
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.training.builder import (
    build_agent,
    build_env,
    fit_to_budget,
    prepare_stage,
    resumed_hyperparameters,
    scaled_timesteps,
)
from ploutos_core.training.context import RunContext, RunOptions
from ploutos_core.training.loop import train_agent
from ploutos_core.training.records import StageRun
from ploutos_core.walkforward.plan import Fold, Window, plan_folds

if TYPE_CHECKING:
    import pandas as pd

PLAN_FILE = "plan.json"
FOLD_FILE = "fold.json"


@attrs.frozen
class WalkForwardOptions:
    """Settings of one ``ploutos walkforward``.

    :param start: the first day traded out of sample (``--from``).
    :param end: the last day (``--to``; ``None``: the newest data).
    :param retrain_every: trading days between retraining dates.
    :param window: the training window of each fold.
    :param steps: training steps per fold (``None``: the stage's timesteps × ``scale``).
    :param load_model: the model the first fold starts from (later folds start from the
        fold before).
    :param resume: continue an interrupted walk-forward in ``out_dir``.
    :param overwrite: move an earlier walk-forward aside and start again.
    :param out_dir: the run directory.
    :param data: where prices come from.
    :param seed: seed of every fold's training.
    :param device: the resolved device.
    :param n_envs: environments per fold instead of the stage's.
    :param algorithm: algorithm instead of the stage's.
    :param scale: multiplies the stage's timesteps when ``steps`` is not given.
    :param progress: show progress bars.
    :param loggers: logger names (``None``: the default set).
    """

    start: dt.date
    end: dt.date | None = None
    retrain_every: int = 21
    window: Window = attrs.Factory(Window)
    steps: int | None = None
    load_model: Path | None = None
    resume: bool = False
    overwrite: bool = False
    out_dir: Path = Path(".")
    data: DataOptions = attrs.Factory(DataOptions)
    seed: int = 0
    device: str = "cpu"
    n_envs: int | None = None
    algorithm: str | None = None
    scale: float = 1.0
    progress: bool = False
    loggers: tuple[str, ...] | None = None

    def __attrs_post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")
        if self.end is not None and self.end <= self.start:
            raise ConfigError(f"--to {self.end} must be after --from {self.start}")

    def plan_record(self, stage: StageSpec, steps: int) -> dict[str, Any]:
        """What a resumed walk-forward must share with the interrupted one."""
        return {"stage": stage.name, "tickers": list(stage.tickers),
                "from": self.start.isoformat(),
                "to": self.end.isoformat() if self.end else None,
                "retrain_every": self.retrain_every, "window": str(self.window),
                "steps": steps, "seed": self.seed, "source": self.data.source,
                "load_model": str(self.load_model) if self.load_model else None,
                "algorithm": self.algorithm or stage.algorithm}


@attrs.frozen
class FoldResult:
    """A trained fold.

    :param fold: its dates.
    :param model: its model file.
    :param steps: steps its model trained (this fold's and those it started from).
    :param start_from: the model it was warm-started from.
    :param fingerprint: digest of the prices it trained on (all before ``fold.first``).
    :param trained: ``False`` when a resumed walk-forward found it finished.
    """

    fold: Fold
    model: Path
    steps: int
    start_from: Path | None
    fingerprint: str
    trained: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (``fold.json``)."""
        return {**self.fold.to_dict(), "model": str(self.model), "steps": self.steps,
                "start_from": str(self.start_from) if self.start_from else None,
                "training_data_fingerprint": self.fingerprint}


@attrs.frozen(eq=False)
class WalkForward:
    """A finished walk-forward.

    :param stage: the stage.
    :param folds: every fold, in order.
    :param result: the stitched out-of-sample backtest beside the baselines on the same
        days and costs.
    :param files: the reports (``reports/<stage>/walkforward.{json,md,png}``, daily CSV).
    :param directory: ``walkforward/<stage>/`` (the plan and one directory per fold).
    """

    stage: str
    folds: tuple[FoldResult, ...]
    result: EvaluationResult
    files: ReportFiles
    directory: Path

    def metrics(self) -> pd.DataFrame:
        """One row per strategy (agent first), as ``ploutos evaluate`` reports."""
        import pandas as pd

        payload = self.result.to_dict()
        return pd.DataFrame([payload["agent"], *payload["baselines"]]).set_index("name")

    def daily(self) -> pd.DataFrame:
        """The stitched daily series of every strategy (``walkforward_daily.csv``)."""
        from ploutos_core.evaluation.backtest import daily_frame

        return daily_frame(self.result)

    def fold_table(self) -> pd.DataFrame:
        """One row per fold: dates, model, and the agent's and benchmark's return over the
        fold's days."""
        import pandas as pd

        return pd.DataFrame(fold_rows(self)).set_index("fold")


def fold_rows(walk: WalkForward) -> list[dict[str, Any]]:
    """Per-fold rows of :meth:`WalkForward.fold_table` (also ``walkforward_folds.csv``)."""
    result = walk.result
    days = result.agent.days
    benchmark = result.benchmark
    rows = []
    for item in walk.folds:
        fold = item.fold
        inside = (days >= fold.first_row) & (days <= fold.last_row)
        rows.append({"fold": fold.index, "train_start": fold.train.start,
                     "train_end": fold.train.end, "first": fold.first, "last": fold.last,
                     "days": int(inside.sum()), "steps": item.steps, "model": str(item.model),
                     "agent_return": float(np.prod(1 + result.agent.returns[inside]) - 1),
                     "benchmark_return": float(np.prod(1 + benchmark.returns[inside]) - 1),
                     "agent_turnover": float(result.agent.turnover[inside].mean())})
    return rows


class WalkForwardRunner:
    """Trains and trades the folds of one stage.

    :param registry: what the plugins registered.
    :param stage: the stage.
    :param options: the walk-forward's settings.
    :param echo: where progress lines go.
    """

    def __init__(self, registry: Registry, stage: StageSpec, options: WalkForwardOptions,
                 echo: Callable[[str], None]) -> None:
        self.registry = registry
        self.stage = stage
        self.options = options
        self.echo = echo
        self.directory = RunLayout(options.out_dir).walkforward_dir(stage.name)

    def load(self) -> Panel:
        """The stage's prices from the warm-up before training through ``--to``."""
        options = self.options
        source = self.registry.data_source(options.data.source)
        return load_panel(source, stage_request_until(self.stage, options.data, options.end))

    def run(self, panel: Panel | None = None) -> WalkForward:
        """Plan, train every fold not yet trained, trade, stitch and report.

        :param panel: prices already loaded (the loader is skipped).
        :raises ConfigError: for a bad plan, or earlier outputs without ``--resume``.
        """
        options, stage = self.options, self.stage
        self.registry.algorithm(options.algorithm or stage.algorithm)
        load_model = resolve_model_path(options.load_model) if options.load_model else None
        panel = panel or self.load()
        folds = plan_folds(panel, stage, options.start, options.end, options.retrain_every,
                           options.window)
        steps = options.steps or scaled_timesteps(stage, options.scale)
        self._check_plan(options.plan_record(stage, steps), folds)
        self.echo(f"{stage.name}: walk-forward of {len(folds)} folds, {folds[0].first}…"
                  f"{panel.date(folds[-1].last_row + 1)}, retraining every "
                  f"{options.retrain_every} trading days ({options.window} window, "
                  f"{steps:,} steps a fold)")
        results: list[FoldResult] = []
        start_from = load_model
        for fold in folds:
            result = self._fold(panel, fold, steps, start_from)
            results.append(result)
            start_from = result.model
        outcome = self._trade(panel, results)
        layout = RunLayout(options.out_dir)
        training = {"folds": len(results), "retrain_every": options.retrain_every,
                    "window": str(options.window), "steps_per_fold": steps,
                    "load_model": str(load_model) if load_model else None,
                    "directory": str(self.directory)}
        files = write_reports(outcome, layout.report_dir(stage.name), "walkforward",
                              training=training)
        walk = WalkForward(stage=stage.name, folds=tuple(results), result=outcome,
                           files=files, directory=self.directory)
        import pandas as pd

        write_text(files.json.with_name("walkforward_folds.csv"),
                   pd.DataFrame(fold_rows(walk)).to_csv(index=False, float_format="%.10g"))
        return walk

    # --- plan and resume --------------------------------------------------------------

    def _check_plan(self, record: dict[str, Any], folds: list[Fold]) -> None:
        path = self.directory / PLAN_FILE
        plan = {**record, "folds": [fold.to_dict() for fold in folds]}
        if path.exists():
            if self.options.overwrite:
                aside = self.directory.with_name(
                    f"{self.directory.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
                shutil.move(self.directory, aside)
                self.echo(f"moved the earlier walk-forward aside to {aside}")
            elif not self.options.resume:
                raise ConfigError(f"{self.directory} holds an earlier walk-forward; pass "
                                  f"--resume to continue it, --overwrite to start again, or "
                                  f"choose another --out")
            else:
                earlier = json.loads(path.read_text())
                changed = sorted(k for k in plan if earlier.get(k) != plan[k])
                options = [k for k in changed if k != "folds"]
                if options:
                    was = ", ".join(f"{k}={earlier.get(k)!r}" for k in options)
                    raise ConfigError(
                        f"--resume: the walk-forward in {self.directory} was planned with "
                        f"other {', '.join(options)} ({was}); rerun it with the same options, "
                        f"or --overwrite to start again")
                if changed:
                    raise ConfigError(
                        f"--resume: the data's trading days differ from those the "
                        f"walk-forward in {self.directory} was planned on (other folds); use "
                        f"the same data, or --overwrite to start again")
                return
        write_json(path, plan)

    def _fold(self, panel: Panel, fold: Fold, steps: int, start_from: Path | None
              ) -> FoldResult:
        return train_fold(self.registry, self.stage, panel, fold, steps, start_from,
                          self.directory / fold.name, self.options, self.echo)

    # --- the out-of-sample days ---------------------------------------------------------

    def _trade(self, panel: Panel, folds: list[FoldResult]) -> EvaluationResult:
        """One backtest over every fold's days, each day decided by its fold's model."""
        options, stage = self.options, self.stage
        end = panel.date(folds[-1].fold.last_row + 1)
        first = folds[0].fold
        spec = attrs.evolve(stage, splits=first.stage(stage, end).splits)
        env = build_backtest_env(self.registry, spec, panel, "validation", options.device)
        agents = [load_for_evaluation(self.registry, item.model, stage, env, seed=options.seed,
                                      device=options.device, algorithm=options.algorithm)
                  for item in folds]
        starts = np.array([item.fold.first_row for item in folds])
        backtest = scheduled_backtest(env, lambda row: agents[
            max(0, int(np.searchsorted(starts, row, "right")) - 1)], first_row=first.first_row)
        if backtest.days[0] != first.first_row:
            raise ConfigError(f"the features are not ready on {first.first} (warm-up); start "
                              f"the walk-forward later")
        baselines = baseline_backtests(panel.close, panel.tickers, backtest.days,
                                       stage.transaction_cost)
        start, last = first_and_last(panel.dates, backtest.days)
        return EvaluationResult(
            stage=stage.name, split="walkforward", model=f"{len(folds)} folds in "
            f"{self.directory}", start=start, end=last, cost_bps=stage.transaction_cost_bps,
            agent=backtest, baselines=tuple(baselines),
            dates=evaluation_dates(panel.dates, backtest.days), tickers=panel.tickers)


def train_fold(registry: Registry, stage: StageSpec, panel: Panel, fold: Fold, steps: int,
               start_from: Path | None, directory: Path, options: WalkForwardOptions,
               echo: Callable[[str], None]) -> FoldResult:
    """Train one fold in its own run directory, on ``panel``'s rows before the fold's first
    trading day, warm-started from ``start_from``; a finished fold (``fold.json``) is
    returned as it is, an interrupted one continues from its newest checkpoint.

    :param panel: prices through at least the day after the fold's last decision day.
    """
    record_path = directory / FOLD_FILE
    if record_path.exists():
        saved = json.loads(record_path.read_text())
        model = Path(saved["model"])
        if model.is_file():
            echo(f"{fold.name}: already trained ({model}); skipping")
            return FoldResult(fold=fold, model=model, steps=int(saved["steps"]),
                              start_from=start_from,
                              fingerprint=saved["training_data_fingerprint"], trained=False)
    # The fold never holds a price on or after its first trading day.
    history = panel.slice_rows(0, fold.first_row - 1)
    next_day = panel.date(fold.last_row + 1) if fold.last_row + 1 < panel.n_days else \
        fold.last + dt.timedelta(days=1)
    spec = fold.stage(stage, next_day)
    run = RunContext(registry=registry, device=options.device, echo=echo,
                     options=RunOptions(out_dir=directory, data=options.data, seed=options.seed,
                                        device=options.device, n_envs=options.n_envs,
                                        algorithm=options.algorithm, progress=options.progress,
                                        loggers=options.loggers, checkpoints=2))
    ctx = attrs.evolve(prepare_stage(run, spec, fold.index, panel=history), timesteps=steps)
    layout = run.layout
    resume_from = layout.newest_checkpoint(spec.name)
    hyperparameters = (resumed_hyperparameters(resume_from) if resume_from else None) or \
        fit_to_budget(spec.hyperparameters, steps, ctx.n_envs)
    env = build_env(ctx)
    agent = build_agent(ctx, env, hyperparameters, start_from=start_from,
                        resume_from=resume_from)
    # A fold trains ``steps`` (a warm start copies weights, not the step count).
    target = steps if resume_from is None else int(_saved_target(resume_from) or steps)
    record = StageRun(stage=spec, position=fold.index, run_dir=directory, seed=options.seed,
                      device=options.device, timesteps=target, n_envs=ctx.n_envs,
                      hyperparameters=hyperparameters, algorithm=ctx.algorithm.name,
                      start_from=start_from, resume_from=resume_from)
    doing = "training" if resume_from is None else f"continuing at step {agent.num_timesteps:,} of"
    echo(f"{fold.name}: {doing} {steps:,} steps on {fold.train}, then trading "
         f"{fold.first}…{fold.last}")
    monitor = train_agent(ctx, agent, record, env)
    final = layout.promote(monitor.checkpoint(agent.num_timesteps),
                           layout.final_model(spec.name))
    result = FoldResult(fold=fold, model=final, steps=agent.num_timesteps,
                        start_from=start_from, fingerprint=history.fingerprint())
    write_json(record_path, result.to_dict())
    return result


def _saved_target(path: Path) -> int | None:
    from ploutos_core.agents.model_files import read_metadata

    value = read_metadata(path).get("target_timesteps")
    return int(value) if value else None


