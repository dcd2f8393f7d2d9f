"""``ploutos retrain``: one production fold, promoted only when it is not worse.

A model trained on everything up to today cannot be judged on recent days it has
seen. So the procedure is judged instead: a *shadow* fold is retrained exactly as the
new model will be (warm-started from the production model, the same steps), on the
data before the most recent ``holdout`` trading days, and backtested on those days
beside the production model. When the shadow's Sharpe ratio is not below the
production model's, the new model is trained on everything up to the as-of day and
promoted to ``production/<stage>/current.zip``; otherwise the production model stays.
Every model is kept (``generations/gen_<k>.zip``) and ``lineage.json`` records where
each came from, what data it saw (fingerprints, dates) and every decision.

The comparison is out of sample for the shadow; it is out of sample for the
production model too when retraining runs every ``holdout`` days (the production
model was then trained before the window); otherwise the production model is
favoured, which errs on the side of keeping it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ploutos_core.agents.model_files import read_metadata, resolve_model_path
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import DateRange
from ploutos_core.data.stage_data import stage_request_until
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.evaluate import (
    build_backtest_env,
    evaluate_agent,
    load_for_evaluation,
)
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.atomic import write_json
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.trading.signal import check_staleness, next_business_day
from ploutos_core.walkforward.plan import Fold
from ploutos_core.walkforward.runner import WalkForwardOptions, train_fold

LINEAGE = "lineage.json"
CURRENT = "current.zip"
DECISION = "decision.json"


@attrs.frozen(eq=False)
class Retrain:
    """What one ``ploutos retrain`` decided.

    :param stage: the stage.
    :param as_of: the newest trading day trained on.
    :param previous: the production model before the call.
    :param promoted: whether a new model replaced it.
    :param current: ``production/<stage>/current.zip`` after the call.
    :param decision: the decision's record (also ``runs/<as_of>/decision.json``).
    :param lineage: ``production/<stage>/lineage.json``.
    :param already: ``True`` when the day had been decided before (nothing changed).
    :param previous_result: the production model on the holdout window.
    :param shadow_result: the shadow fold on the same days.
    """

    stage: str
    as_of: dt.date
    previous: Path
    promoted: bool
    current: Path
    decision: dict[str, Any]
    lineage: Path
    already: bool = False
    previous_result: EvaluationResult | None = None
    shadow_result: EvaluationResult | None = None

    def describe(self) -> str:
        """A few lines for the terminal."""
        d = self.decision
        if self.already:
            return (f"{self.stage}: retraining through {self.as_of} was decided on "
                    f"{d['decided_at']} ({'promoted' if d['promoted'] else 'kept'}); nothing "
                    f"changed. Production model: {self.current}")
        verdict = (f"promoted generation {d['new_generation']} (trained through {self.as_of})"
                   if self.promoted else "kept the production model")
        return (f"{self.stage}: on the holdout {d['holdout_first']}…{d['holdout_last']} the "
                f"shadow fold's Sharpe is {_fmt(d['shadow_sharpe'])}, the production model's "
                f"{_fmt(d['previous_sharpe'])}: {verdict}.\n"
                f"Production model: {self.current}; lineage in {self.lineage}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _sharpe(result: EvaluationResult) -> float | None:
    value = result.agent.summary.sharpe
    return float(value) if math.isfinite(value) else None


def _read_lineage(path: Path, stage: StageSpec) -> dict[str, Any]:
    if not path.exists():
        return {"stage": stage.name, "current": None, "generations": [], "decisions": []}
    try:
        lineage: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); restore it from a backup or "
                          f"choose another --out") from exc
    return lineage


def _copy(source: Path, target: Path) -> Path:
    return RunLayout(target.parent).promote(source, target)


def run_retrain(registry: Registry, stage: StageSpec, options: WalkForwardOptions, *,
                model: Path | None, requested: dt.date, holdout: int, allow_stale: bool,
                max_lag: int, echo: Callable[[str], None]) -> Retrain:
    """Retrain ``stage``'s production model through ``requested`` and promote it when the
    shadow fold is not worse on the last ``holdout`` trading days.

    :param model: the first production model (only when ``production/<stage>`` has none).
    :raises ConfigError: for a missing production model, too short a history, or a
        ``model`` given when a lineage exists.
    :raises StaleDataError: for stale prices (unless ``allow_stale``).
    """
    directory = RunLayout(options.out_dir).production_dir(stage.name)
    lineage_path, current = directory / LINEAGE, directory / CURRENT
    lineage = _read_lineage(lineage_path, stage)
    if holdout < 2:
        raise ConfigError(f"--holdout must be at least 2 trading days, got {holdout}")
    if lineage["generations"] and model is not None:
        raise ConfigError(f"{directory} already has a production lineage (current: {current}); "
                          f"omit --model, or choose another --out for another lineage")
    if not lineage["generations"] and model is None:
        raise ConfigError(f"{directory} has no production model yet; pass --model MODEL (e.g. "
                          f"models/{stage.name}_final) for the first retrain")
    source = registry.data_source(options.data.source)
    registry.algorithm(options.algorithm or stage.algorithm)
    panel = load_panel(source, stage_request_until(stage, options.data, requested))
    check_staleness(panel, requested, max_lag, allow_stale)
    as_of = panel.date(panel.n_days - 1)
    run_dir = directory / "runs" / as_of.isoformat()
    if (run_dir / DECISION).exists():
        earlier: dict[str, Any] = json.loads((run_dir / DECISION).read_text())
        return Retrain(stage=stage.name, as_of=as_of, previous=Path(earlier["previous"]),
                       promoted=bool(earlier["promoted"]), current=current, decision=earlier,
                       lineage=lineage_path, already=True)
    last = panel.n_days - 1
    first = last - holdout
    train_start = stage.splits.train.start
    base = 0 if train_start is None else int(panel.index_range(
        DateRange(train_start, None), label="train split")[0])
    if first - base < stage.env.episode_length + 1:
        raise ConfigError(f"only {max(first - base, 0)} trading days before the holdout "
                          f"({panel.date(first)}…{as_of}); use a shorter --holdout or more "
                          f"history")
    if not lineage["generations"]:
        assert model is not None
        origin = resolve_model_path(model)
        seed_model = _copy(origin, directory / "generations" / "gen_000.zip")
        metadata = read_metadata(seed_model)
        lineage["generations"].append({
            "generation": 0, "model": str(seed_model), "origin": str(origin), "parent": None,
            "trained_through": None, "steps": metadata.get("num_timesteps"),
            "data_fingerprint": None, "created_at": _now()})
        lineage["current"] = 0
        _copy(seed_model, current)
        write_json(lineage_path, lineage)
    generation = int(lineage["current"])
    previous = Path(lineage["generations"][generation]["model"])
    steps = options.steps or runner_steps(stage, options)
    shadow_fold = Fold(index=1, train=DateRange(train_start, panel.date(first - 1)),
                       first=panel.date(first), last=panel.date(last - 1), first_row=first,
                       last_row=last - 1)
    shadow = train_fold(registry, stage, panel, shadow_fold, steps, previous,
                        run_dir / "shadow", options, echo)
    window = shadow_fold.stage(stage, as_of)

    def backtest(path: Path) -> EvaluationResult:
        env = build_backtest_env(registry, window, panel, "validation", options.device)
        agent = load_for_evaluation(registry, path, stage, env, seed=options.seed,
                                    device=options.device, algorithm=options.algorithm)
        return evaluate_agent(agent, registry, window, panel, "validation", model=str(path),
                              env=env)

    previous_result, shadow_result = backtest(previous), backtest(shadow.model)
    previous_sharpe, shadow_sharpe = _sharpe(previous_result), _sharpe(shadow_result)
    promoted = shadow_sharpe is not None and (previous_sharpe is None
                                              or shadow_sharpe >= previous_sharpe)
    decision: dict[str, Any] = {
        "as_of": as_of.isoformat(), "previous": str(previous),
        "previous_generation": generation, "holdout_first": panel.date(first).isoformat(),
        "holdout_last": as_of.isoformat(), "holdout_days": holdout,
        "previous_sharpe": previous_sharpe, "shadow_sharpe": shadow_sharpe,
        "shadow_model": str(shadow.model),
        "shadow_trained_through": panel.date(first - 1).isoformat(),
        "shadow_data_fingerprint": shadow.fingerprint, "steps": steps, "promoted": promoted,
        "new_generation": None, "source": options.data.source, "decided_at": _now()}
    if promoted:
        full = Fold(index=2, train=DateRange(train_start, as_of),
                    first=next_business_day(as_of), last=next_business_day(as_of),
                    first_row=panel.n_days, last_row=panel.n_days)
        trained = train_fold(registry, stage, panel, full, steps, previous,
                             run_dir / "production", options, echo)
        new_generation = len(lineage["generations"])
        kept = _copy(trained.model, directory / "generations" / f"gen_{new_generation:03d}.zip")
        lineage["generations"].append({
            "generation": new_generation, "model": str(kept), "origin": str(trained.model),
            "parent": generation, "trained_through": as_of.isoformat(),
            "train_start": train_start.isoformat() if train_start else None,
            "steps": trained.steps, "data_fingerprint": trained.fingerprint,
            "created_at": _now()})
        lineage["current"] = new_generation
        decision["new_generation"] = new_generation
        _copy(kept, current)
    lineage["decisions"].append(decision)
    write_json(run_dir / DECISION, decision)
    write_json(lineage_path, lineage)
    return Retrain(stage=stage.name, as_of=as_of, previous=previous, promoted=promoted,
                   current=current, decision=decision, lineage=lineage_path,
                   previous_result=previous_result, shadow_result=shadow_result)


def runner_steps(stage: StageSpec, options: WalkForwardOptions) -> int:
    """Steps of a retraining: ``--steps``, else the stage's timesteps × ``--scale``."""
    from ploutos_core.training.builder import scaled_timesteps

    return options.steps or scaled_timesteps(stage, options.scale)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
