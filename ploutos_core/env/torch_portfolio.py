"""The portfolio environment as tensors on a torch device (issue 15).

:class:`TorchPortfolioVecEnv` replicates :class:`~ploutos_core.env.portfolio.PortfolioVecEnv`
exactly: the same precomputed features (:class:`~ploutos_core.env.market.MarketArrays`,
moved to the device once), the same action maps (``softmax`` and ``tilt``), turnover
rule (``target_smoothing``, ``no_trade_band``), accounting (costs on turnover, the
decision at the close of t earning t→t+1), rewards (``log_return``,
``relative_log_return`` against a shadow benchmark portfolio, ``differential_sharpe``,
``risk_aversion``, ``turnover_penalty``, ``deviation_penalty``), episode sampling
(``start_mask``, automatic resets, sub-universes of a ``[stage.universe]``) and backtest
infos. Accounting runs in float64 like the NumPy env, observations and rewards are
float32; ``tests/test_torch_env.py`` steps both side by side and requires equal results
to float32 tolerance.

Two interfaces:

* :meth:`step_tensors` steps every environment on the device and returns tensors; no
  host↔device copy, no synchronisation, no Python loop over environments. The
  ``cuda_ppo`` algorithm drives it this way and stores only each step's day and
  weights: :meth:`observe` rebuilds the observation from them (a few bytes per
  transition instead of ``n_assets × n_features`` floats).
* stable-baselines3's ``VecEnv`` (NumPy in, NumPy out, info dicts), so the
  ``torch_portfolio`` env builder serves any algorithm and backtest.

With a universe market, every training episode samples the stage's number of tickers
from those that trade through its whole window, as the NumPy env does (from the
device's random stream, so the draws differ from NumPy's); each environment's tickers
are part of its state, and :meth:`observe` takes them beside the day and weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from ploutos_core.config.stage import EnvSettings
from ploutos_core.env.actions import benchmark_weights
from ploutos_core.env.base import EnvRequest
from ploutos_core.env.batch import WholeBatchVecEnv
from ploutos_core.env.exposure import (
    VOL_TARGET_LOOKBACK,
    VOL_TARGET_WINDOW,
    equal_weight_daily_returns,
    volatility_target_exposure,
)
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import (
    DSR_ETA,
    TRADING_DAYS,
    PortfolioVecEnv,
    episode_start_days,
    request_arguments,
    sampling_start_days,
    tradeable_windows,
)

#: the per-environment state a checkpoint carries (see :meth:`TorchPortfolioVecEnv.state_dict`).
STATE_FIELDS = ("day", "age", "weights", "benchmark_weights", "smoothed", "value",
                "episode_reward", "log_growth_sum", "log_growth_sq", "dsr_a", "dsr_b",
                "assets")
#: fields a checkpoint written before universes were sampled here may lack.
OPTIONAL_STATE_FIELDS = frozenset({"assets"})


def _trailing_exposure(windows: torch.Tensor) -> torch.Tensor:
    """:func:`trailing_exposure` of a tensor (NaN: days before the data began)."""
    recent = windows[..., -VOL_TARGET_WINDOW:]
    present = ~torch.isnan(windows)
    count = present.sum(dim=-1)
    enough = ~torch.isnan(recent).any(dim=-1) & (count >= VOL_TARGET_LOOKBACK // 2)
    vol = torch.where(enough[..., None], recent, 0.0).std(dim=-1)
    values = torch.where(present, windows, 0.0)
    mean = values.sum(dim=-1) / count.clamp_min(1)
    spread = torch.where(present, values - mean[..., None], 0.0)
    norm = (spread.pow(2).sum(dim=-1) / (count - 1).clamp_min(1)).sqrt()
    exposure = torch.clamp(norm / vol.clamp_min(1e-300), max=1.0)
    return torch.where(enough & (vol > 0), exposure, 1.0)


def _scale_exposure(target: torch.Tensor, exposure: torch.Tensor) -> torch.Tensor:
    """:func:`~ploutos_core.env.exposure.scale_exposure` of tensors."""
    scale = exposure[:, None]
    return torch.cat([target[:, :-1] * scale, 1.0 - scale * (1.0 - target[:, -1:])], dim=1)


def _sampled_windows(growth: torch.Tensor, days: torch.Tensor,
                          assets: torch.Tensor) -> torch.Tensor:
    """:func:`sampled_windows` of tensors on the device."""
    offsets = torch.arange(1 - VOL_TARGET_LOOKBACK, 1, device=days.device)
    index = days[:, None] + offsets
    rows = (index - 1).clamp_min(0)
    returns = growth[rows[:, :, None], assets[:, None, :]].mean(dim=-1) - 1.0
    return torch.where(index >= 1, returns, torch.nan)



class TensorStep(NamedTuple):
    """One step of every environment, as tensors on the device.

    :param reward: ``(n_envs,)`` float32, as the NumPy env returns it.
    :param done: ``(n_envs,)`` bool: the episode ended (always a truncation: time limit or
        end of the split); the environment has already been reset.
    :param day: ``(n_envs,)`` the decision day of this step.
    :param next_weights: ``(n_envs, n_assets + 1)`` float64 drifted weights at the close of
        ``day + 1``: with ``day + 1`` they make the observation after the step (the
        terminal observation of a finished episode; :meth:`TorchPortfolioVecEnv.observe`).
    :param net_growth: portfolio value at t+1 over value at t, after costs.
    :param turnover: traded fraction of the portfolio.
    :param cost: costs paid, as a fraction of the portfolio.
    :param traded: weights traded to (after the turnover rule).
    :param target: the smoothed target of the policy.
    :param episode_value: final portfolio value of the episode (read where ``done``).
    :param episode_sharpe: annualised Sharpe ratio of the episode's daily log growth.
    :param episode_reward: sum of the episode's rewards.
    :param episode_length: steps of the episode.
    :param assets: ``(n_envs, n_assets)`` the market columns each environment traded in
        this step (with ``day + 1`` and ``next_weights``, the terminal observation).
    """

    reward: torch.Tensor
    done: torch.Tensor
    day: torch.Tensor
    next_weights: torch.Tensor
    net_growth: torch.Tensor
    turnover: torch.Tensor
    cost: torch.Tensor
    traded: torch.Tensor
    target: torch.Tensor
    episode_value: torch.Tensor
    episode_sharpe: torch.Tensor
    episode_reward: torch.Tensor
    episode_length: torch.Tensor
    assets: torch.Tensor


class TorchPortfolioVecEnv(WholeBatchVecEnv):
    """A batch of long-only portfolio environments over one market, on a torch device.

    The parameters are those of :class:`~ploutos_core.env.portfolio.PortfolioVecEnv`, plus:

    :param device: where prices, features and every environment's state live.
    """

    render_mode = None

    @classmethod
    def from_request(cls, request: EnvRequest) -> TorchPortfolioVecEnv:
        """The environment an :class:`EnvRequest` describes (the ``torch_portfolio`` builder)."""
        market, options = request_arguments(request)
        return cls(market, **options, device=request.device)

    @classmethod
    def from_numpy(cls, env: PortfolioVecEnv, device: str | torch.device = "cpu",
                   seed: int = 0) -> TorchPortfolioVecEnv:
        """The same environment on ``device``: its market, settings, allowed start days and
        the current state of every environment (so both continue alike).

        :param seed: seed of the start-day (and sub-universe) sampler from now on.
        """
        new = cls(env.market, env.num_envs, env.settings, env.cost_rate, mode=env.mode,
                  seed=seed, device=device, assets=env.n_assets)
        new.start_days = torch.as_tensor(env.start_days, dtype=torch.int64, device=new.device)
        new.benchmark = torch.as_tensor(env.action_map.benchmark, dtype=torch.float64,
                                        device=new.device)
        new._log_base = torch.log(new.benchmark[:-1])
        new.copy_state_from(env)
        return new

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
        device: str | torch.device = "cpu",
        assets: int | None = None,
    ) -> None:
        self.market = market
        self.settings = settings
        self.cost_rate = float(cost_rate)
        self.mode = mode
        self.device = torch.device(device)
        pool = int(market.observations.shape[1])
        n_assets = assets or pool
        self.n_assets = n_assets
        #: whether episodes sample sub-universes of a wider market.
        self.sampling = n_assets < pool or market.available is not None
        if self.sampling and mode == "backtest":
            raise ValueError("a universe market only trains; backtests use a stage's tickers")
        features = int(market.observations.shape[2]) + 2
        observation_space = spaces.Box(-10.0, 10.0, (n_assets, features), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (n_assets + 1,), np.float32)
        super().__init__(n_envs, observation_space, action_space)
        self.episode_length = (market.last - market.first if mode == "backtest"
                               else settings.episode_length)
        dev, f64 = self.device, torch.float64
        # The market, moved to the device once. Each day's features are stored with two
        # spare columns for the weights, so an observation is one gather and two small
        # writes, not a concatenation (4× faster on a CPU).
        table = torch.as_tensor(market.observations, dtype=torch.float32, device=dev)
        self._table = torch.cat([table, table.new_zeros((*table.shape[:2], 2))], dim=-1)
        #: ``(n_days, n_assets, window × n_features)`` float32, as the NumPy env's.
        self.features = self._table[..., :-2]
        self.growth = torch.as_tensor(market.growth, dtype=f64, device=dev)
        days = episode_start_days(market, mode, self.episode_length, start_mask)
        self._tradeable: torch.Tensor | None = None
        if self.sampling:
            tradeable = tradeable_windows(market, self.episode_length)
            days = sampling_start_days(market, days, tradeable, n_assets, self.episode_length)
            self._tradeable = torch.as_tensor(tradeable, device=dev)
        self.start_days = torch.as_tensor(days, dtype=torch.int64, device=dev)
        self.last = int(market.last)
        self.benchmark = torch.as_tensor(benchmark_weights(benchmark, n_assets), dtype=f64,
                                         device=dev)
        self._log_base = torch.log(self.benchmark[:-1])
        self._exposure_by_day: torch.Tensor | None = None
        if settings.exposure == "volatility_target" and not self.sampling:
            by_day = volatility_target_exposure(equal_weight_daily_returns(market.growth),
                                                np.arange(market.growth.shape[0]))
            self._exposure_by_day = torch.as_tensor(by_day, dtype=f64, device=dev)
        self._cash = torch.zeros(n_assets + 1, dtype=f64, device=dev)
        self._cash[-1] = 1.0
        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(int(seed))
        zeros = torch.zeros(n_envs, dtype=f64, device=dev)
        self.day = torch.zeros(n_envs, dtype=torch.int64, device=dev)
        #: ``(n_envs, n_assets)`` the market columns each environment trades.
        self.assets = torch.arange(n_assets, device=dev).expand(n_envs, -1).clone()
        self.age = torch.zeros(n_envs, dtype=torch.int64, device=dev)
        self.weights = self._cash.expand(n_envs, -1).clone()
        self.benchmark_weights = self.weights.clone()
        self.smoothed = self.benchmark.expand(n_envs, -1).clone()
        self.value = zeros + 1.0
        self.episode_reward = zeros.clone()
        self.log_growth_sum = zeros.clone()
        self.log_growth_sq = zeros.clone()
        self.dsr_a = zeros.clone()
        self.dsr_b = zeros.clone()
        self._actions = torch.zeros((n_envs, n_assets + 1), dtype=f64, device=dev)
        self._started = time.monotonic()
        self._reset_where(torch.ones(n_envs, dtype=torch.bool, device=dev))

    # --- the device interface ---------------------------------------------------------

    def observe(self, day: torch.Tensor, weights: torch.Tensor,
                assets: torch.Tensor | None = None) -> torch.Tensor:
        """Observations of states given by their day, weights and (sampling sub-universes)
        market columns, any leading shape: ``(..., n_assets, window × n_features + 2)``
        float32, exactly as the NumPy env builds them (features, the asset's weight, the
        cash weight).

        :raises ValueError: when the env samples sub-universes and ``assets`` is missing.
        """
        n_assets, width = self.n_assets, int(self._table.shape[2])
        if self.sampling:
            if assets is None:
                raise ValueError("a sub-universe's observation needs its assets")
            observations = self._table[day.reshape(-1, 1), assets.reshape(-1, n_assets)]
        else:
            observations = self._table.index_select(0, day.reshape(-1))
        held = weights.reshape(-1, n_assets + 1)
        observations[..., -2] = held[:, :-1]
        observations[..., -1] = held[:, -1:]
        return observations.reshape(*day.shape, n_assets, width)

    def observation(self) -> torch.Tensor:
        """``(n_envs, n_assets, n_features)`` float32 observation of every environment now."""
        return self.observe(self.day, self.weights, self.assets)

    def target_weights(self, actions: torch.Tensor) -> torch.Tensor:
        """Target weights of actions (:class:`~ploutos_core.env.actions.ActionMap`)."""
        clipped = actions.to(dtype=torch.float64).clamp(-1.0, 1.0)
        settings = self.settings
        if settings.action == "softmax":
            return torch.softmax(settings.action_scale * clipped, dim=-1)
        assets = torch.softmax(self._log_base + settings.tilt_scale * clipped[..., :-1], dim=-1)
        cash = settings.max_cash * clipped[..., -1:].clamp(0.0, 1.0)
        return torch.cat([assets * (1.0 - cash), cash], dim=-1)

    def _turnover_rule(self, drifted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        band = self.settings.no_trade_band
        if band <= 0.0:
            return target
        turnover = (target[..., :-1] - drifted[..., :-1]).abs().sum(dim=-1)
        return torch.where((turnover > band)[..., None], target, drifted)

    def _rebalance(self, drifted: torch.Tensor, target: torch.Tensor, growth: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`~ploutos_core.env.accounting.rebalance_and_hold`: net growth, drifted
        weights, turnover and cost."""
        turnover = (target[..., :-1] - drifted[..., :-1]).abs().sum(dim=-1)
        cost = self.cost_rate * turnover
        held = target[..., :-1] * growth
        gross = held.sum(dim=-1) + target[..., -1]
        weights = torch.cat([held, target[..., -1:]], dim=-1) / gross[..., None]
        return (1.0 - cost) * gross, weights, turnover, cost

    def _utility(self, net_growth: torch.Tensor) -> torch.Tensor:
        utility = torch.log(net_growth)
        gamma = self.settings.risk_aversion
        if gamma != 1.0:
            utility = utility - 0.5 * (gamma - 1.0) * (net_growth - 1.0) ** 2
        return utility

    def exposure(self, day: torch.Tensor) -> torch.Tensor | None:
        """:meth:`PortfolioVecEnv.exposure <ploutos_core.env.portfolio.PortfolioVecEnv.exposure>`
        on the device."""
        if self._exposure_by_day is not None:
            return self._exposure_by_day[day]
        if self.settings.exposure == "full":
            return None
        return _trailing_exposure(_sampled_windows(self.growth, day, self.assets))

    def _benchmark_utility(self, neutral: torch.Tensor, growth: torch.Tensor) -> torch.Tensor:
        traded = self._turnover_rule(self.benchmark_weights, neutral)
        net_growth, self.benchmark_weights, _, _ = self._rebalance(self.benchmark_weights,
                                                                   traded, growth)
        return self._utility(net_growth)

    def _differential_sharpe(self, returns: torch.Tensor) -> torch.Tensor:
        a, b = self.dsr_a, self.dsr_b
        delta_a = returns - a
        delta_b = returns**2 - b
        variance = b - a**2
        reward = torch.where(variance > 1e-12,
                             (b * delta_a - 0.5 * a * delta_b)
                             / variance.clamp_min(1e-12) ** 1.5, 0.0)
        self.dsr_a = a + DSR_ETA * delta_a
        self.dsr_b = b + DSR_ETA * delta_b
        return (reward * DSR_ETA).clamp(-1.0, 1.0)

    def step_tensors(self, actions: torch.Tensor) -> TensorStep:
        """Rebalance, hold one day and compute rewards in every environment; reset the
        finished ones. Never synchronises with the host.

        :param actions: ``(n_envs, n_assets + 1)`` on the device (clipped to ``[-1, 1]``).
        """
        settings = self.settings
        day, assets = self.day, self.assets
        target = self.target_weights(actions)
        smoothing = settings.target_smoothing
        if smoothing > 0.0:
            target = smoothing * self.smoothed + (1.0 - smoothing) * target
        self.smoothed = target
        neutral = self.benchmark.expand_as(target)
        exposure = self.exposure(day)
        if exposure is not None:
            target = _scale_exposure(target, exposure)
            neutral = _scale_exposure(neutral, exposure)
        traded = self._turnover_rule(self.weights, target)
        growth = (self.growth[day[:, None], assets] if self.sampling else self.growth[day])
        net_growth, weights, turnover, cost = self._rebalance(self.weights, traded, growth)
        log_growth = torch.log(net_growth)
        if settings.reward == "differential_sharpe":
            reward = self._differential_sharpe(net_growth - 1.0)
        elif settings.reward == "relative_log_return":
            reward = self._utility(net_growth) - self._benchmark_utility(neutral, growth)
        else:
            reward = self._utility(net_growth)
        if settings.turnover_penalty:
            reward = reward - settings.turnover_penalty * turnover
        if settings.deviation_penalty:
            active = (traded - neutral).abs().sum(dim=-1)
            reward = reward - settings.deviation_penalty * active
        self.weights = weights
        self.value = self.value * net_growth
        self.day = day + 1
        self.age = self.age + 1
        self.episode_reward = self.episode_reward + reward
        self.log_growth_sum = self.log_growth_sum + log_growth
        self.log_growth_sq = self.log_growth_sq + log_growth**2
        done = (self.age >= self.episode_length) | (self.day >= self.last)
        age = self.age.to(torch.float64)
        mean = self.log_growth_sum / age
        variance = (self.log_growth_sq / age - mean**2).clamp_min(0.0)
        sharpe = torch.where(variance > 1e-18,
                             mean / variance.sqrt() * math.sqrt(TRADING_DAYS), 0.0)
        step = TensorStep(
            reward=reward.to(torch.float32), done=done, day=day, next_weights=weights,
            net_growth=net_growth, turnover=turnover, cost=cost, traded=traded, target=target,
            episode_value=self.value, episode_sharpe=sharpe,
            episode_reward=self.episode_reward, episode_length=self.age, assets=assets)
        self._reset_where(done)
        return step

    def sample_start_days(self) -> torch.Tensor:
        """``(n_envs,)`` start days drawn uniformly from the allowed ones (one per environment;
        only those of environments being reset are used)."""
        draw = torch.randint(0, int(self.start_days.shape[0]), (self.num_envs,),
                             generator=self.generator, device=self.device)
        return self.start_days[draw]

    def _reset_where(self, mask: torch.Tensor) -> None:
        """Start a new episode in the environments where ``mask`` is true (no host sync:
        every tensor is rewritten with ``torch.where``)."""
        if self.mode == "backtest":
            start = self.start_days[0].expand(self.num_envs)
        else:
            start = self.sample_start_days()
        rows = mask[:, None]
        self.day = torch.where(mask, start, self.day)
        if self._tradeable is not None:  # sampling: a training env (backtests are refused)
            # A uniform draw without replacement among the tickers trading through each
            # new episode: the n largest of uniform scores, non-trading ones scored -1.
            scores = torch.rand((self.num_envs, self._tradeable.shape[1]),
                                generator=self.generator, device=self.device)
            scores = torch.where(self._tradeable[start], scores, -1.0)
            drawn = scores.topk(self.n_assets, dim=1).indices
            self.assets = torch.where(rows, drawn, self.assets)
        self.age = torch.where(mask, 0, self.age)
        self.weights = torch.where(rows, self._cash, self.weights)
        self.benchmark_weights = torch.where(rows, self._cash, self.benchmark_weights)
        self.smoothed = torch.where(rows, self.benchmark, self.smoothed)
        self.value = torch.where(mask, 1.0, self.value)
        self.episode_reward = torch.where(mask, 0.0, self.episode_reward)
        self.log_growth_sum = torch.where(mask, 0.0, self.log_growth_sum)
        self.log_growth_sq = torch.where(mask, 0.0, self.log_growth_sq)
        self.dsr_a = torch.where(mask, 0.0, self.dsr_a)
        self.dsr_b = torch.where(mask, 0.0, self.dsr_b)

    # --- state, for checkpoints and for mirroring the NumPy env -------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every environment's state and the sampler's, as CPU tensors (a checkpoint holds
        them, so a resumed run continues its episodes exactly)."""
        state = {name: getattr(self, name).detach().cpu().clone() for name in STATE_FIELDS}
        state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> bool:
        """Restore :meth:`state_dict`; returns ``False`` (and changes nothing) when it was
        saved for another number of environments or assets."""
        expected = {*STATE_FIELDS, "generator"}
        if not expected - OPTIONAL_STATE_FIELDS <= set(state) <= expected or \
                tuple(state["weights"].shape) != tuple(self.weights.shape):
            return False
        for name in STATE_FIELDS:
            if name not in state:
                continue
            current = getattr(self, name)
            setattr(self, name, state[name].to(device=self.device, dtype=current.dtype))
        self.generator.set_state(state["generator"])
        return True

    def copy_state_from(self, env: PortfolioVecEnv) -> None:
        """Take every environment's state from a NumPy env over the same market."""
        def tensor(value: NDArray[Any], dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.array(value), dtype=dtype, device=self.device)

        f64 = torch.float64
        self.day = tensor(env._day, torch.int64)
        self.assets = tensor(env.assets, torch.int64)
        self.age = tensor(env._age, torch.int64)
        self.weights = tensor(env._weights, f64)
        self.benchmark_weights = tensor(env._benchmark_weights, f64)
        self.smoothed = tensor(env._smoothed, f64)
        self.value = tensor(env._value, f64)
        self.episode_reward = tensor(env._episode_reward, f64)
        self.log_growth_sum = tensor(env._log_growth_sum, f64)
        self.log_growth_sq = tensor(env._log_growth_sq, f64)
        self.dsr_a = tensor(env._dsr_a, f64)
        self.dsr_b = tensor(env._dsr_b, f64)

    # --- VecEnv interface -------------------------------------------------------------

    def reset(self) -> NDArray[np.float32]:
        """Start a new episode in every environment and return the observations."""
        if self._seeds[0] is not None:
            self.generator.manual_seed(int(self._seeds[0]))
            self._reset_seeds()
        self._reset_where(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self.observation().cpu().numpy()

    def step_async(self, actions: NDArray[np.float32]) -> None:
        """Remember the actions of the next :meth:`step_wait`."""
        array = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        self._actions = torch.as_tensor(array, device=self.device)

    def step_wait(self) -> VecEnvStepReturn:
        """:meth:`step_tensors`, with NumPy results and the NumPy env's info dicts."""
        step = self.step_tensors(self._actions)
        dones = step.done.cpu().numpy()
        # A finished environment is already reset: its observation starts the next episode.
        obs = self.observation().cpu().numpy()
        infos: list[dict[str, Any]]
        if self.mode == "backtest":
            net = step.net_growth.cpu().numpy()
            turnover, cost = step.turnover.cpu().numpy(), step.cost.cpu().numpy()
            traded, target = step.traded.cpu().numpy(), step.target.cpu().numpy()
            days = step.day.cpu().numpy()
            infos = [{"net_return": float(net[i] - 1.0), "turnover": float(turnover[i]),
                      "cost": float(cost[i]), "weights": traded[i].copy(),
                      "target": target[i].copy(), "day": int(days[i])}
                     for i in range(self.num_envs)]
        else:
            infos = [{} for _ in range(self.num_envs)]
        if dones.any():
            terminal = self.observe(step.day + 1, step.next_weights,
                                    step.assets).cpu().numpy()
            self._finish(step, np.flatnonzero(dones), terminal, infos)
        return obs, step.reward.cpu().numpy(), dones, infos

    def _finish(self, step: TensorStep, finished: NDArray[np.int64],
                terminal: NDArray[np.float32], infos: list[dict[str, Any]]) -> None:
        elapsed = round(time.monotonic() - self._started, 6)
        value = step.episode_value.cpu().numpy()
        sharpe = step.episode_sharpe.cpu().numpy()
        reward = step.episode_reward.cpu().numpy()
        length = step.episode_length.cpu().numpy()
        for i in finished:
            infos[i].update({
                "terminal_observation": terminal[i].copy(),
                # Episodes end on a time limit or the end of the split, never in a
                # terminal state, so the value of the last observation is bootstrapped.
                "TimeLimit.truncated": True,
                "episode": {"r": float(reward[i]), "l": int(length[i]), "t": elapsed},
                "portfolio_value": float(value[i]),
                "episode_sharpe": float(sharpe[i]),
                "is_success": bool(value[i] > 1.0),
            })

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Reseed the start-day sampler (takes effect at once)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))
        return [seed for _ in range(self.num_envs)]
