"""Tomorrow's target weights: replay a model through the stage's environment up to a day.

The observation a policy sees holds its portfolio's current weights, and the stage's
turnover rule smooths targets from one day to the next, so a decision depends on
every decision since a known start. The signal therefore *replays* the policy, as a
deterministic backtest, from a start day (by default the first day of the stage's
split that holds the as-of day: the test split for live trading) through the as-of
day, on prices loaded exactly as training and evaluation load them (same first day,
same causal features). The replay's decision at the as-of close is the signal; for a
past day it equals the weights ``ploutos evaluate`` reports for that day when both
start on the same day (``tests/test_trading.py`` checks a whole validation year).

The environment makes its last decision one row before the end of its split, so the
as-of day is followed by one placeholder row (the next business day, at the as-of
prices); its only use is to let the environment decide at the as-of close, and its
return is never read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import Agent
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.config.stage import StageSpec, trading_splits
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import FIELDS, DateRange, Panel
from ploutos_core.data.stage_data import DataOptions, stage_request_until
from ploutos_core.data.validation import as_date
from ploutos_core.errors import ConfigError, ModelError, PluginError, StaleDataError
from ploutos_core.evaluation.evaluate import build_backtest_env
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.trading.contract import Holdings, MarketCloses
from ploutos_core.trading.orders import OrderPlan

if TYPE_CHECKING:
    import pandas as pd

Array = NDArray[np.float64]

#: business days the newest prices may lag the as-of date (a holiday, a morning run).
DEFAULT_MAX_LAG = 1


@attrs.frozen(eq=False)
class Signal:
    """The model's decision at the close of ``as_of``, for the next session.

    :param stage: the stage.
    :param model: the model file.
    :param as_of: the trading day whose close the decision uses (the newest day of the
        data on or before ``requested``).
    :param requested: the as-of date asked for.
    :param next_session: the next business day, when orders fill.
    :param start: the replay's first decision day.
    :param tickers: the stage's tickers (weights' order; cash last).
    :param weights: the model portfolio's weights after trading at the as-of close: the
        weights a backtest from ``start`` holds that day.
    :param target: the smoothed target before the no-trade band (what an account is
        traded toward under the stage's turnover rule).
    :param model_turnover: turnover of the model portfolio at the as-of close (0: inside
        the no-trade band, nothing traded).
    :param closes: the as-of closes by ticker.
    :param source: the data source.
    :param fingerprint: digest of the prices used (tickers, dates, OHLCV through as-of).
    :param stale: the prices lag ``requested`` by more than the allowed business days.
    :param lag_days: business days between the newest price and ``requested``.
    :param market: every close of the data (handed to brokers).
    :param plan: orders for ``holdings`` (when holdings were given).
    :param holdings: the account the orders are for.
    """

    stage: str
    model: str
    as_of: dt.date
    requested: dt.date
    next_session: dt.date
    start: dt.date
    tickers: tuple[str, ...]
    weights: Array
    target: Array
    model_turnover: float
    closes: dict[str, float]
    source: str
    fingerprint: str
    stale: bool
    lag_days: int
    market: MarketCloses
    plan: OrderPlan | None = None
    holdings: Holdings | None = None

    def named(self, weights: Array) -> dict[str, float]:
        """``weights`` by ticker, then ``cash``."""
        return dict(zip([*self.tickers, "cash"], map(float, weights), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready signal (what ``ploutos signal --json`` prints)."""
        return {
            "stage": self.stage, "model": self.model, "as_of": self.as_of.isoformat(),
            "requested": self.requested.isoformat(),
            "next_session": self.next_session.isoformat(), "start": self.start.isoformat(),
            "weights": self.named(self.weights), "target": self.named(self.target),
            "model_turnover": self.model_turnover, "closes": self.closes,
            "data": {"source": self.source, "last_date": self.as_of.isoformat(),
                     "fingerprint": self.fingerprint, "stale": self.stale,
                     "lag_business_days": self.lag_days},
            "holdings": self.holdings.to_dict() if self.holdings else None,
            "orders": [o.to_dict() for o in self.plan.orders] if self.plan else None,
            "plan": self.plan.to_dict() if self.plan else None,
        }

    def table(self) -> pd.DataFrame:
        """One row per ticker and cash: weight, target, close (and account weights and
        orders when holdings were given)."""
        import pandas as pd

        names = [*self.tickers, "cash"]
        frame = pd.DataFrame({"weight": self.weights, "target": self.target}, index=names)
        frame["close"] = [self.closes.get(t, np.nan) for t in self.tickers] + [np.nan]
        if self.plan is not None:
            frame["account_before"] = self.plan.current
            frame["account_after"] = self.plan.traded
            shares = {o.ticker: o.shares for o in self.plan.orders}
            frame["order_shares"] = [shares.get(t, 0.0) for t in self.tickers] + [np.nan]
        frame.index.name = "ticker"
        return frame


def default_start(stage: StageSpec, day: dt.date) -> dt.date:
    """The first day of the stage's split that holds ``day`` (the latest split starting
    on or before it when ``day`` falls between splits).

    :raises ConfigError: when ``day`` is before the stage's data begin.
    """
    splits = stage.splits
    starts = [r.start for r in (splits.train, splits.validation, splits.test)
              if r.start is not None and r.start <= day]
    if not starts:
        raise ConfigError(f"{day} is before stage {stage.name!r}'s train split "
                          f"({splits.train}); choose a later --as-of or pass --start")
    return max(starts)


def next_business_day(day: dt.date) -> dt.date:
    """The weekday after ``day`` (exchange holidays are not known here)."""
    return as_date(np.busday_offset(np.datetime64(day, "D"), 1, roll="forward"))


def with_placeholder_day(panel: Panel, day: dt.date) -> Panel:
    """``panel`` plus one row dated ``day`` repeating its last row (see the module)."""
    extra: dict[str, Any] = {name: np.concatenate([getattr(panel, name),
                                                   getattr(panel, name)[-1:]])
                             for name in FIELDS}
    extra["dates"] = np.append(panel.dates, np.datetime64(day, "D")).astype(panel.dates.dtype)
    return attrs.evolve(panel, **extra)


def load_signal_panel(registry: Registry, stage: StageSpec, options: DataOptions,
                      requested: dt.date) -> Panel:
    """The stage's prices from the warm-up before training through ``requested``."""
    source = registry.data_source(options.source)
    return load_panel(source, stage_request_until(stage, options, requested))


def check_staleness(panel: Panel, requested: dt.date, max_lag: int, allow_stale: bool
                    ) -> tuple[bool, int]:
    """Business days between the newest price and ``requested``, and whether that is stale.

    :raises StaleDataError: naming the newest date, unless ``allow_stale``.
    """
    last = panel.date(panel.n_days - 1)
    lag = int(np.busday_count(np.datetime64(last, "D"), np.datetime64(requested, "D")))
    stale = lag > max_lag
    if stale and not allow_stale:
        raise StaleDataError(
            f"the newest {panel.source} prices of {','.join(panel.tickers)} are from {last}, "
            f"{lag} business days before {requested}; refresh the data ('ploutos data fetch', "
            f"--refresh) or pass --allow-stale to use them")
    return stale, lag


def check_model_fits(path: Path, metadata: dict[str, Any], stage: StageSpec, env: Any) -> None:
    """Refuse a model trained on observations of another shape (another asset count or
    feature window) before loading it.

    :raises ModelError: naming the model's stage and shape and the stage's.
    """
    recorded = metadata.get("observation_shape")
    expected = list(env.observation_space.shape)
    if recorded and list(recorded) != expected:
        trained_on = metadata.get("stage", "another stage")
        raise ModelError(f"{path} was trained on observations of shape {tuple(recorded)} "
                         f"(stage {trained_on!r}); stage {stage.name!r} gives "
                         f"{tuple(expected)}: pass a model of this stage, or --stage "
                         f"{trained_on}")


def compute_signal(registry: Registry, stage: StageSpec, path: Path,
                   load_agent: Callable[[Any], Agent], panel: Panel, *, requested: dt.date,
                   start: dt.date | None = None, stale: bool = False, lag_days: int = 0,
                   device: str = "cpu") -> Signal:
    """Replay the model from ``start`` through the panel's last day and return its decision.

    :param panel: the stage's prices through the as-of day (see :func:`load_signal_panel`).
    :param load_agent: loads the model for a given environment.
    :param start: the replay's first day (default: :func:`default_start`).
    :raises ConfigError: for a start after the as-of day.
    :raises DataError: when the replay window is too short for the features' warm-up.
    """

    as_of = panel.date(panel.n_days - 1)
    start = start or default_start(stage, as_of)
    if start > as_of:
        raise ConfigError(f"--start {start} is after the as-of day {as_of}")
    session = next_business_day(as_of)
    padded = with_placeholder_day(panel, session)
    replay = attrs.evolve(stage, splits=trading_splits(
        DateRange(None, start - dt.timedelta(days=1)), DateRange(start, session)))
    env = build_backtest_env(registry, replay, padded, "validation", device)
    check_model_fits(path, read_metadata(path), stage, env)
    agent = load_agent(env)
    infos = replay_infos(agent, env)
    last = infos[-1]
    if int(last["day"]) != panel.n_days - 1:
        raise PluginError(f"the replay's last decision was on row {last['day']}, not the as-of "
                          f"row {panel.n_days - 1}; the env builder must decide on every day "
                          f"of its split but the last")
    weights = np.asarray(last["weights"], dtype=np.float64)
    target = np.asarray(last.get("target", weights), dtype=np.float64)
    closes = {t: float(p) for t, p in zip(panel.tickers, panel.close[-1], strict=True)}
    return Signal(stage=stage.name, model=str(path), as_of=as_of, requested=requested,
                  next_session=session, start=panel.date(int(infos[0]["day"])),
                  tickers=panel.tickers, weights=weights, target=target,
                  model_turnover=float(last.get("turnover", 0.0)), closes=closes,
                  source=panel.source, fingerprint=panel.fingerprint(), stale=stale,
                  lag_days=lag_days,
                  market=MarketCloses(dates=panel.dates, tickers=panel.tickers,
                                      close=panel.close))


def replay_infos(agent: Agent, env: Any) -> list[dict[str, Any]]:
    """Step a backtest environment once through its split with deterministic actions and
    return every step's info (as :func:`~ploutos_core.evaluation.backtest.run_agent_backtest`
    does, keeping the target weights too).

    :raises PluginError: when the infos lack ``day`` or ``weights``.
    """
    observation = env.reset()
    agent.reset_state()
    infos: list[dict[str, Any]] = []
    while True:
        action = agent.predict(observation, deterministic=True)
        observation, _, dones, step_infos = env.step(action)
        info = dict(step_infos[0])
        if "day" not in info or "weights" not in info:
            raise PluginError("the environment's backtest info lacks 'day' or 'weights'; a "
                              "signal needs both (see EnvBuilder)")
        infos.append(info)
        if dones[0]:
            return infos
