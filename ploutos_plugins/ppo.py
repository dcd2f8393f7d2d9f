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


class PPOAlgorithm(SB3Algorithm):
    """Proximal Policy Optimisation (stable-baselines3) with :class:`AssetSetPolicy`."""

    name = "ppo"
    description = "stable-baselines3 PPO, asset-count-independent policy, CUDA when available"
    supports_transfer = True

    def make_agent(self, env: VecEnv, setup: TrainingSetup) -> SB3Agent:
        """A fresh PPO agent for ``env``."""
        from stable_baselines3 import PPO

        from ploutos_core.sb3 import AssetSetPolicy, SB3Agent

        hp = setup.hyperparameters
        model = PPO(AssetSetPolicy, env, policy_kwargs={"hidden_size": hp.hidden_size},
                    **ppo_kwargs(setup, env.num_envs))
        return SB3Agent(model, self.name, {"hyperparameters": attrs.asdict(hp)})


@hookimpl
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register PPO."""
    register(PPOAlgorithm())
