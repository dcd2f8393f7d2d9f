"""Built-in ``portfolio`` env builder: the batched long-only portfolio environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ploutos_core import EnvBuilder, EnvRequest, Registrar, hookimpl

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


class PortfolioEnvBuilder(EnvBuilder):
    """Builds :class:`ploutos_core.env.portfolio.PortfolioVecEnv` for a stage and split."""

    name = "portfolio"
    description = ("batched NumPy portfolio env: benchmark-tilt or softmax weights, turnover "
                   "rule, costs; samples sub-universes")
    supports_universe = True

    def build(self, request: EnvRequest) -> VecEnv:
        """A ``PortfolioVecEnv`` over ``request.split`` of ``request.panel``."""
        from ploutos_core.sb3 import PortfolioVecEnv

        return PortfolioVecEnv.from_request(request)


@hookimpl
def ploutos_register_env_builders(register: Registrar[EnvBuilder]) -> None:
    """Register the portfolio env builder."""
    register(PortfolioEnvBuilder())
