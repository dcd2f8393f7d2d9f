"""Built-in ``ppo`` algorithm: stable-baselines3 PPO with the asset-set policy.

Runs on CUDA when the runner resolves ``--device`` to a GPU. The policy has no
asset-count-shaped parameter, so weights transfer exactly between stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ploutos_core import Algorithm, Registrar, TrainingSetup, hookimpl
from ploutos_core.sb3 import SB3Algorithm, ppo_kwargs

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from ploutos_core.sb3 import SB3Agent


def _positive_or_none(instance: object, attribute: attrs.Attribute[float | None],
                      value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"must be > 0, got {value}")


@attrs.frozen
class PPOOptions:
    """PPO's own settings, in a stage's ``[stage.algorithm_options]``.

    :param log_std_init: initial log standard deviation of the Gaussian policy (the
        exploration noise of the actions; -0.5 gives 0.61 on actions in [-1, 1]).
    :param target_kl: stop an update's epochs early when the approximate KL divergence
        exceeds 1.5 × this (``None``: never).
    :param normalize_advantage: normalise advantages per minibatch.
    """

    log_std_init: float = -0.5
    target_kl: float | None = attrs.field(default=None, validator=_positive_or_none)
    normalize_advantage: bool = True


class PPOAlgorithm(SB3Algorithm):
    """Proximal Policy Optimisation (stable-baselines3) with :class:`AssetSetPolicy`."""

    name = "ppo"
    description = "stable-baselines3 PPO, asset-count-independent policy, CUDA when available"
    supports_transfer = True
    options_type = PPOOptions

    def make_agent(self, env: VecEnv, setup: TrainingSetup) -> SB3Agent:
        """A fresh PPO agent for ``env``."""
        from stable_baselines3 import PPO

        from ploutos_core.sb3 import AssetSetPolicy, SB3Agent

        hp = setup.hyperparameters
        options = setup.options or PPOOptions()
        model = PPO(AssetSetPolicy, env,
                    policy_kwargs={"hidden_size": hp.hidden_size,
                                   "log_std_init": options.log_std_init},
                    target_kl=options.target_kl,
                    normalize_advantage=options.normalize_advantage,
                    **ppo_kwargs(setup, env.num_envs))
        return SB3Agent(model, self.name, {"hyperparameters": attrs.asdict(hp),
                                           "algorithm_options": attrs.asdict(options)})


@hookimpl
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register PPO."""
    register(PPOAlgorithm())
