"""Built-in ``portfolio`` and ``torch_portfolio`` env builders: the batched long-only
portfolio environment, in NumPy or as tensors on a torch device (same results)."""

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


class TorchPortfolioEnvBuilder(EnvBuilder):
    """Builds :class:`ploutos_core.torch.TorchPortfolioVecEnv` on ``request.device``: the
    ``portfolio`` env's features, accounting and rewards as tensors (issue 15). The
    ``cuda_ppo`` algorithm steps it without leaving the device; other algorithms and
    backtests use its stable-baselines3 ``VecEnv`` interface."""

    name = "torch_portfolio"
    description = ("the portfolio env as torch tensors on --device (cuda_ppo's rollout stays "
                   "on the GPU)")
    supports_universe = True

    def build(self, request: EnvRequest) -> VecEnv:
        """A ``TorchPortfolioVecEnv`` over ``request.split`` of ``request.panel``."""
        from ploutos_core.torch import TorchPortfolioVecEnv

        return TorchPortfolioVecEnv.from_request(request)


@hookimpl
def ploutos_register_env_builders(register: Registrar[EnvBuilder]) -> None:
    """Register the NumPy and torch portfolio env builders."""
    register(PortfolioEnvBuilder())
    register(TorchPortfolioEnvBuilder())
