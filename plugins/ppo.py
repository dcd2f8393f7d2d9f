"""Built-in ``ppo`` algorithm: stable-baselines3 PPO with the asset-set policy.

Runs on CUDA when the runner resolves ``--device`` to a GPU. The policy has no
asset-count-shaped parameter, so weights transfer exactly between stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ploutos_core import Agent, Algorithm, Registrar, TrainingSetup, hookimpl

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


class PPOAlgorithm(Algorithm):
    """Proximal Policy Optimisation (stable-baselines3) with :class:`AssetSetPolicy`."""

    name = "ppo"
    description = "stable-baselines3 PPO, asset-count-independent policy, CUDA when available"
    supports_transfer = True

    def build(self, env: VecEnv, setup: TrainingSetup) -> Agent:
        """A fresh PPO agent for ``env``."""
        from stable_baselines3 import PPO

        from ploutos_core.policy import AssetSetPolicy
        from ploutos_core.sb3_agent import SB3Agent

        hp = setup.hyperparameters
        model = PPO(
            AssetSetPolicy,
            env,
            learning_rate=hp.learning_rate,
            n_steps=hp.n_steps,
            # A backtest env (one environment) rolls out less than a training batch.
            batch_size=min(hp.batch_size, hp.n_steps * env.num_envs),
            n_epochs=hp.n_epochs,
            gamma=hp.gamma,
            gae_lambda=hp.gae_lambda,
            clip_range=hp.clip_range,
            ent_coef=hp.ent_coef,
            vf_coef=hp.vf_coef,
            max_grad_norm=hp.max_grad_norm,
            policy_kwargs={"hidden_size": hp.hidden_size},
            seed=setup.seed,
            device=setup.device,
            verbose=0,
        )
        return SB3Agent(model, self.name, {"hyperparameters": attrs.asdict(hp)})

    def load(self, path: Path, env: VecEnv, setup: TrainingSetup) -> Agent:
        """Rebuild the agent and restore weights, optimiser and step count from ``path``."""
        agent: Any = self.build(env, setup)
        agent.restore(path)
        return agent  # type: ignore[no-any-return]


@hookimpl
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register PPO."""
    register(PPOAlgorithm())
