"""The Python API: what every ``ploutos`` command does, callable from a notebook.

Import it as :mod:`ploutos`::

    import ploutos

    run = ploutos.train_curriculum(source="csv", data_dir="../shared/market-data/daily",
                                   out_dir="runs/first", ignore_gates=True)
    run.table()                                  # one row per stage: Sharpe, benchmark, gate
    result = ploutos.evaluate("runs/first/models/stage3_final", out_dir="runs/first")
    result.metrics()                             # agent and baselines, one row each
    result.daily()                               # the daily series of every strategy

The CLI is a thin layer over these functions: it parses options, calls them and
prints. Each returns typed results (attrs classes) with pandas views, and writes
the same files the CLI writes.
"""

from __future__ import annotations

import filecmp
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from ploutos_core.agents.device import resolve_device
from ploutos_core.agents.ensemble import write_ensemble
from ploutos_core.agents.model_files import read_metadata, resolve_model_path
from ploutos_core.comparison.report import write_comparison
from ploutos_core.comparison.runner import CompareOptions, Comparison, ComparisonRunner
from ploutos_core.config.stage import Hyperparameters, StageSpec
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.env.base import Split
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.evaluate import (
    build_backtest_env,
    evaluate_agent,
    load_for_evaluation,
    with_cost_multiplier,
)
from ploutos_core.evaluation.gate import judge_gate
from ploutos_core.evaluation.report import ReportFiles, write_reports
from ploutos_core.evaluation.universes import UniverseVerdict
from ploutos_core.evaluation.universes import evaluate_universes as verdict_on_universes
from ploutos_core.pluginmanager.manager import get_plugin_manager
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.pluginmanager.stage_files import stage_file_plugins
from ploutos_core.runfiles.atomic import write_json, write_text
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.training.records import StageResult
from ploutos_core.training.runner import CurriculumRunner, RunOptions

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

    from ploutos_core.trading.contract import BrokerAccount, BrokerRequest
    from ploutos_core.trading.cycle import TradeCycle
    from ploutos_core.trading.signal import Signal
    from ploutos_core.trading.status import TradeStatus
    from ploutos_core.walkforward.retrain import Retrain
    from ploutos_core.walkforward.runner import WalkForward

__all__ = [
    "CurriculumResult",
    "EnsembleResult",
    "Evaluation",
    "compare",
    "evaluate",
    "evaluate_universes",
    "make_ensemble",
    "make_registry",
    "retrain",
    "select_stages",
    "signal",
    "trade",
    "trade_status",
    "train_curriculum",
    "train_ensemble",
    "train_stage",
    "tune",
    "walkforward",
]

#: a ``ploutos compare`` scratch model records ``<stage>_scratch``; it is evaluated on ``<stage>``.
SCRATCH_SUFFIX = "_scratch"


def make_registry(*, stage_files: Sequence[str | Path] = (), plugins: Sequence[str] = (),
                  blocked_plugins: Sequence[str] = ()) -> Registry:
    """A registry of every installed plugin, plus local plugin modules and stage files.

    :param stage_files: TOML files of extra stages (``--stage-file``).
    :param plugins: local plugin modules or ``.py`` files (``--plugin``).
    :param blocked_plugins: plugin names not to load (``--block-plugin``).
    """
    pm = get_plugin_manager(local_plugins=plugins, blocked=blocked_plugins)
    for name, plugin in stage_file_plugins([Path(p) for p in stage_files]):
        pm.register_plugin(plugin, name, pm.info(name))
    return Registry(pm)


def _data(source: str, data_dir: str | Path | None, cache_dir: str | Path, seed: int,
          refresh: bool) -> DataOptions:
    """The data options of an API call's keyword arguments."""
    return DataOptions(source=source, data_dir=Path(data_dir) if data_dir else None,
                       cache_dir=Path(cache_dir), seed=seed, refresh=refresh)


def select_stages(registry: Registry, curriculum: str = "default",
                  selection: str | Sequence[str] | None = None) -> list[StageSpec]:
    """Stages of ``curriculum`` picked by positions (``"1-3"``, ``"1,3"``) or names.

    :raises ConfigError: for a malformed selection or a position out of range.
    """
    ordered = registry.curriculum(curriculum)
    if not selection:
        return ordered
    tokens = selection.split(",") if isinstance(selection, str) else list(selection)
    chosen: list[StageSpec] = []
    for token in (t.strip() for t in tokens if t.strip()):
        if token.replace("-", "").isdigit():
            low, _, high = token.partition("-")
            first, last = int(low), int(high or low)
            if first > last:
                raise ConfigError(f"--stages {token}: a range runs from low to high, e.g. "
                                  f"{last}-{first}")
            if not 1 <= first <= last <= len(ordered):
                raise ConfigError(f"--stages {token}: curriculum {curriculum!r} has "
                                  f"{len(ordered)} stages; use positions 1-{len(ordered)}")
            chosen.extend(ordered[first - 1:last])
        else:
            chosen.append(registry.stage(token))
    return chosen


# --- training -----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class CurriculumResult:
    """What a training call produced.

    :param out_dir: the run directory (models/, reports/, logs/).
    :param stages: one result per stage trained, in order.
    """

    out_dir: Path
    stages: tuple[StageResult, ...]

    @property
    def final_model(self) -> Path | None:
        """The last stage's final model (``None`` when its gate failed)."""
        return self.stages[-1].final_model if self.stages else None

    def evaluation(self, stage: str) -> EvaluationResult | None:
        """The validation backtest of ``stage`` (``None`` for a stage that was skipped)."""
        return next((s.validation for s in self.stages if s.stage == stage), None)

    def table(self) -> pd.DataFrame:
        """One row per stage: steps, speed, validation Sharpe beside the benchmark, gate."""
        import pandas as pd

        rows = []
        for result in self.stages:
            row: dict[str, Any] = {"stage": result.stage, "steps": result.num_timesteps,
                                   "steps_per_second": result.steps_per_second,
                                   "final_model": result.final_model,
                                   "gate_passed": result.gate_passed}
            if result.validation is not None:
                validation = result.validation
                row.update(sharpe=validation.agent.summary.sharpe,
                           benchmark=validation.benchmark.name,
                           benchmark_sharpe=validation.benchmark.summary.sharpe,
                           max_drawdown=validation.agent.summary.max_drawdown,
                           turnover=validation.agent.average_turnover,
                           costs=validation.agent.total_costs)
            rows.append(row)
        return pd.DataFrame(rows).set_index("stage")


def _run_options(out_dir: str | Path, source: str, data_dir: str | Path | None,
                 cache_dir: str | Path, seed: int, refresh: bool, load_model: str | Path | None,
                 **options: Any) -> RunOptions:
    data = _data(source, data_dir, cache_dir, seed, refresh)
    loggers = options.pop("loggers", None)
    return RunOptions(out_dir=Path(out_dir), data=data, seed=seed,
                      load_model=Path(load_model) if load_model else None,
                      loggers=tuple(loggers) if loggers else None, **options)


def train_curriculum(curriculum: str = "default", *, stages: str | Sequence[str] | None = None,
                     out_dir: str | Path = ".", source: str = "yfinance",
                     data_dir: str | Path | None = None, cache_dir: str | Path = "data_cache",
                     refresh: bool = False, seed: int = 0, load_model: str | Path | None = None,
                     registry: Registry | None = None, echo: Callable[[str], None] = click.echo,
                     **options: Any) -> CurriculumResult:
    """Train the stages of ``curriculum`` in order, each from the previous stage's model.

    :param curriculum: the curriculum's name (``default``: stage 1 → 2 → 3).
    :param stages: positions (``"2-3"``) or names to run instead of all of them.
    :param out_dir: the run directory.
    :param source: data source (``yfinance``, ``csv``, ``synthetic`` or a plugin's).
    :param data_dir: directory of file sources (``csv``).
    :param cache_dir: the yfinance download cache.
    :param refresh: download again even when cached.
    :param seed: seed of networks, episode sampling and synthetic data.
    :param load_model: model whose weights the first stage starts from.
    :param registry: plugins and stages to use (default: :func:`make_registry`).
    :param echo: where progress lines go (``print``, a logger, or ``lambda _: None``).
    :param options: any other :class:`~ploutos_core.training.context.RunOptions` field:
        ``scale``, ``device``, ``n_envs``, ``algorithm``, ``resume``, ``overwrite``,
        ``ignore_gates``, ``eval_freq``, ``auto_optimize``, ``trials``, ``storage``,
        ``loggers``, ``progress``, ``checkpoint_freq``.
    :raises GateFailedError: when a stage misses its gate (``ignore_gates=False``).
    """
    registry = registry or make_registry()
    chosen = select_stages(registry, curriculum, stages)
    run_options = _run_options(out_dir, source, data_dir, cache_dir, seed, refresh, load_model,
                               **options)
    results = CurriculumRunner(registry, run_options, echo=echo).run(chosen)
    return CurriculumResult(out_dir=run_options.out_dir, stages=tuple(results))


def train_stage(name: str, **kwargs: Any) -> CurriculumResult:
    """Train one stage, from scratch or from ``load_model``; takes the arguments of
    :func:`train_curriculum` except ``curriculum`` and ``stages``."""
    registry = kwargs.pop("registry", None) or make_registry()
    stage = registry.stage(name)
    return train_curriculum(stage.curriculum, stages=[name], registry=registry, **kwargs)


def tune(stage: str, *, study_name: str | None = None, sampler_seed: int = 0,
         load_model: str | Path | None = None, out_dir: str | Path = ".",
         source: str = "yfinance", data_dir: str | Path | None = None,
         cache_dir: str | Path = "data_cache", refresh: bool = False, seed: int = 0,
         registry: Registry | None = None, echo: Callable[[str], None] = click.echo,
         **options: Any) -> Hyperparameters:
    """Tune ``learning_rate``, ``n_steps`` and ``ent_coef`` of one stage (an Optuna study
    that several processes or machines may share) and return the best hyperparameters;
    ``models/<stage>/optimized_params.json`` records them.

    :param study_name: the study inside the storage (default ``ploutos-<stage>``).
    :param sampler_seed: seed of this worker's sampler (workers should differ).
    :param load_model: weights every trial starts from (what the stage starts from).
    :param options: ``storage``, ``trials``, ``tuner``, ``scale``, ``n_envs``,
        ``algorithm``, ``device``, ``overwrite``, ``resume``.
    """
    from ploutos_core.training.builder import prepare_stage
    from ploutos_core.training.context import RunContext
    from ploutos_core.tuning.study import default_study_name, run_study

    registry = registry or make_registry()
    spec = registry.stage(stage)
    registry.tuner(options.get("tuner", "optuna"))  # unknown: fail before loading data
    run_options = _run_options(out_dir, source, data_dir, cache_dir, seed, refresh, load_model,
                               auto_optimize=True, progress=False, **options)
    run = RunContext(registry=registry, options=run_options,
                     device=resolve_device(run_options.device), echo=echo)
    # Through validation only: the test split is never loaded while tuning.
    ctx = prepare_stage(run, spec)
    return run_study(ctx, run_options.load_model,
                     study_name=study_name or default_study_name(spec),
                     sampler_seed=sampler_seed)


# --- evaluation ---------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Evaluation:
    """A backtest and the files written for it.

    :param result: the agent and its baselines on the same days and costs.
    :param files: the reports written (``None`` when ``out_dir`` was ``None``).
    """

    result: EvaluationResult
    files: ReportFiles | None

    def metrics(self) -> pd.DataFrame:
        """One row per strategy (agent first): the report's statistics."""
        import pandas as pd

        payload = self.result.to_dict()
        return pd.DataFrame([payload["agent"], *payload["baselines"]]).set_index("name")

    def daily(self) -> pd.DataFrame:
        """The daily series of every strategy (as in ``<split>_daily.csv``)."""
        from ploutos_core.evaluation.backtest import daily_frame

        return daily_frame(self.result)


def model_stage(registry: Registry, name: str | None, metadata: dict[str, Any], path: Path
                ) -> StageSpec:
    """The stage to evaluate on: ``name``, else the one the model file records (a
    ``ploutos compare`` scratch model is evaluated on the stage it was trained on).

    :raises ConfigError: when neither names a stage.
    """
    name = name or metadata.get("stage")
    if not name:
        raise ConfigError(f"{path} does not record its stage; pass --stage NAME")
    if name.endswith(SCRATCH_SUFFIX) and name not in registry.all("stages"):
        name = name.removesuffix(SCRATCH_SUFFIX)
    return registry.stage(name)


def _report_of_another_model(report: Path, model: Path) -> bool:
    """Whether ``report`` exists and describes a model other than ``model`` (a final model
    is a copy of the run's last checkpoint: the same bytes are the same model)."""
    try:
        recorded = json.loads(report.read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return False
    if recorded is None or Path(recorded).resolve() == model.resolve():
        return False
    try:
        return not filecmp.cmp(recorded, model, shallow=False)
    except OSError:
        return True


def evaluate(model: str | Path, *, stage: str | None = None, split: Split = "validation",
             source: str = "yfinance", data_dir: str | Path | None = None,
             cache_dir: str | Path = "data_cache", refresh: bool = False, seed: int = 0,
             device: str = "auto", algorithm: str | None = None, cost_multiplier: float = 1.0,
             risk_free_rate: float = 0.0, trials: int | None = None,
             out_dir: str | Path | None = ".", registry: Registry | None = None) -> Evaluation:
    """Backtest ``model`` deterministically on a split beside its baselines.

    :param model: a model file (``.zip`` optional).
    :param stage: the stage whose tickers, splits and costs apply (default: the model's).
    :param split: ``validation``, ``test``, or ``train`` (reported as in-sample).
    :param cost_multiplier: multiplies the stage's transaction cost.
    :param trials: configurations looked at before choosing the model (deflated Sharpe;
        default: what the model file records, else 1).
    :param out_dir: reports go to ``out_dir/reports/<stage>/``; ``None`` writes nothing.
    :raises ModelError: for a missing, corrupt or incompatible model file.
    """
    if not math.isfinite(risk_free_rate) or risk_free_rate <= -1:
        raise ConfigError(f"--risk-free-rate must be a finite annual rate above -1 (0.02 for "
                          f"2 %), got {risk_free_rate}")
    if not math.isfinite(cost_multiplier) or cost_multiplier < 0:
        raise ConfigError(f"--cost-multiplier must be a finite number >= 0, got "
                          f"{cost_multiplier}")
    registry = registry or make_registry()
    path = resolve_model_path(model)
    metadata = read_metadata(path)
    spec = model_stage(registry, stage, metadata, path)
    options = _data(source, data_dir, cache_dir, seed, refresh)
    panel = load_stage_panel(registry.data_source(source), spec, options, through=split)
    resolved = resolve_device(device)
    costed = with_cost_multiplier(spec, cost_multiplier)
    env = build_backtest_env(registry, costed, panel, split, resolved)
    agent = load_for_evaluation(registry, path, spec, env, seed=seed, device=resolved,
                                algorithm=algorithm)
    result = evaluate_agent(agent, registry, costed, panel, split, model=str(path),
                            risk_free_rate=risk_free_rate, env=env,
                            trials=trials or int(metadata.get("selection_trials") or 1))
    files = None
    if out_dir is not None:
        stem = split if cost_multiplier == 1 else f"{split}_cost{cost_multiplier:g}x"
        directory = RunLayout(Path(out_dir)).report_dir(spec.name)
        if _report_of_another_model(directory / f"{stem}.json", path):
            # Never replace the report a run wrote for its own model (issue 14).
            stem = f"{stem}_{path.stem}"
        training = {key: metadata.get(key) for key in (
            "algorithm", "num_timesteps", "n_envs", "seed", "hyperparameters", "start_from",
            "selection_trials")}
        files = write_reports(result, directory, stem, training=training)
    return Evaluation(result=result, files=files)


def evaluate_universes(model: str | Path, *, pool: Sequence[str], sets: int = 20,
                       set_size: int | None = None, sets_seed: int = 0,
                       stage: str | None = None, split: Split = "validation",
                       source: str = "yfinance", data_dir: str | Path | None = None,
                       cache_dir: str | Path = "data_cache", refresh: bool = False,
                       seed: int = 0, device: str = "auto", algorithm: str | None = None,
                       out_dir: str | Path | None = ".", registry: Registry | None = None
                       ) -> UniverseVerdict:
    """Backtest ``model`` on ``sets`` sub-universes drawn from ``pool`` over one split,
    each beside 1/N rebalanced on the same days and costs (issue 11).

    Writes ``out_dir/reports/<stage>/<split>_universes.{json,md}``.

    :param pool: tickers to draw from; those without data over the split and two years
        before it are left out.
    :param set_size: tickers per set (default: as many as the stage trades).
    :param sets_seed: seed of the draws (the same sets for every model compared).
    """
    registry = registry or make_registry()
    path, spec = _model_and_stage(registry, model, stage)
    options = _data(source, data_dir, cache_dir, seed, refresh)
    resolved = resolve_device(device)
    verdict = verdict_on_universes(_loader(registry, path, spec, seed, resolved, algorithm),
                                   registry, spec, pool, sets=sets, set_size=set_size,
                                   seed=sets_seed, split=split, options=options)
    if out_dir is not None:
        directory = RunLayout(Path(out_dir)).report_dir(spec.name)
        write_json(directory / f"{split}_universes.json",
                   {**verdict.to_dict(), "model": str(path)})
        write_text(directory / f"{split}_universes.md",
                   f"# {spec.name} — {split} split, sub-universes\n\nModel: `{path}`\n\n"
                   f"{verdict.describe()}.\n")
    return verdict


# --- ensembles ---------------------------------------------------------------------------


def make_ensemble(models: Sequence[str | Path], out: str | Path) -> Path:
    """Combine model files of one stage into an ensemble file (their target weights are
    averaged); it loads wherever a model file does.

    :raises ModelError: for fewer than two models or models of different stages.
    """
    return write_ensemble(models, Path(out))


@attrs.frozen(eq=False)
class EnsembleResult:
    """A seed ensemble per stage, with each member run.

    :param out_dir: holds ``seed<k>/`` runs, ``models/<stage>_ensemble.zip`` and
        ``reports/<stage>/validation.*``.
    :param members: each seed's run.
    :param ensembles: stage name → the ensemble file.
    :param evaluations: stage name → the ensemble's validation evaluation.
    """

    out_dir: Path
    members: tuple[CurriculumResult, ...]
    ensembles: dict[str, Path]
    evaluations: dict[str, Evaluation]


def train_ensemble(curriculum: str = "default", *, seeds: Sequence[int] = (0, 1, 2),
                   stages: str | Sequence[str] | None = None, out_dir: str | Path = "ensemble",
                   source: str = "yfinance", data_dir: str | Path | None = None,
                   cache_dir: str | Path = "data_cache", refresh: bool = False,
                   registry: Registry | None = None, echo: Callable[[str], None] = click.echo,
                   **options: Any) -> EnsembleResult:
    """Train the curriculum once per seed (gates ignored, so every seed finishes), combine
    each stage's final models into ``models/<stage>_ensemble.zip`` and evaluate it on
    validation; the ensemble's gate is reported.

    :param options: the :func:`train_curriculum` options (``scale``, ``device``, …).
    """
    registry = registry or make_registry()
    if len(set(seeds)) < 2:
        raise ConfigError(f"an ensemble needs at least two different seeds, got {list(seeds)}")
    out = Path(out_dir)
    members = []
    for seed in seeds:
        echo(f"== ensemble member: seed {seed} in {out / f'seed{seed}'}")
        members.append(train_curriculum(
            curriculum, stages=stages, out_dir=out / f"seed{seed}", source=source,
            data_dir=data_dir, cache_dir=cache_dir, refresh=refresh, seed=seed,
            registry=registry, echo=echo, **{**options, "ignore_gates": True}))
    ensembles: dict[str, Path] = {}
    evaluations: dict[str, Evaluation] = {}
    layout = RunLayout(out)
    for index, result in enumerate(members[0].stages):
        name = result.stage
        finals = [m.stages[index].final_model for m in members]
        target = layout.root / "models" / f"{name}_ensemble.zip"
        ensembles[name] = write_ensemble([f for f in finals if f is not None], target,
                                         {"seeds": list(seeds)})
        evaluations[name] = evaluate(target, split="validation", source=source,
                                     data_dir=data_dir, cache_dir=cache_dir, seed=seeds[0],
                                     device=options.get("device", "auto"), out_dir=out,
                                     registry=registry)
        verdict = judge_gate(registry.stage(name).gate, evaluations[name].result)
        echo(f"{name} ensemble of {len(seeds)}: {verdict.describe()}")
    return EnsembleResult(out_dir=out, members=tuple(members), ensembles=ensembles,
                          evaluations=evaluations)


# --- comparison ---------------------------------------------------------------------------


def compare(curriculum: str = "default", *, seeds: Sequence[int] = (0, 1, 2),
            stages: str | Sequence[str] | None = None, out_dir: str | Path = "compare",
            source: str = "yfinance", data_dir: str | Path | None = None,
            cache_dir: str | Path = "data_cache", refresh: bool = False, data_seed: int = 0,
            registry: Registry | None = None, echo: Callable[[str], None] = click.echo,
            **options: Any) -> Comparison:
    """Train the curriculum and a from-scratch agent on its last stage with the same total
    steps, for each seed; compare them on the last stage's validation split.

    Writes ``out_dir/reports/compare.{json,md,png}``.

    :param options: ``device``, ``scale``, ``n_envs``, ``resume``, ``overwrite``,
        ``progress`` (:class:`~ploutos_core.comparison.runner.CompareOptions`).
    """
    registry = registry or make_registry()
    chosen = select_stages(registry, curriculum, stages)
    data = _data(source, data_dir, cache_dir, data_seed, refresh)
    compare_options = CompareOptions(out_dir=Path(out_dir), seeds=tuple(seeds), data=data,
                                     **options)
    comparison = ComparisonRunner(registry, compare_options, echo=echo).run(curriculum, chosen)
    write_comparison(comparison, Path(out_dir) / "reports")
    return comparison


# --- from model to market (issue 12) ------------------------------------------------------


def _as_date(value: str | dt.date | None, option: str) -> dt.date | None:
    import datetime as dt

    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{option} {value!r}: expected a date like 2024-03-28") from exc


def open_account(registry: Registry, spec: StageSpec, broker: str, *,
                 out_dir: str | Path = ".", ledger: str | Path | None = None,
                 initial_cash: float = 100_000.0, lock_timeout: float = 10.0,
                 broker_options: dict[str, str] | None = None
                 ) -> tuple[BrokerAccount, BrokerRequest]:
    """Open ``broker``'s account for ``spec``: the ledger ``ledger``, or
    ``out_dir/trading/<stage>/<broker>.sqlite``.

    :raises UnknownNameError: for an unknown broker.
    :raises BrokerError: for an unusable account (a corrupt ledger is refused untouched).
    """
    from ploutos_core.trading.contract import BrokerRequest

    chosen = registry.broker(broker)
    if not initial_cash > 0:
        raise ConfigError(f"--initial-cash must be > 0, got {initial_cash}")
    location = Path(ledger) if ledger else RunLayout(Path(out_dir)).ledger(spec.name, broker)
    request = BrokerRequest(stage=spec.name, tickers=spec.tickers,
                            cost_bps=spec.transaction_cost_bps, location=location,
                            initial_cash=initial_cash, lock_timeout=lock_timeout,
                            options=dict(broker_options or {}))
    return chosen.open(request), request


def _model_and_stage(registry: Registry, model: str | Path, stage: str | None
                     ) -> tuple[Path, StageSpec]:
    path = resolve_model_path(model)
    return path, model_stage(registry, stage, read_metadata(path), path)


def _loader(registry: Registry, path: Path, spec: StageSpec, seed: int, device: str,
            algorithm: str | None) -> Callable[[Any], Any]:
    def load(env: Any) -> Any:
        return load_for_evaluation(registry, path, spec, env, seed=seed, device=device,
                                   algorithm=algorithm)

    return load


def signal(model: str | Path, *, stage: str | None = None,
           as_of: str | dt.date | None = None, start: str | dt.date | None = None,
           positions: str | Path | None = None, broker: str | None = None,
           ledger: str | Path | None = None, out_dir: str | Path = ".",
           allow_stale: bool = False, max_lag: int = 1, whole_shares: bool = True,
           source: str = "yfinance", data_dir: str | Path | None = None,
           cache_dir: str | Path = "data_cache", refresh: bool = False, seed: int = 0,
           device: str = "auto", algorithm: str | None = None,
           registry: Registry | None = None) -> Signal:
    """The model's target weights at the close of ``as_of`` for the next session, and the
    orders that move an account there under the stage's turnover rule.

    Loads the stage's prices through ``as_of`` from its data source, computes the
    features exactly as training did and replays the policy from ``start`` (default: the
    first day of the stage's split holding ``as_of``), so a past day's weights equal
    those ``evaluate(...).daily()`` reports for it. Writes nothing.

    :param as_of: the day whose close the signal uses (default: today); the newest
        trading day of the data on or before it is used.
    :param start: the replay's first day.
    :param positions: a JSON or CSV positions file (the account's cash and shares).
    :param broker: read the holdings from this broker's account instead (``ledger`` or
        ``out_dir/trading/<stage>/<broker>.sqlite``).
    :param allow_stale: use prices older than ``max_lag`` business days before ``as_of``.
    :param whole_shares: round orders to whole shares.
    :raises StaleDataError: for stale prices (unless ``allow_stale``).
    :raises ModelError: for a missing model or one of another stage's shape.
    :raises ConfigError: for a bad positions file (unknown ticker, negative shares …).
    """
    import datetime as dt

    from ploutos_core.trading.holdings import read_positions
    from ploutos_core.trading.orders import plan_orders
    from ploutos_core.trading.signal import check_staleness, compute_signal, load_signal_panel

    registry = registry or make_registry()
    path, spec = _model_and_stage(registry, model, stage)
    if positions is not None and broker is not None:
        raise ConfigError("give the holdings either as --positions FILE or from --broker NAME, "
                          "not both")
    holdings = read_positions(positions, spec.tickers) if positions is not None else None
    if broker is not None:
        account, _ = open_account(registry, spec, broker, out_dir=out_dir, ledger=ledger)
        try:
            holdings = account.holdings()
        finally:
            account.close()
    requested = _as_date(as_of, "--as-of") or dt.date.today()
    data = _data(source, data_dir, cache_dir, seed, refresh)
    panel = load_signal_panel(registry, spec, data, requested)
    stale, lag = check_staleness(panel, requested, max_lag, allow_stale)
    resolved = resolve_device(device)
    result = compute_signal(registry, spec, path,
                            _loader(registry, path, spec, seed, resolved, algorithm), panel,
                            requested=requested, start=_as_date(start, "--start"), stale=stale,
                            lag_days=lag, device=resolved)
    if holdings is None:
        return result
    plan = plan_orders(holdings, spec.tickers, result.closes, result.target, spec.env,
                       spec.transaction_cost, whole_shares=whole_shares)
    return attrs.evolve(result, plan=plan, holdings=holdings)


def trade(model: str | Path, *, stage: str | None = None, broker: str = "paper",
          as_of: str | dt.date | None = None, start: str | dt.date | None = None,
          out_dir: str | Path = ".", ledger: str | Path | None = None,
          initial_cash: float = 100_000.0, lock_timeout: float = 10.0,
          broker_options: dict[str, str] | None = None, allow_stale: bool = False,
          max_lag: int = 1, whole_shares: bool = True, source: str = "yfinance",
          data_dir: str | Path | None = None, cache_dir: str | Path = "data_cache",
          refresh: bool = False, seed: int = 0, device: str = "auto",
          algorithm: str | None = None, registry: Registry | None = None) -> TradeCycle:
    """One daily cycle: load (``refresh``) the prices, compute the signal, plan the orders
    for the account and let the broker record them, at most once per trading day.

    The account is ``ledger``, or ``out_dir/trading/<stage>/<broker>.sqlite``; a snapshot
    of the cycle goes to ``<broker>_cycles/<day>.json`` beside it. A day already recorded
    changes nothing (``result.recorded`` is ``False``). Bad inputs — unknown model or
    broker, a model of another stage's shape, stale data, a corrupt ledger — raise
    before anything is written.

    :param initial_cash: cash of a new paper account.
    :param lock_timeout: seconds to wait for another process's cycle on the same account.
    :param broker_options: broker-specific settings.
    :raises BrokerBusyError: when another cycle holds the account past ``lock_timeout``.
    """
    import datetime as dt

    from ploutos_core.trading.cycle import run_cycle

    registry = registry or make_registry()
    path, spec = _model_and_stage(registry, model, stage)
    requested = _as_date(as_of, "--as-of") or dt.date.today()
    first = _as_date(start, "--start")
    account, request = open_account(registry, spec, broker, out_dir=out_dir, ledger=ledger,
                                    initial_cash=initial_cash, lock_timeout=lock_timeout,
                                    broker_options=broker_options)
    resolved = resolve_device(device)
    location = request.location or RunLayout(Path(out_dir)).ledger(spec.name, broker)
    try:
        return run_cycle(registry, spec, path,
                         _loader(registry, path, spec, seed, resolved, algorithm), account,
                         request, _data(source, data_dir, cache_dir, seed, refresh),
                         requested=requested, start=first, allow_stale=allow_stale,
                         max_lag=max_lag, whole_shares=whole_shares, device=resolved,
                         snapshots=location.parent / f"{location.stem}_cycles")
    finally:
        account.close()


def trade_status(stage: str, *, broker: str = "paper", out_dir: str | Path = ".",
                 ledger: str | Path | None = None, write: bool = True,
                 source: str = "yfinance", data_dir: str | Path | None = None,
                 cache_dir: str | Path = "data_cache", refresh: bool = False, seed: int = 0,
                 registry: Registry | None = None) -> TradeStatus:
    """An account's equity at each cycle day beside the stage's baselines on the same days
    (same costs), its holdings and the costs paid.

    Writes ``<broker>_status.json`` and ``<broker>_status.png`` beside the ledger unless
    ``write`` is false.
    """
    from ploutos_core.trading.signal import load_signal_panel
    from ploutos_core.trading.status import build_status, write_status

    registry = registry or make_registry()
    spec = registry.stage(stage)
    account, request = open_account(registry, spec, broker, out_dir=out_dir, ledger=ledger)
    try:
        history, holdings = account.history(), account.holdings()
    finally:
        account.close()
    panel = None
    if history:
        panel = load_signal_panel(registry, spec, _data(source, data_dir, cache_dir, seed,
                                                        refresh), history[-1].day)
    status = build_status(spec, history, holdings, panel, request.location)
    if write and request.location is not None:
        write_status(status, request.location.parent, f"{request.location.stem}_status")
    return status


# --- walk-forward retraining (issue 12) ---------------------------------------------------


def walkforward(stage: str, *, start: str | dt.date | None, end: str | dt.date | None = None,
                retrain_every: int = 21, window: str = "expanding", steps: int | None = None,
                load_model: str | Path | None = None, resume: bool = False,
                overwrite: bool = False, out_dir: str | Path = ".", source: str = "yfinance",
                data_dir: str | Path | None = None, cache_dir: str | Path = "data_cache",
                refresh: bool = False, seed: int = 0, device: str = "auto",
                n_envs: int | None = None, algorithm: str | None = None, scale: float = 1.0,
                progress: bool = False, loggers: Sequence[str] | None = None,
                registry: Registry | None = None, echo: Callable[[str], None] = click.echo
                ) -> WalkForward:
    """Retrain ``stage`` every ``retrain_every`` trading days from ``start`` (``--from``),
    each fold on data strictly before its first trading day (warm-started from the fold
    before, the first from ``load_model``), trade each period out of sample, and report
    the stitched days beside the baselines on exactly those days.

    Writes ``out_dir/walkforward/<stage>/`` (the plan, one run directory per fold) and
    ``out_dir/reports/<stage>/walkforward.{json,md,png}``, ``walkforward_daily.csv``,
    ``walkforward_folds.csv``. An interrupted walk-forward continues with ``resume``
    (finished folds are kept, the interrupted one continues from its checkpoint).

    :param window: ``expanding`` (from the stage's train start) or ``rolling:N`` (the
        last N trading days).
    :param steps: training steps per fold (default: the stage's timesteps × ``scale``).
    :raises ConfigError: for a bad plan, or earlier outputs without ``resume``/``overwrite``.
    """
    from ploutos_core.walkforward.plan import Window
    from ploutos_core.walkforward.runner import WalkForwardOptions, WalkForwardRunner

    registry = registry or make_registry()
    spec = registry.stage(stage)
    first = _as_date(start, "--from")
    if first is None:
        raise ConfigError("--from DATE is required: the first day traded out of sample")
    options = WalkForwardOptions(
        start=first, end=_as_date(end, "--to"), retrain_every=retrain_every,
        window=Window.parse(window), steps=steps,
        load_model=Path(load_model) if load_model else None, resume=resume,
        overwrite=overwrite, out_dir=Path(out_dir),
        data=_data(source, data_dir, cache_dir, seed, refresh), seed=seed,
        device=resolve_device(device), n_envs=n_envs, algorithm=algorithm, scale=scale,
        progress=progress, loggers=tuple(loggers) if loggers is not None else None)
    return WalkForwardRunner(registry, spec, options, echo).run()


def retrain(stage: str, *, model: str | Path | None = None, as_of: str | dt.date | None = None,
            holdout: int = 63, steps: int | None = None, out_dir: str | Path = ".",
            allow_stale: bool = False, max_lag: int = 1, source: str = "yfinance",
            data_dir: str | Path | None = None, cache_dir: str | Path = "data_cache",
            refresh: bool = False, seed: int = 0, device: str = "auto",
            n_envs: int | None = None, algorithm: str | None = None, scale: float = 1.0,
            progress: bool = False, loggers: Sequence[str] | None = None,
            registry: Registry | None = None, echo: Callable[[str], None] = click.echo
            ) -> Retrain:
    """One production fold: retrain ``stage``'s production model on everything up to
    ``as_of`` (default: the newest data), keeping the previous one, and promote the new
    model only if a shadow fold trained the same way before the last ``holdout`` trading
    days is not worse (Sharpe) than the production model on those days.

    Keeps ``out_dir/production/<stage>/``: ``current.zip`` (the production model),
    ``generations/gen_<k>.zip`` (every model) and ``lineage.json`` (which model each came
    from, the data fingerprints and dates, every decision). The same as-of day twice
    changes nothing.

    :param model: the first production model (only before a lineage exists).
    :param holdout: trading days of the most recent out-of-sample window.
    :param steps: training steps of a retraining (default: the stage's timesteps × ``scale``).
    """
    import datetime as dt

    from ploutos_core.walkforward.retrain import run_retrain
    from ploutos_core.walkforward.runner import WalkForwardOptions

    registry = registry or make_registry()
    spec = registry.stage(stage)
    requested = _as_date(as_of, "--as-of") or dt.date.today()
    options = WalkForwardOptions(
        start=requested, steps=steps, out_dir=Path(out_dir),
        data=_data(source, data_dir, cache_dir, seed, refresh), seed=seed,
        device=resolve_device(device), n_envs=n_envs, algorithm=algorithm, scale=scale,
        progress=progress, loggers=tuple(loggers) if loggers is not None else None)
    return run_retrain(registry, spec, options, model=Path(model) if model else None,
                       requested=requested, holdout=holdout, allow_stale=allow_stale,
                       max_lag=max_lag, echo=echo)
