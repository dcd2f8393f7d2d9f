"""A verdict with less noise than one Sharpe ratio: the agent on K sub-universes of a pool.

One 4-year Sharpe ratio has a 95 % interval about ±1 wide. The asset-set policy
trades any set of assets, so the same model can be backtested on K sets of tickers
drawn from a pool, each over the same split, each beside 1/N rebalanced on the same
days and costs. The distribution of the agent's Sharpe minus 1/N's across sets —
median, spread, share of sets won — says more than one draw (issue 11).

Sets are drawn (seeded, without repetition inside a set) from the pool tickers whose
data cover the split and the features' warm-up before it.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from ploutos_core.agents.contract import Agent
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.panel import DateRange
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.env.base import Split
from ploutos_core.errors import ConfigError, DataError, PloutosWarning
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.evaluate import build_backtest_env, evaluate_agent
from ploutos_core.pluginmanager.registry import Registry

#: history kept before the split for features (and the volatility-targeted baseline).
HISTORY_YEARS = 2


@attrs.frozen
class SetResult:
    """One sub-universe.

    :param tickers: the set.
    :param sharpe: the agent's Sharpe ratio.
    :param benchmark_sharpe: 1/N rebalanced's on the same days and costs.
    :param turnover: the agent's mean daily turnover.
    :param vol_target_sharpe: the volatility-targeted 1/N's (the timing rule an agent must
        beat before it may claim to have learned timing).
    """

    tickers: tuple[str, ...]
    sharpe: float
    benchmark_sharpe: float
    turnover: float
    vol_target_sharpe: float = math.nan

    @property
    def difference(self) -> float:
        """Agent Sharpe minus the benchmark's."""
        return self.sharpe - self.benchmark_sharpe

    @property
    def difference_vs_vol_target(self) -> float:
        """Agent Sharpe minus the volatility-targeted 1/N's."""
        return self.sharpe - self.vol_target_sharpe


@attrs.frozen
class UniverseVerdict:
    """The agent on every set.

    :param stage: the stage whose costs and split applied.
    :param split: the split backtested.
    :param pool: the tickers sets were drawn from (those with enough data).
    :param sets: one result per set.
    """

    stage: str
    split: str
    pool: tuple[str, ...]
    sets: tuple[SetResult, ...]

    @property
    def differences(self) -> list[float]:
        """Agent Sharpe minus 1/N's, per set."""
        return [s.difference for s in self.sets]

    @property
    def share_won(self) -> float:
        """Share of sets where the agent's Sharpe is above 1/N's."""
        return float(np.mean([d > 0 for d in self.differences]))

    @property
    def differences_vs_vol_target(self) -> list[float]:
        """Agent Sharpe minus the volatility-targeted 1/N's, per set."""
        return [s.difference_vs_vol_target for s in self.sets]

    @property
    def share_won_vs_vol_target(self) -> float:
        """Share of sets where the agent's Sharpe is above the volatility-targeted 1/N's."""
        return float(np.mean([d > 0 for d in self.differences_vs_vol_target]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready verdict with its summary."""
        diffs = np.array(self.differences)
        return {
            "stage": self.stage, "split": self.split, "pool": list(self.pool),
            "summary": {"sets": len(self.sets), "median_difference": float(np.median(diffs)),
                        "q1": float(np.quantile(diffs, 0.25)),
                        "q3": float(np.quantile(diffs, 0.75)),
                        "min": float(diffs.min()), "max": float(diffs.max()),
                        "share_won": self.share_won,
                        "median_difference_vs_vol_target": float(
                            np.median(self.differences_vs_vol_target)),
                        "share_won_vs_vol_target": self.share_won_vs_vol_target},
            "sets": [{**attrs.asdict(s), "tickers": list(s.tickers),
                      "difference": s.difference,
                      "difference_vs_vol_target": s.difference_vs_vol_target}
                     for s in self.sets],
        }

    def describe(self) -> str:
        """``20 sets of 5: agent Sharpe − 1/N median +0.05 (IQR −0.10…+0.12), won 12/20``."""
        summary = self.to_dict()["summary"]
        won = sum(d > 0 for d in self.differences)
        return (f"{len(self.sets)} sets of {len(self.sets[0].tickers)} from a pool of "
                f"{len(self.pool)}: agent Sharpe − 1/N rebalanced median "
                f"{summary['median_difference']:+.2f} (IQR {summary['q1']:+.2f}…"
                f"{summary['q3']:+.2f}, range {summary['min']:+.2f}…{summary['max']:+.2f}); "
                f"agent ahead in {won}/{len(self.sets)} sets ({self.share_won:.0%}); against "
                f"the volatility-targeted 1/N median "
                f"{summary['median_difference_vs_vol_target']:+.2f}, ahead in "
                f"{sum(d > 0 for d in self.differences_vs_vol_target)}/{len(self.sets)}")


def set_stage(stage: StageSpec, tickers: tuple[str, ...], split: Split) -> StageSpec:
    """``stage`` trading ``tickers``, with only :data:`HISTORY_YEARS` of history loaded
    before ``split`` (a shorter "train" range, so later listings qualify)."""
    start = stage.splits.get(split).start
    if start is None:
        raise ConfigError(f"{stage.name}: the {split} split has no start date")
    history_start = start - dt.timedelta(days=365 * HISTORY_YEARS)
    history = DateRange(history_start, start - dt.timedelta(days=1))
    splits = stage.splits
    if split == "validation":
        splits = attrs.evolve(splits, train=history, selection=None)
    elif split == "test":
        splits = attrs.evolve(splits, validation=history, selection=None,
                              train=DateRange(history_start - dt.timedelta(days=730),
                                              history_start - dt.timedelta(days=1)))
    else:
        raise ConfigError("sub-universe verdicts are out of sample: use validation or test")
    return attrs.evolve(stage, tickers=tickers, splits=splits, universe=attrs.evolve(
        stage.universe, tickers=()))


def eligible_tickers(registry: Registry, stage: StageSpec, pool: Sequence[str], split: Split,
                     options: DataOptions) -> list[str]:
    """The pool tickers whose data cover ``split`` and the history before it."""
    source = registry.data_source(options.source)
    keep = []
    for ticker in pool:
        probe = set_stage(stage, (ticker,), split)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PloutosWarning)  # late starts are filtered here
                panel = load_stage_panel(source, probe, options, through=split)
            first, last = panel.index_range(probe.splits.get(split), label=f"{split} split")
        except DataError:
            continue
        end = probe.splits.get(split).end
        covers_end = end is None or panel.date(last) >= end - dt.timedelta(days=7)
        history = probe.splits.train.start
        covers_start = history is None or panel.date(0) <= history
        if covers_end and covers_start and first > 0:
            keep.append(ticker)
    return keep


def evaluate_universes(load_agent: Callable[[Any], Agent], registry: Registry,
                       stage: StageSpec, pool: Sequence[str], *, sets: int = 20,
                       set_size: int | None = None, seed: int = 0, split: Split = "validation",
                       options: DataOptions) -> UniverseVerdict:
    """Backtest the agent on ``sets`` sub-universes of ``set_size`` tickers drawn from ``pool``.

    :param load_agent: builds the agent for a backtest environment (its spaces depend on
        the set's size).
    :raises ConfigError: when the pool has fewer eligible tickers than a set needs.
    """
    size = set_size or len(stage.tickers)
    eligible = eligible_tickers(registry, stage, pool, split, options)
    if len(eligible) < size or math.comb(len(eligible), size) < sets:
        raise ConfigError(
            f"only {len(eligible)} of the {len(pool)} pool tickers cover the {split} split and "
            f"{HISTORY_YEARS} years before it; {sets} distinct sets of {size} need more")
    rng = np.random.default_rng(seed)
    drawn: list[tuple[str, ...]] = []
    while len(drawn) < sets:
        choice = tuple(sorted(rng.choice(eligible, size=size, replace=False).tolist()))
        if choice not in drawn:
            drawn.append(choice)
    source = registry.data_source(options.source)
    agent = None
    results = []
    for tickers in drawn:
        spec = set_stage(stage, tickers, split)
        panel = load_stage_panel(source, spec, options, through=split)
        env = build_backtest_env(registry, spec, panel, split)
        agent = agent or load_agent(env)
        result: EvaluationResult = evaluate_agent(agent, registry, spec, panel, split,
                                                  model="universe verdict", env=env)
        results.append(SetResult(tickers=tickers, sharpe=result.agent.summary.sharpe,
                                 benchmark_sharpe=result.benchmark.summary.sharpe,
                                 turnover=result.agent.average_turnover,
                                 vol_target_sharpe=result.baseline(
                                     "volatility_targeted_equal_weight").summary.sharpe))
    return UniverseVerdict(stage=stage.name, split=split, pool=tuple(eligible),
                           sets=tuple(results))
