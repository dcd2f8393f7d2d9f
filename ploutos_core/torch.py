"""The public surface for plugins written in plain torch: the device environment, the lean
PPO agent and the device-memory check (issue 15).

Importing this module does not import torch; what needs it loads on first use, as in
:mod:`ploutos_core.sb3`. The built-in ``cuda_ppo`` algorithm and ``torch_portfolio``
env builder are written against this module only::

    from ploutos_core import Algorithm

    class MyTorchPPO(Algorithm):
        name = "my_torch_ppo"

        def build(self, env, setup):
            from ploutos_core.torch import TorchPPOAgent

            return TorchPPOAgent(env, setup, algorithm=self.name)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers; nothing loads here
    from ploutos_core.agents.device import check_device_memory, rollout_memory_bytes
    from ploutos_core.agents.policy import AssetSetPolicy
    from ploutos_core.agents.sb3_agent import read_state_dict
    from ploutos_core.agents.torch_ppo import TorchPPOAgent
    from ploutos_core.env.torch_portfolio import TensorStep, TorchPortfolioVecEnv

#: name → module of what loads torch on first use.
_LAZY = {
    "TorchPortfolioVecEnv": "ploutos_core.env.torch_portfolio",
    "TensorStep": "ploutos_core.env.torch_portfolio",
    "TorchPPOAgent": "ploutos_core.agents.torch_ppo",
    "rollout_memory_bytes": "ploutos_core.agents.device",
    "check_device_memory": "ploutos_core.agents.device",
    "AssetSetPolicy": "ploutos_core.agents.policy",
    "read_state_dict": "ploutos_core.agents.sb3_agent",
}

__all__ = ["AssetSetPolicy", "TensorStep", "TorchPPOAgent", "TorchPortfolioVecEnv",
           "check_device_memory", "read_state_dict", "rollout_memory_bytes"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
