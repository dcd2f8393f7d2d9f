"""The SB3 baseline's environment: one ``gym.Env`` stepping one portfolio one day per call.

This is the portfolio task written the way a typical user or peer project
writes it (FinRL-style): features precomputed once, then a Python-level
``step()`` per day per environment, a flat observation vector, and
``DummyVecEnv`` looping over copies. It is deliberately straightforward, not
tuned, because it is the yardstick of issue 8. It uses the same market arrays
(features, growth, split bounds) as :class:`ploutos_core.env.portfolio.PortfolioVecEnv`,
so both sides learn the same task on the same data; only the implementation
and the policy differ.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ploutos_core.env.market import MarketArrays


class PortfolioGymEnv(gym.Env):
    """Long-only portfolio with cash over one market; one day per ``step``.

    :param market: precomputed features and price ratios of the train split.
    :param episode_length: trading days per episode.
    :param cost_rate: cost per unit of turnover (10 bps → 0.001).
    :param action_scale: multiplies actions before the softmax.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, market: MarketArrays, episode_length: int = 252,
                 cost_rate: float = 0.001, action_scale: float = 5.0) -> None:
        super().__init__()
        self.market = market
        self.episode_length = episode_length
        self.cost_rate = cost_rate
        self.action_scale = action_scale
        self.n_assets = market.observations.shape[1]
        size = market.observations.shape[1] * market.observations.shape[2] + self.n_assets + 1
        self.observation_space = spaces.Box(-10.0, 10.0, (size,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_assets + 1,), np.float32)
        self.latest_start = max(market.first, market.last - episode_length)
        self.day = market.first
        self.age = 0
        self.weights = np.zeros(self.n_assets + 1)

    def _observation(self) -> np.ndarray:
        features = self.market.observations[self.day].reshape(-1)
        return np.concatenate([features, self.weights]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.day = int(self.np_random.integers(self.market.first, self.latest_start + 1))
        self.age = 0
        self.weights = np.zeros(self.n_assets + 1)
        self.weights[-1] = 1.0
        return self._observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        scores = self.action_scale * np.clip(action, -1.0, 1.0)
        exp = np.exp(scores - scores.max())
        target = exp / exp.sum()
        turnover = np.abs(target[:-1] - self.weights[:-1]).sum()
        growth = self.market.growth[self.day]
        held = target[:-1] * growth
        gross = held.sum() + target[-1]
        net = (1.0 - self.cost_rate * turnover) * gross
        self.weights = np.append(held, target[-1]) / gross
        self.day += 1
        self.age += 1
        truncated = self.age >= self.episode_length or self.day >= self.market.last
        reward = float(np.log(net))
        return self._observation(), reward, False, truncated, {"net_return": net - 1.0}
