"""Deterministic backtests of an agent and of baselines on the same days and costs."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import Agent
from ploutos_core.data.validation import as_date
from ploutos_core.env.accounting import rebalance_and_hold
from ploutos_core.env.exposure import equal_weight_daily_returns
from ploutos_core.env.exposure import volatility_target_exposure as exposure_rule
from ploutos_core.errors import PluginError
from ploutos_core.evaluation.metrics import (
    PerformanceSummary,
    bootstrap_sharpe_difference_pvalue,
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    summarize,
)
from ploutos_core.runfiles.atomic import json_number

if TYPE_CHECKING:
    import pandas as pd


@attrs.frozen(eq=False)
class Backtest:
    """One strategy's daily path over a split.

    :param name: ``agent`` or a baseline's name.
    :param days: panel row index of each decision day (the return runs to the next day).
    :param returns: simple daily returns after costs.
    :param turnover: traded fraction of the portfolio each day.
    :param costs: costs paid each day, as a fraction of the portfolio value.
    :param summary: performance statistics of ``returns``.
    :param weights: ``(n_days, n_assets + 1)`` weights held after each day's trade (cash
        last), or ``None`` when the environment did not report them.
    """

    name: str
    days: NDArray[np.int64]
    returns: NDArray[np.float64]
    turnover: NDArray[np.float64]
    costs: NDArray[np.float64]
    summary: PerformanceSummary
    weights: NDArray[np.float64] | None = None

    @classmethod
    def from_arrays(cls, name: str, days: NDArray[np.int64], returns: NDArray[np.float64],
                    turnover: NDArray[np.float64], costs: NDArray[np.float64],
                    risk_free_rate: float = 0.0,
                    weights: NDArray[np.float64] | None = None) -> Backtest:
        """Build a backtest and compute its summary."""
        return cls(name=name, days=days, returns=returns, turnover=turnover, costs=costs,
                   summary=summarize(returns, risk_free_rate=risk_free_rate), weights=weights)

    @property
    def equity(self) -> NDArray[np.float64]:
        """Portfolio value after each day's return, starting from 1."""
        return np.cumprod(1.0 + self.returns, dtype=np.float64)

    @property
    def average_turnover(self) -> float:
        """Mean daily turnover."""
        return float(self.turnover.mean())

    @property
    def total_costs(self) -> float:
        """Costs paid, in units of the initial portfolio value."""
        values = np.concatenate([[1.0], np.cumprod(1.0 + self.returns)[:-1]])
        return float((self.costs * values).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (non-finite numbers become ``None``)."""
        stats = {key: json_number(value) for key, value in self.summary.to_dict().items()}
        stats["n_days"] = self.summary.n_days
        stats["average_daily_turnover"] = self.average_turnover
        stats["costs_paid"] = self.total_costs
        return {"name": self.name, **stats}


def run_agent_backtest(agent: Agent, env: Any, risk_free_rate: float = 0.0) -> Backtest:
    """Step a ``backtest``-mode environment once through its split with deterministic actions.

    :param agent: the policy.
    :param env: a one-environment VecEnv built with ``mode="backtest"``.
    :raises PluginError: when the environment's infos lack the backtest fields.
    """
    return scheduled_backtest(env, lambda _: agent, risk_free_rate=risk_free_rate)


def scheduled_backtest(env: Any, agent_for_row: Callable[[int], Agent], *,
                       first_row: int = 0, risk_free_rate: float = 0.0) -> Backtest:
    """Step a ``backtest``-mode environment once through its split; the decision of each
    day is made by ``agent_for_row(row)`` (walk-forward: the fold in charge that day). An
    agent taking over is reset first (recurrent policies forget earlier days).

    :param first_row: the panel row of the environment's first decision (given to
        ``agent_for_row`` before the environment has reported a day).
    :raises PluginError: when the environment's infos lack the backtest fields.
    """
    observation = env.reset()
    row = first_row
    days, returns, turnover, costs, weights = [], [], [], [], []
    previous: Agent | None = None
    while True:
        agent = agent_for_row(row)
        if agent is not previous:
            agent.reset_state()  # a recurrent policy must not carry memory across agents
            previous = agent
        observation, _, dones, infos = env.step(agent.predict(observation, deterministic=True))
        info = infos[0]
        try:
            days.append(int(info["day"]))
            returns.append(float(info["net_return"]))
            turnover.append(float(info["turnover"]))
            costs.append(float(info["cost"]))
            weights.append(np.asarray(info.get("weights", ()), dtype=np.float64))
        except KeyError as exc:
            raise PluginError(
                f"the environment's backtest info lacks {exc}; env builders must report "
                f"net_return, turnover, cost and day in backtest mode") from exc
        row = days[-1] + 1
        if dones[0]:
            break
    held = np.stack(weights) if weights and all(w.size for w in weights) else None
    return Backtest.from_arrays("agent", np.array(days), np.array(returns), np.array(turnover),
                                np.array(costs), risk_free_rate, weights=held)


def volatility_target_exposure(close: NDArray[np.float64], days: NDArray[np.int64]
                               ) -> NDArray[np.float64]:
    """Share of the portfolio in 1/N on each decision day of the volatility-targeted baseline.

    The exposure is the trailing 252-day realised volatility of the daily-rebalanced 1/N
    portfolio divided by its trailing 21-day volatility, capped at 1 (Moreira & Muir,
    2017): less invested when recent volatility is above its norm. Both use closes up
    to the decision day only; with too little history the baseline is fully invested.
    The environment's ``exposure = "volatility_target"`` uses the same definition
    (:mod:`ploutos_core.env.exposure`).
    """
    growth = np.ones_like(close, dtype=np.float64)
    growth[:-1] = close[1:] / close[:-1]
    return exposure_rule(equal_weight_daily_returns(growth), days)


def benchmark_name(tickers: tuple[str, ...]) -> str:
    """The baseline that is the stage's ``equal_weight`` benchmark: 1/N rebalanced, or
    buy-and-hold of the only asset."""
    return f"buy_and_hold_{tickers[0]}" if len(tickers) == 1 else "equal_weight_rebalanced"


def baseline_backtests(close: NDArray[np.float64], tickers: tuple[str, ...],
                       days: NDArray[np.int64], cost_rate: float,
                       risk_free_rate: float = 0.0) -> list[Backtest]:
    """Buy-and-hold of each asset, equal-weight buy-and-hold, equal-weight rebalanced,
    volatility-targeted equal weight, cash.

    Every baseline starts in cash on the first decision day, like the agent, and
    pays the same cost per unit of turnover.

    :param close: ``(n_days, n_assets)`` closes of the panel (with the history before
        the split, which the volatility-targeted baseline looks back on).
    :param tickers: asset names.
    :param days: the agent's decision days (consecutive panel rows).
    :param cost_rate: cost per unit of turnover.
    """
    n_assets = len(tickers)
    growth = close[days + 1] / close[days]
    equal = np.append(np.full(n_assets, 1.0 / n_assets), 0.0)
    # (name, target weights on each decision day, rebalance every day?)
    plans: list[tuple[str, NDArray[np.float64], bool]] = [
        (f"buy_and_hold_{t}", np.eye(n_assets + 1)[i], False) for i, t in enumerate(tickers)
    ]
    if n_assets > 1:
        plans += [("equal_weight_buy_and_hold", equal, False),
                  ("equal_weight_rebalanced", equal, True)]
    exposure = volatility_target_exposure(close, days)[:, None]
    plans.append(("volatility_targeted_equal_weight",
                  np.concatenate([equal[:-1] * exposure, 1.0 - exposure], axis=1), True))
    plans.append(("cash", np.eye(n_assets + 1)[-1], True))
    results = []
    for name, target, rebalance in plans:
        targets = np.broadcast_to(target, (len(days), n_assets + 1))
        weights = np.eye(n_assets + 1)[-1]
        rows, held = [], []
        for day in range(len(days)):
            chosen = targets[day] if (rebalance or day == 0) else weights
            step = rebalance_and_hold(weights, chosen, growth[day], cost_rate)
            rows.append((float(step.net_growth) - 1.0, float(step.turnover), float(step.cost)))
            held.append(chosen)
            weights = step.weights
        values = np.array(rows)
        results.append(Backtest.from_arrays(name, days, values[:, 0], values[:, 1], values[:, 2],
                                            risk_free_rate, weights=np.array(held)))
    return results


@attrs.frozen(eq=False)
class EvaluationResult:
    """An agent's out-of-sample backtest beside its baselines.

    :param stage: the stage evaluated.
    :param split: ``validation`` or ``test`` (or ``train``, reported as in-sample).
    :param model: the model file evaluated.
    :param start: first decision day.
    :param end: last day of the split (the last return ends here).
    :param cost_bps: transaction cost charged, in basis points.
    :param agent: the agent's backtest.
    :param baselines: baselines on the same days and costs.
    :param dates: calendar date of each decision day, and the final day.
    :param tickers: the assets traded, in the order of the agent's weights.
    :param trials: configurations looked at before this model was chosen (for the
        deflated Sharpe ratio; a tuned model records its study's trial count).
    """

    stage: str
    split: str
    model: str
    start: dt.date
    end: dt.date
    cost_bps: float
    agent: Backtest
    baselines: tuple[Backtest, ...]
    dates: NDArray[np.datetime64]
    tickers: tuple[str, ...] = ()
    trials: int = 1

    @property
    def best_baseline(self) -> Backtest:
        """The baseline with the highest Sharpe ratio."""
        return max(self.baselines, key=lambda b: b.summary.sharpe)

    @property
    def benchmark(self) -> Backtest:
        """The stage's benchmark baseline (see :func:`benchmark_name`)."""
        name = benchmark_name(self.tickers)
        return next(b for b in self.baselines if b.name == name)

    def baseline(self, name: str) -> Backtest:
        """The baseline called ``name`` (e.g. ``volatility_targeted_equal_weight``).

        :raises KeyError: when the report has no such baseline.
        """
        for backtest in self.baselines:
            if backtest.name == name:
                return backtest
        raise KeyError(f"no baseline {name!r}; have {[b.name for b in self.baselines]}")

    @property
    def sharpe_vs_best_baseline(self) -> float:
        """Agent Sharpe minus the best baseline's."""
        return self.agent.summary.sharpe - self.best_baseline.summary.sharpe

    @property
    def probabilistic_sharpe(self) -> float:
        """Probability that the agent's true Sharpe exceeds the best baseline's observed one."""
        benchmark = self.best_baseline.summary.sharpe
        if not math.isfinite(benchmark):
            return math.nan
        return probabilistic_sharpe_ratio(self.agent.returns, benchmark_sharpe=benchmark)

    @property
    def bootstrap_p_value(self) -> float | None:
        """Paired block-bootstrap p-value of "agent Sharpe > best baseline Sharpe".

        ``None`` when either series is constant (e.g. the best baseline is cash).
        """
        try:
            return bootstrap_sharpe_difference_pvalue(self.agent.returns,
                                                      self.best_baseline.returns)
        except ValueError:
            return None

    @property
    def deflated_sharpe(self) -> float:
        """Deflated Sharpe ratio of the agent given :attr:`trials` (Bailey & López de Prado,
        2014): the probability that its Sharpe ratio beats what the best of that many
        configurations without skill would show."""
        try:
            return deflated_sharpe_ratio(self.agent.returns, self.trials)
        except ValueError:
            return math.nan

    @property
    def in_sample(self) -> bool:
        """True for the training split: its Sharpe is not an out-of-sample result."""
        return self.split == "train"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        best = self.best_baseline
        return {
            "stage": self.stage,
            "split": self.split,
            "in_sample": self.in_sample,
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "transaction_cost_bps": self.cost_bps,
            "agent": self.agent.to_dict(),
            "baselines": [b.to_dict() for b in self.baselines],
            "comparison": {
                "best_baseline": best.name,
                "sharpe_minus_best_baseline": json_number(self.sharpe_vs_best_baseline),
                "probabilistic_sharpe_vs_best_baseline": json_number(self.probabilistic_sharpe),
                "bootstrap_p_value": self.bootstrap_p_value,
                "benchmark": self.benchmark.name if self.tickers else None,
                "sharpe_minus_benchmark": json_number(
                    self.agent.summary.sharpe - self.benchmark.summary.sharpe)
                if self.tickers else None,
                "trials": self.trials,
                "deflated_sharpe_ratio": json_number(self.deflated_sharpe),
            },
        }


def daily_frame(result: EvaluationResult) -> pd.DataFrame:
    """The daily series of the agent and every baseline, one row per strategy and day.

    Columns: ``strategy``, ``date`` (the decision day, at whose close the portfolio
    trades), ``next_date`` (the day the return is earned to), ``weight_<TICKER>`` …
    ``weight_cash`` (held after the trade), ``net_return`` (after costs), ``equity``
    (value at ``next_date``, starting from 1), ``turnover`` and ``cost``.
    """
    import pandas as pd

    n_assets = len(result.tickers)
    columns = [f"weight_{t}" for t in result.tickers] + ["weight_cash"]
    frames = []
    for backtest in (result.agent, *result.baselines):
        n = len(backtest.returns)
        weights = backtest.weights if backtest.weights is not None and \
            backtest.weights.shape == (n, n_assets + 1) else np.full((n, n_assets + 1), np.nan)
        frame = pd.DataFrame(weights, columns=columns)
        frame.insert(0, "next_date", result.dates[1:n + 1])
        frame.insert(0, "date", result.dates[:n])
        frame.insert(0, "strategy", backtest.name)
        frame["net_return"] = backtest.returns
        frame["equity"] = backtest.equity
        frame["turnover"] = backtest.turnover
        frame["cost"] = backtest.costs
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def evaluation_dates(dates: NDArray[np.datetime64], days: NDArray[np.int64]
                     ) -> NDArray[np.datetime64]:
    """Decision dates plus the final day (one more than returns)."""
    return np.append(dates[days], dates[days[-1] + 1])


def first_and_last(dates: NDArray[np.datetime64], days: NDArray[np.int64]
                   ) -> tuple[dt.date, dt.date]:
    """Calendar dates of the first decision and of the final day."""
    return as_date(dates[days[0]]), as_date(dates[days[-1] + 1])
