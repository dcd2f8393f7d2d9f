"""The env-builder contract: what a plugin implements to supply a trading environment."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import StageSpec
from ploutos_core.data.panel import Panel
from ploutos_core.data.universe import Universe

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

Split = Literal["train", "fit", "selection", "validation", "test"]


@attrs.frozen(eq=False)
class EnvRequest:
    """Everything an env builder needs to build one batched environment.

    :param panel: validated prices, including warm-up history before the split.
    :param stage: the stage (costs, environment settings, splits).
    :param split: which date range the episodes use.
    :param n_envs: how many environments to step at once.
    :param seed: seed of the episode-start sampler.
    :param mode: ``train`` samples random episode starts and resets automatically;
        ``backtest`` runs each environment once over the whole split from its
        first day, starting in cash.
    :param start_mask: optional boolean array over ``panel`` days; in ``train``
        mode episodes start only on days where it is true (regime stages use it).
    :param device: ``cpu`` or ``cuda``; builders with a torch backend keep state there.
    :param universe: a wider pool of tickers to sample each training episode's assets
        from (``[stage.universe]``), as many as the stage trades; only builders with
        ``supports_universe`` receive one.
    """

    panel: Panel
    stage: StageSpec
    split: Split = "train"
    n_envs: int = 1
    seed: int = 0
    mode: Literal["train", "backtest"] = "train"
    start_mask: NDArray[np.bool_] | None = None
    device: str = "cpu"
    universe: Universe | None = None


class EnvBuilder(abc.ABC):
    """A named builder of batched trading environments, registered by a plugin.

    The environment must implement stable-baselines3's ``VecEnv`` interface,
    with an observation of shape ``(n_assets, n_features)`` (asset axis first,
    so asset-count-independent policies work) and one action per asset plus
    one for cash. In ``backtest`` mode each step's ``info`` must hold
    ``net_return`` (simple return after costs), ``turnover``, ``cost`` and
    ``weights``; evaluation reads those.
    """

    #: registered name, used by a stage's ``env_builder`` field.
    name: str = ""
    #: one line for listings.
    description: str = ""
    #: whether :meth:`build` honours ``request.universe`` (stages with a universe need it).
    supports_universe: bool = False

    @abc.abstractmethod
    def build(self, request: EnvRequest) -> VecEnv:
        """Build the environment described by ``request``.

        :param request: data, stage, split, batch size and mode.
        :return: a stable-baselines3 ``VecEnv``.
        """
