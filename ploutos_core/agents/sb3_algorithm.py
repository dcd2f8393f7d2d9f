"""A base for algorithm plugins built on stable-baselines3 (the built-in PPO, A2C, RecurrentPPO).

Importing this module does not import torch or stable-baselines3; subclasses
import them inside :meth:`SB3Algorithm.make_agent`, so ``ploutos --help`` stays fast.
"""

from __future__ import annotations

import abc
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ploutos_core.agents.contract import Agent, Algorithm, TrainingSetup

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from ploutos_core.agents.sb3_agent import SB3Agent


def on_policy_kwargs(setup: TrainingSetup) -> dict[str, Any]:
    """Constructor arguments every SB3 on-policy algorithm takes, from the stage's settings."""
    hp = setup.hyperparameters
    return {
        "learning_rate": hp.learning_rate,
        "n_steps": hp.n_steps,
        "gamma": hp.gamma,
        "gae_lambda": hp.gae_lambda,
        "ent_coef": hp.ent_coef,
        "vf_coef": hp.vf_coef,
        "max_grad_norm": hp.max_grad_norm,
        "seed": setup.seed,
        "device": setup.device,
        "verbose": 0,
    }


def ppo_kwargs(setup: TrainingSetup, n_envs: int) -> dict[str, Any]:
    """:func:`on_policy_kwargs` plus PPO's minibatch settings.

    The batch is capped at the rollout: a one-environment backtest env rolls out
    less than a training batch.
    """
    hp = setup.hyperparameters
    return {**on_policy_kwargs(setup), "batch_size": min(hp.batch_size, hp.n_steps * n_envs),
            "n_epochs": hp.n_epochs, "clip_range": hp.clip_range}


class SB3Algorithm(Algorithm):
    """An :class:`Algorithm` whose agents are :class:`~ploutos_core.agents.sb3_agent.SB3Agent`.

    Subclasses implement :meth:`make_agent`; building and loading are shared.
    """

    supports_freeze = True  # SB3Agent.set_trainable

    @abc.abstractmethod
    def make_agent(self, env: VecEnv, setup: TrainingSetup) -> SB3Agent:
        """A fresh agent wrapping the algorithm's SB3 model."""

    def build(self, env: VecEnv, setup: TrainingSetup) -> Agent:
        """A fresh, randomly initialised agent for ``env``."""
        return self._new_agent(env, setup)

    def load(self, path: Path, env: VecEnv, setup: TrainingSetup) -> Agent:
        """Rebuild the agent and restore weights, optimiser and step count from ``path``."""
        agent = self._new_agent(env, setup)
        agent.restore(path)
        return agent

    def _new_agent(self, env: VecEnv, setup: TrainingSetup) -> SB3Agent:
        with warnings.catch_warnings():
            # A last minibatch smaller than batch_size is harmless; SB3 warns about it.
            warnings.filterwarnings("ignore", message="You have specified a mini-batch size")
            return self.make_agent(env, setup)
