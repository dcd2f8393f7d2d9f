"""Built-in ``cuda_ppo`` algorithm: a lean PPO in plain torch over the device environment.

Rollout and update never leave the device (``--device cuda``; it runs on a CPU as well):
the portfolio environment's torch backend steps every environment at once, and
the policy is the same asset-set policy as ``ppo``'s, so models move between the two
(weights only) and ``ploutos evaluate`` backtests either. See
:class:`ploutos_core.torch.TorchPPOAgent` for the algorithm and docs/performance.md
for what it measures.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ploutos_core import Agent, Algorithm, Registrar, TrainingSetup, hookimpl

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from ploutos_core.torch import TorchPPOAgent


def _positive_or_none(instance: object, attribute: attrs.Attribute[float | None],
                      value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"must be > 0, got {value}")


def _precision(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("float32", "bfloat16"):
        raise ValueError(f"must be \"float32\" or \"bfloat16\", got {value!r}")


@attrs.frozen
class CudaPPOOptions:
    """``cuda_ppo``'s own settings, in a stage's ``[stage.algorithm_options]``: ``ppo``'s,
    so a stage's options apply to either, plus ``precision``.

    :param log_std_init: initial log standard deviation of the Gaussian policy.
    :param target_kl: stop an update's epochs early when the approximate KL divergence
        exceeds 1.5 × this (``None``: never; when set, each minibatch waits for its KL).
    :param normalize_advantage: normalise advantages per minibatch.
    :param precision: ``float32``, or ``bfloat16``: mixed precision on CUDA (the network's
        forward passes autocast to bfloat16; ignored on a CPU).
    """

    log_std_init: float = -0.5
    target_kl: float | None = attrs.field(default=None, validator=_positive_or_none)
    normalize_advantage: bool = True
    precision: str = attrs.field(default="float32", validator=_precision)


class CudaPPOAlgorithm(Algorithm):
    """PPO in plain torch (stable-baselines3's algorithm, without its host round trips)
    with :class:`~ploutos_core.torch.AssetSetPolicy`."""

    name = "cuda_ppo"
    description = ("lean torch PPO: env, rollout and update on the device (GPU or CPU); "
                   "same policy and model files as ppo")
    supports_transfer = True
    supports_freeze = True
    options_type = CudaPPOOptions

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

        options = setup.options or CudaPPOOptions()
        return TorchPPOAgent(env, setup, algorithm=self.name, **attrs.asdict(options))


@hookimpl
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register cuda_ppo."""
    register(CudaPPOAlgorithm())
