"""Built-in ``cuda_ppo`` algorithm: a lean PPO in plain torch over the device environment.

Rollout and update never leave the device (``--device cuda``; it runs on a CPU as well):
the portfolio environment's torch backend steps every environment at once, and
the policy is the same asset-set policy as ``ppo``'s, so models move between the two
(weights only) and ``ploutos evaluate`` backtests either. See
:class:`ploutos_core.torch.TorchPPOAgent` for the algorithm and docs/performance.md
for what it measures.

``PLOUTOS_CUDA_PPO_PRECISION=bfloat16`` autocasts the network's forward passes to
bfloat16 on CUDA (mixed precision); the default is float32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ploutos_core import Agent, Algorithm, Registrar, TrainingSetup, hookimpl

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from ploutos_core.torch import TorchPPOAgent

#: environment variable choosing the precision (``float32`` or ``bfloat16``).
PRECISION_VARIABLE = "PLOUTOS_CUDA_PPO_PRECISION"


class CudaPPOAlgorithm(Algorithm):
    """PPO in plain torch (stable-baselines3's algorithm, without its host round trips)
    with :class:`~ploutos_core.torch.AssetSetPolicy`."""

    name = "cuda_ppo"
    description = ("lean torch PPO: env, rollout and update on the device (GPU or CPU); "
                   "same policy and model files as ppo")
    supports_transfer = True

    def build(self, env: VecEnv, setup: TrainingSetup) -> Agent:
        """A fresh agent for ``env`` (the ``portfolio`` or ``torch_portfolio`` env)."""
        return self._agent(env, setup)

    def load(self, path: Path, env: VecEnv, setup: TrainingSetup) -> Agent:
        """An agent restored from a ``cuda_ppo`` model file (weights, optimiser, sampler
        and environment state)."""
        agent = self._agent(env, setup)
        agent.restore(path)
        return agent

    def _agent(self, env: VecEnv, setup: TrainingSetup) -> TorchPPOAgent:
        from ploutos_core.torch import TorchPPOAgent

        precision = os.environ.get(PRECISION_VARIABLE, "float32")
        return TorchPPOAgent(env, setup, algorithm=self.name, precision=precision)


@hookimpl
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register cuda_ppo."""
    register(CudaPPOAlgorithm())
