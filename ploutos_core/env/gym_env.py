"""A gymnasium single-environment view of the portfolio environment, for other libraries.

Importing this module registers ``Ploutos/Portfolio-v0``::

    import gymnasium as gym
    env = gym.make("ploutos_core.env.gym_env:Ploutos/Portfolio-v0",
                   stage="stage1", source="synthetic")

Episodes end by truncation (a time limit or the end of the split), never by
termination.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs
import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import EnvSettings, StageSpec
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv

ENV_ID = "Ploutos/Portfolio-v0"


class PortfolioEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """One portfolio environment with the gymnasium API.

    Either pass ``market`` and ``settings`` (precomputed arrays), or name a
    ``stage`` and a data ``source`` and let the plugins load the data.

    :param market: precomputed market arrays.
    :param settings: environment settings (with ``market``).
    :param cost_rate: cost per unit of turnover (with ``market``).
    :param stage: registered stage name whose tickers, splits and settings to use.
    :param tickers: replace the stage's tickers.
    :param source: registered data source.
    :param data_dir: directory for the csv source.
    :param split: ``train``, ``validation`` or ``test``.
    :param mode: ``train`` (random starts) or ``backtest`` (whole split from its first day).
    :param seed: initial seed of the start sampler.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        market: MarketArrays | None = None,
        settings: EnvSettings | None = None,
        cost_rate: float = 0.001,
        *,
        stage: str = "stage1",
        tickers: tuple[str, ...] | None = None,
        source: str = "synthetic",
        data_dir: str | Path | None = None,
        split: Literal["train", "validation", "test"] = "train",
        mode: Literal["train", "backtest"] = "train",
        seed: int = 0,
    ) -> None:
        benchmark = "equal_weight"
        if market is None:
            market, spec = self._load(stage, tickers, source, data_dir, split, seed)
            settings, cost_rate, benchmark = spec.env, spec.transaction_cost, spec.benchmark
        self._vec = PortfolioVecEnv(market, 1, settings or EnvSettings(), cost_rate, mode=mode,
                                    seed=seed, benchmark=benchmark)
        self.observation_space = self._vec.observation_space
        self.action_space = self._vec.action_space

    @staticmethod
    def _load(stage_name: str, tickers: tuple[str, ...] | None, source: str,
              data_dir: str | Path | None, split: str, seed: int
              ) -> tuple[MarketArrays, StageSpec]:
        from ploutos_core.pluginmanager.manager import get_plugin_manager
        from ploutos_core.pluginmanager.registry import Registry

        registry = Registry(get_plugin_manager())
        stage = registry.stage(stage_name)
        if tickers:
            stage = attrs.evolve(stage, tickers=tuple(tickers))
        options = DataOptions(source=source, data_dir=Path(data_dir) if data_dir else None,
                              seed=seed)
        through = "test" if split == "test" else "validation"
        panel = load_stage_panel(registry.data_source(source), stage, options, through=through)
        return MarketArrays.for_split(panel, stage, split), stage

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode; a ``seed`` reseeds the start-day sampler."""
        super().reset(seed=seed)
        if seed is not None:
            self._vec.seed(seed)
        return self._vec.reset()[0], {}

    def step(self, action: NDArray[np.float32]
             ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Trade to the weights ``action`` implies and hold one day."""
        observations, rewards, dones, infos = self._vec.step(np.asarray(action)[None, :])
        info = dict(infos[0])
        observation = np.asarray(observations)[0]
        if dones[0]:
            observation = info.pop("terminal_observation")
            info.pop("TimeLimit.truncated", None)
        return observation, float(rewards[0]), False, bool(dones[0]), info


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=f"{__name__}:PortfolioEnv")
