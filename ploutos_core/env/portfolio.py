"""The batched portfolio environment: every environment stepped at once with array operations.

It implements stable-baselines3's ``VecEnv`` directly: no Python loop over
environments, no subprocesses. Observation per environment: for each asset a
window of causal features plus the asset's current weight and the cash weight,
shape ``(n_assets, window * n_features + 2)``. Action: one score per asset and
one for cash in ``[-1, 1]``, turned into target weights (long-only with cash) by
:class:`~ploutos_core.env.actions.ActionMap`; the turnover rule decides what is
actually traded. The decision at the close of day t earns the return from t to
t+1, net of ``cost × turnover``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from ploutos_core.config.stage import EnvSettings
from ploutos_core.env.accounting import rebalance_and_hold
from ploutos_core.env.actions import ActionMap, apply_turnover_rule, smooth_target
from ploutos_core.env.base import EnvRequest
from ploutos_core.env.batch import WholeBatchVecEnv
from ploutos_core.env.exposure import (
    equal_weight_daily_returns,
    exposure_path,
    scale_exposure,
    volatility_target_exposure,
)
from ploutos_core.env.market import MarketArrays
from ploutos_core.errors import DataError

#: step size of the moving averages of the differential Sharpe ratio reward.
DSR_ETA = 0.01
TRADING_DAYS = 252


def episode_start_days(market: MarketArrays, mode: Literal["train", "backtest"],
                       episode_length: int, start_mask: NDArray[np.bool_] | None
                       ) -> NDArray[np.int64]:
    """The days an episode may start on: ``market.first`` for a backtest; for training,
    every day that leaves a whole episode before ``market.last`` (or ``market.first`` when
    the split is shorter), where ``start_mask`` allows it.

    Shared by the NumPy and torch backends of the environment.

    :raises DataError: when the mask allows no day.
    """
    first, last = market.first, market.last
    if mode == "backtest":
        return np.array([first])
    latest = max(first, last - episode_length)
    days = np.arange(first, latest + 1)
    if start_mask is not None:
        days = days[start_mask[days]]
        if days.size == 0:
            raise DataError(
                f"no allowed episode start between {market.dates[first]} and "
                f"{market.dates[latest]}: the stage's day filter excludes every day"
            )
    return days


def tradeable_windows(market: MarketArrays, episode_length: int) -> NDArray[np.bool_]:
    """``(n_days, n_pool)``: whether each ticker trades on every day of an episode that
    starts that day (the decision days and the final observation).

    Shared by the NumPy and torch backends of the environment.
    """
    available = market.available
    if available is None:
        available = np.ones(market.growth.shape, dtype=bool)
    span = episode_length + 1
    counts = np.concatenate([np.zeros((1, available.shape[1]), dtype=np.int64),
                             np.cumsum(available, axis=0)])
    tradeable = np.zeros_like(available)
    n_days = available.shape[0]
    if n_days >= span:
        tradeable[:n_days - span + 1] = (counts[span:] - counts[:-span]) == span
    return tradeable


def sampling_start_days(market: MarketArrays, days: NDArray[np.int64],
                        tradeable: NDArray[np.bool_], n_assets: int, episode_length: int
                        ) -> NDArray[np.int64]:
    """The start ``days`` on which at least ``n_assets`` universe tickers trade through a
    whole episode.

    :raises DataError: when no day has enough.
    """
    days = days[tradeable[days].sum(axis=1) >= n_assets]
    if days.size == 0:
        first, last = market.first, market.last
        latest = max(first, last - episode_length)
        raise DataError(
            f"no day between {market.dates[first]} and {market.dates[latest]} "
            f"starts an episode of {episode_length} days with {n_assets} "
            f"universe tickers trading throughout; add tickers with longer histories"
        )
    return days


def request_arguments(request: EnvRequest) -> tuple[MarketArrays, dict[str, Any]]:
    """The market and the other constructor arguments of the environment an
    :class:`EnvRequest` describes: its universe, each episode sampling the stage's number
    of tickers, or the stage's own tickers over the split.

    Shared by the NumPy and torch backends of the environment.
    """
    stage = request.stage
    options: dict[str, Any] = {
        "n_envs": request.n_envs, "settings": stage.env, "cost_rate": stage.transaction_cost,
        "mode": request.mode, "seed": request.seed, "benchmark": stage.benchmark}
    if request.universe is not None:
        market = MarketArrays.from_universe(request.universe, stage.env,
                                            stage.splits.get(request.split),
                                            label=f"{request.split} split")
        return market, {**options, "assets": len(stage.tickers)}
    market = MarketArrays.for_split(request.panel, stage, request.split)
    return market, {**options, "start_mask": request.start_mask}


class PortfolioVecEnv(WholeBatchVecEnv):
    """A batch of long-only portfolio environments over one market.

    :param market: precomputed observations and returns.
    :param n_envs: environments stepped together.
    :param settings: episode length, reward, action scale.
    :param cost_rate: cost per unit of turnover (10 bps → 0.001).
    :param mode: ``train``: episodes of ``settings.episode_length`` days from random
        starts, reset automatically; ``backtest``: every environment runs once from
        ``market.first`` to ``market.last`` starting in cash.
    :param seed: seed of the start-day sampler.
    :param start_mask: optional boolean array over days; train episodes start only where true.
    :param benchmark: the stage's benchmark (what a neutral ``tilt`` action holds and what
        ``relative_log_return`` rewards are measured against).
    :param assets: assets per environment. With a universe market (more tickers than
        this, each traded on some days only), every training episode samples this many
        tickers from those that trade through its whole window.
    """

    render_mode = None

    @classmethod
    def from_request(cls, request: EnvRequest) -> PortfolioVecEnv:
        """The environment an :class:`EnvRequest` describes (the ``portfolio`` builder)."""
        market, options = request_arguments(request)
        return cls(market, **options)

    def __init__(
        self,
        market: MarketArrays,
        n_envs: int,
        settings: EnvSettings,
        cost_rate: float,
        mode: Literal["train", "backtest"] = "train",
        seed: int = 0,
        start_mask: NDArray[np.bool_] | None = None,
        benchmark: str = "equal_weight",
        assets: int | None = None,
    ) -> None:
        self.market = market
        self.settings = settings
        self.cost_rate = float(cost_rate)
        self.mode = mode
        pool = market.observations.shape[1]
        n_assets = assets or pool
        self.n_assets = n_assets
        self.sampling = n_assets < pool or market.available is not None
        if self.sampling and mode == "backtest":
            raise ValueError("a universe market only trains; backtests use a stage's tickers")
        self._assets = np.broadcast_to(np.arange(n_assets), (n_envs, n_assets)).copy()
        self.action_map = ActionMap.for_stage(settings, benchmark, n_assets)
        features = market.observations.shape[2] + 2
        observation_space = spaces.Box(-10.0, 10.0, (n_assets, features), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (n_assets + 1,), np.float32)
        super().__init__(n_envs, observation_space, action_space)
        self.episode_length = (market.last - market.first if mode == "backtest"
                               else settings.episode_length)
        self._tradeable = (tradeable_windows(market, self.episode_length)
                           if self.sampling else None)
        self._exposure_by_day = (
            volatility_target_exposure(equal_weight_daily_returns(market.growth),
                                       np.arange(market.growth.shape[0]))
            if settings.exposure == "volatility_target" and not self.sampling else None)
        # A sampled sub-universe's exposure depends on its tickers: computed per episode.
        self._episode_exposure = (np.ones((n_envs, self.episode_length))
                                  if settings.exposure == "volatility_target" and self.sampling
                                  else None)
        self.start_days = self._start_days(start_mask)
        self._rng = np.random.default_rng(seed)
        self._day = np.zeros(n_envs, dtype=np.int64)
        self._age = np.zeros(n_envs, dtype=np.int64)
        self._weights = np.zeros((n_envs, n_assets + 1))
        self._benchmark_weights = np.zeros((n_envs, n_assets + 1))
        self._smoothed = np.zeros((n_envs, n_assets + 1))
        self._value = np.ones(n_envs)
        self._episode_reward = np.zeros(n_envs)
        self._log_growth_sum = np.zeros(n_envs)
        self._log_growth_sq = np.zeros(n_envs)
        self._dsr_a = np.zeros(n_envs)
        self._dsr_b = np.zeros(n_envs)
        self._actions = np.zeros((n_envs, n_assets + 1), dtype=np.float32)
        self._started = time.monotonic()
        self._reset_envs(np.ones(n_envs, dtype=bool))

    def _start_days(self, start_mask: NDArray[np.bool_] | None) -> NDArray[np.int64]:
        days = episode_start_days(self.market, self.mode, self.episode_length, start_mask)
        if self._tradeable is not None:
            days = sampling_start_days(self.market, days, self._tradeable, self.n_assets,
                                       self.episode_length)
        return days

    # --- VecEnv interface -------------------------------------------------------------

    def reset(self) -> NDArray[np.float32]:
        """Start a new episode in every environment and return the observations."""
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
            self._reset_seeds()
        self._reset_envs(np.ones(self.num_envs, dtype=bool))
        return self._observe()

    def step_async(self, actions: NDArray[np.float32]) -> None:
        """Remember the actions of the next :meth:`step_wait`."""
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        """Rebalance, hold one day, compute rewards; reset finished environments."""
        settings = self.settings
        day = self._day
        target = self.action_map.target_weights(self._actions)
        self._smoothed = smooth_target(self._smoothed, target, settings)
        neutral = np.broadcast_to(self.action_map.benchmark, self._weights.shape)
        aimed = self._smoothed
        exposure = self.exposure(day)
        if exposure is not None:
            aimed = scale_exposure(aimed, exposure)
            neutral = scale_exposure(neutral, exposure)
        traded = apply_turnover_rule(self._weights, aimed, settings)
        growth = self._growth(day)
        outcome = rebalance_and_hold(self._weights, traded, growth, self.cost_rate)
        log_growth = np.log(outcome.net_growth)
        if settings.reward == "differential_sharpe":
            reward = self._differential_sharpe(outcome.net_growth - 1.0)
        elif settings.reward == "relative_log_return":
            reward = (self._utility(outcome.net_growth)
                      - self._benchmark_utility(neutral, growth))
        else:
            reward = self._utility(outcome.net_growth)
        if settings.turnover_penalty:
            reward = reward - settings.turnover_penalty * outcome.turnover
        if settings.deviation_penalty:
            active = np.abs(traded - neutral).sum(axis=-1)
            reward = reward - settings.deviation_penalty * active
        self._weights = outcome.weights
        self._value *= outcome.net_growth
        self._day = day + 1
        self._age += 1
        self._episode_reward += reward
        self._log_growth_sum += log_growth
        self._log_growth_sq += log_growth**2
        dones = (self._age >= self.episode_length) | (self._day >= self.market.last)
        if self.mode == "backtest":
            infos = [{"net_return": float(outcome.net_growth[i] - 1.0),
                      "turnover": float(outcome.turnover[i]), "cost": float(outcome.cost[i]),
                      "weights": traded[i].copy(), "target": aimed[i].copy(),
                      "day": int(day[i])}
                     for i in range(self.num_envs)]
        else:
            infos = [{} for _ in range(self.num_envs)]
        observations = self._observe()
        if dones.any():
            self._finish(np.flatnonzero(dones), observations, infos)
            self._reset_envs(dones)
            observations[dones] = self._observe()[dones]
        return observations, reward.astype(np.float32), dones, infos

    def _growth(self, day: NDArray[np.int64]) -> NDArray[np.float64]:
        """``(n_envs, n_assets)`` price growth from ``day`` to the next of each env's assets."""
        if self.sampling:
            return self.market.growth[day[:, None], self._assets]
        return self.market.growth[day]

    @property
    def assets(self) -> NDArray[np.int64]:
        """``(n_envs, n_assets)``: the market columns each environment trades now."""
        return self._assets

    def _utility(self, net_growth: NDArray[np.float64]) -> NDArray[np.float64]:
        """``log(1 + r) − (γ − 1)/2 · r²`` of the day's net return ``r`` (γ: risk aversion)."""
        utility: NDArray[np.float64] = np.log(net_growth)
        gamma = self.settings.risk_aversion
        if gamma != 1.0:
            utility = utility - 0.5 * (gamma - 1.0) * (net_growth - 1.0) ** 2
        return utility

    def exposure(self, day: NDArray[np.int64]) -> NDArray[np.float64] | None:
        """``(n_envs,)`` share of each environment's target held in its assets on ``day``
        under ``exposure = "volatility_target"`` (``None``: ``full``, nothing scaled)."""
        if self._exposure_by_day is not None:
            return self._exposure_by_day[day]
        if self._episode_exposure is not None:
            return self._episode_exposure[np.arange(self.num_envs), self._age]
        return None

    def _benchmark_utility(self, neutral: NDArray[np.float64], growth: NDArray[np.float64]
                           ) -> NDArray[np.float64]:
        """Step the benchmark portfolio of every environment toward ``neutral`` (what a
        zero action aims at today); the utility of its day.

        It follows the same turnover rule and costs as the agent (the smoothed target of
        a zero action is the benchmark itself), so an agent that holds the neutral action
        earns exactly the benchmark: a relative reward of 0.
        """
        traded = apply_turnover_rule(self._benchmark_weights, neutral, self.settings)
        outcome = rebalance_and_hold(self._benchmark_weights, traded, growth, self.cost_rate)
        self._benchmark_weights = outcome.weights
        return self._utility(outcome.net_growth)

    def _finish(self, finished: NDArray[np.int64], observations: NDArray[np.float32],
                infos: list[dict[str, Any]]) -> None:
        elapsed = round(time.monotonic() - self._started, 6)
        for i in finished:
            age = int(self._age[i])
            mean = self._log_growth_sum[i] / age
            var = max(self._log_growth_sq[i] / age - mean**2, 0.0)
            sharpe = mean / np.sqrt(var) * np.sqrt(TRADING_DAYS) if var > 1e-18 else 0.0
            infos[i].update({
                "terminal_observation": observations[i].copy(),
                # Episodes end on a time limit or the end of the split, never in a
                # terminal state, so the value of the last observation is bootstrapped.
                "TimeLimit.truncated": True,
                "episode": {"r": float(self._episode_reward[i]), "l": age, "t": elapsed},
                "portfolio_value": float(self._value[i]),
                "episode_sharpe": float(sharpe),
                "is_success": bool(self._value[i] > 1.0),
            })

    def _reset_envs(self, mask: NDArray[np.bool_]) -> None:
        count = int(mask.sum())
        if self.mode == "backtest":
            self._day[mask] = self.start_days[0]
        else:
            self._day[mask] = self._rng.choice(self.start_days, size=count)
            if self._tradeable is not None:
                for env in np.flatnonzero(mask):
                    candidates = np.flatnonzero(self._tradeable[self._day[env]])
                    self._assets[env] = self._rng.choice(candidates, size=self.n_assets,
                                                         replace=False)
                    if self._episode_exposure is not None:
                        self._episode_exposure[env] = exposure_path(
                            self.market.growth, int(self._day[env]), self.episode_length,
                            self._assets[env])
        self._age[mask] = 0
        self._weights[mask] = 0.0
        self._weights[mask, -1] = 1.0
        self._benchmark_weights[mask] = self._weights[mask]
        self._smoothed[mask] = self.action_map.benchmark
        self._value[mask] = 1.0
        self._episode_reward[mask] = 0.0
        self._log_growth_sum[mask] = 0.0
        self._log_growth_sq[mask] = 0.0
        self._dsr_a[mask] = 0.0
        self._dsr_b[mask] = 0.0

    def _observe(self) -> NDArray[np.float32]:
        if self.sampling:
            features = self.market.observations[self._day[:, None], self._assets]
        else:
            features = self.market.observations[self._day]
        weights = self._weights[:, :-1, None].astype(np.float32)
        cash = np.broadcast_to(self._weights[:, None, -1:], weights.shape).astype(np.float32)
        return np.concatenate([features, weights, cash], axis=2)

    def _differential_sharpe(self, returns: NDArray[np.float64]) -> NDArray[np.float64]:
        """Moody & Saffell's differential Sharpe ratio of this step's return."""
        a, b = self._dsr_a, self._dsr_b
        delta_a = returns - a
        delta_b = returns**2 - b
        variance = b - a**2
        reward = np.where(variance > 1e-12,
                          (b * delta_a - 0.5 * a * delta_b) / np.maximum(variance, 1e-12) ** 1.5,
                          0.0)
        self._dsr_a = a + DSR_ETA * delta_a
        self._dsr_b = b + DSR_ETA * delta_b
        return np.clip(reward * DSR_ETA, -1.0, 1.0)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Reseed the start-day sampler (takes effect at once)."""
        self._rng = np.random.default_rng(seed)
        return [seed for _ in range(self.num_envs)]
