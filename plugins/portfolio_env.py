"""Built-in ``portfolio`` env builder: the batched long-only portfolio environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ploutos_core import EnvBuilder, EnvRequest, Registrar, hookimpl

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


class PortfolioEnvBuilder(EnvBuilder):
    """Builds :class:`ploutos_core.env.portfolio.PortfolioVecEnv` for a stage and split."""

    name = "portfolio"
    description = "batched NumPy portfolio env: softmax weights with cash, costs on turnover"

    def build(self, request: EnvRequest) -> VecEnv:
        """A ``PortfolioVecEnv`` over ``request.split`` of ``request.panel``."""
        from ploutos_core.env.portfolio import MarketArrays, PortfolioVecEnv

        stage = request.stage
        label = f"{request.split} split"
        first, last = request.panel.index_range(stage.splits.get(request.split), label=label)
        market = MarketArrays.from_panel(request.panel, stage.env, first, last, label=label)
        return PortfolioVecEnv(market, request.n_envs, stage.env, stage.transaction_cost,
                               mode=request.mode, seed=request.seed,
                               start_mask=request.start_mask)


@hookimpl
def ploutos_register_env_builders(register: Registrar[EnvBuilder]) -> None:
    """Register the portfolio env builder."""
    register(PortfolioEnvBuilder())
