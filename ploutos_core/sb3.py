"""The public surface for plugins built on stable-baselines3: algorithms and environments.

Importing this module does not import torch or stable-baselines3; the classes that
need them are loaded on first use (``from ploutos_core.sb3 import SB3Agent`` inside
your ``make_agent``), so ``ploutos --help`` stays fast. The built-in ``ppo``, ``a2c``
and ``recurrent_ppo`` plugins are written against this module only::

    from ploutos_core.sb3 import SB3Algorithm, ppo_kwargs

    class MyPPO(SB3Algorithm):
        name = "my_ppo"

        def make_agent(self, env, setup):
            from stable_baselines3 import PPO
            from ploutos_core.sb3 import AssetSetPolicy, SB3Agent

            model = PPO(AssetSetPolicy, env, **ppo_kwargs(setup, env.num_envs))
            return SB3Agent(model, self.name)
"""

from __future__ import annotations

import importlib
from typing import Any

from ploutos_core.agents.sb3_algorithm import SB3Algorithm, on_policy_kwargs, ppo_kwargs

#: name → module of what loads torch or stable-baselines3 on first use.
_LAZY = {
    "SB3Agent": "ploutos_core.agents.sb3_agent",
    "RecurrentSB3Agent": "ploutos_core.agents.sb3_agent",
    "read_state_dict": "ploutos_core.agents.sb3_agent",
    "AssetSetPolicy": "ploutos_core.agents.policy",
    "PortfolioVecEnv": "ploutos_core.env.portfolio",
    "MarketArrays": "ploutos_core.env.market",
}

__all__ = ["SB3Algorithm", "on_policy_kwargs", "ppo_kwargs", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
