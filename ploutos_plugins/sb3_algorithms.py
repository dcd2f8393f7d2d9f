"""Built-in ``a2c`` and ``recurrent_ppo`` algorithms: alternatives from stable-baselines3
and sb3-contrib, registered exactly as a third-party algorithm plugin would be.

* ``a2c`` — stable-baselines3 A2C with the asset-set policy. Like ``ppo`` it has
  no asset-count-shaped parameter, so it transfers between stages.
* ``recurrent_ppo`` — sb3-contrib RecurrentPPO with its LSTM policy. The LSTM
  reads the flattened observation, so its first layer's shape depends on the
  number of assets: it cannot carry weights between stages of different asset
  counts (``supports_transfer = False``), and the runner refuses such a
  curriculum before training. Its agent carries the LSTM state from one
  :meth:`~ploutos_core.Agent.predict` call to the next within an episode.

Both read the stage's ``[stage.hyperparameters]``; fields an algorithm has no
use for (A2C: ``batch_size``, ``n_epochs``, ``clip_range``) are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ploutos_core import Algorithm, Registrar, TrainingSetup, hookimpl
from ploutos_core.sb3 import SB3Algorithm, on_policy_kwargs, ppo_kwargs

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from ploutos_core.sb3 import SB3Agent

PLOUTOS_API_VERSION = 1


class A2CAlgorithm(SB3Algorithm):
    """Advantage Actor-Critic (stable-baselines3) with :class:`AssetSetPolicy`.

    Uses ``learning_rate``, ``n_steps``, ``gamma``, ``gae_lambda``, ``ent_coef``,
    ``vf_coef``, ``max_grad_norm`` and ``hidden_size`` of the stage; RMSprop as in
    the original A2C.
    """

    name = "a2c"
    description = "stable-baselines3 A2C, asset-count-independent policy (transfers)"
    supports_transfer = True

    def make_agent(self, env: VecEnv, setup: TrainingSetup) -> SB3Agent:
        """A fresh A2C agent for ``env``."""
        from stable_baselines3 import A2C

        from ploutos_core.sb3 import AssetSetPolicy, SB3Agent

        hp = setup.hyperparameters
        model = A2C(AssetSetPolicy, env, policy_kwargs={"hidden_size": hp.hidden_size},
                    **on_policy_kwargs(setup))
        return SB3Agent(model, self.name, {"hyperparameters": attrs.asdict(hp)})


class RecurrentPPOAlgorithm(SB3Algorithm):
    """Recurrent PPO (sb3-contrib) with an LSTM over the flattened observation.

    ``hidden_size`` sets both the LSTM width and the width of the layer after it.
    The policy's input layer is as wide as the flattened observation
    (``n_assets × n_features``), so a trained model only fits stages with the
    same asset count and feature window.
    """

    name = "recurrent_ppo"
    description = ("sb3-contrib RecurrentPPO (LSTM policy); its policy depends on the asset "
                   "count, so it cannot transfer between stages")
    supports_transfer = False

    def make_agent(self, env: VecEnv, setup: TrainingSetup) -> SB3Agent:
        """A fresh RecurrentPPO agent for ``env``."""
        from sb3_contrib import RecurrentPPO

        from ploutos_core.sb3 import RecurrentSB3Agent

        hp = setup.hyperparameters
        policy_kwargs: dict[str, Any] = {
            "lstm_hidden_size": hp.hidden_size,
            "net_arch": {"pi": [hp.hidden_size], "vf": [hp.hidden_size]},
        }
        model = RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=policy_kwargs,
                             **ppo_kwargs(setup, env.num_envs))
        return RecurrentSB3Agent(model, self.name, {"hyperparameters": attrs.asdict(hp)})


@hookimpl
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register A2C and RecurrentPPO."""
    register(A2CAlgorithm())
    register(RecurrentPPOAlgorithm())
