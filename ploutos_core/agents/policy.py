"""The asset-count-independent actor-critic policy (stable-baselines3 ``ActorCriticPolicy``).

One shared encoder is applied to every asset's feature row; mean- and
max-pooling across assets gives a market context; each asset is scored from
(its encoding, the context), cash and the state value from the context alone.
The Gaussian's log standard deviation has one entry for assets and one for
cash. No parameter's shape depends on the number of assets, so a policy trained
on one asset loads exactly into an environment with five, and permuting the
assets permutes the action.
"""

from __future__ import annotations

import math
from typing import Any, cast

import gymnasium as gym
import torch
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn


class AssetAxisExtractor(BaseFeaturesExtractor):
    """Identity extractor: keeps the ``(batch, n_assets, n_features)`` layout."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(observation_space.shape[-1]))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Return the observations unchanged."""
        return observations


def _init(module: nn.Module, gain: float) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)


class AssetSetPolicy(ActorCriticPolicy):
    """Permutation-equivariant actor-critic over a set of assets.

    :param observation_space: ``Box`` of shape ``(n_assets, n_features)``.
    :param action_space: ``Box`` of shape ``(n_assets + 1,)`` (cash last).
    :param lr_schedule: learning-rate schedule (given by stable-baselines3).
    :param hidden_size: width of the encoder, context and heads.
    :param kwargs: further ``ActorCriticPolicy`` arguments (``log_std_init``,
        ``optimizer_class``, …); ``net_arch`` and the features extractor are fixed.
    """

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 lr_schedule: Schedule, hidden_size: int = 64, **kwargs: Any) -> None:
        self.hidden_size = hidden_size
        kwargs.setdefault("log_std_init", -0.5)
        kwargs["features_extractor_class"] = AssetAxisExtractor
        kwargs.pop("net_arch", None)
        super().__init__(observation_space, action_space, lr_schedule, net_arch=[], **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["hidden_size"] = self.hidden_size
        return data

    def _build(self, lr_schedule: Schedule) -> None:
        width = self.hidden_size
        n_features = int(self.observation_space.shape[-1])  # type: ignore[index]
        self.encoder = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(),
                                     nn.Linear(width, width), nn.Tanh())
        self.context = nn.Sequential(nn.Linear(2 * width, width), nn.Tanh())
        self.asset_head = nn.Sequential(nn.Linear(2 * width, width), nn.Tanh(),
                                        nn.Linear(width, 1))
        self.cash_head = nn.Linear(width, 1)
        self.value_head = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
        self.asset_log_std = nn.Parameter(torch.full((1,), float(self.log_std_init)))
        self.cash_log_std = nn.Parameter(torch.full((1,), float(self.log_std_init)))
        if self.ortho_init:
            for module, gain in ((self.encoder, math.sqrt(2)), (self.context, math.sqrt(2)),
                                 (self.asset_head, math.sqrt(2)), (self.value_head, math.sqrt(2))):
                _init(module, gain)
            _init(self.asset_head[-1], 0.01)
            _init(self.cash_head, 0.01)
            _init(self.value_head[-1], 1.0)
        self.action_dist = DiagGaussianDistribution(int(self.action_space.shape[0]))  # type: ignore[index]
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _heads(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        """Action means ``(batch, n_assets + 1)`` and values ``(batch, 1)``."""
        features = cast(torch.Tensor,
                        preprocess_obs(obs, self.observation_space, normalize_images=False))
        encoded = self.encoder(features)
        pooled = torch.cat([encoded.mean(dim=1), encoded.amax(dim=1)], dim=-1)
        context = self.context(pooled)
        expanded = context.unsqueeze(1).expand_as(encoded)
        scores = self.asset_head(torch.cat([encoded, expanded], dim=-1)).squeeze(-1)
        means = torch.cat([scores, self.cash_head(context)], dim=-1)
        return means, self.value_head(context)

    def heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Action means ``(batch, n_assets + 1)`` and values ``(batch, 1)`` of a batch of
        observations ``(batch, n_assets, n_features)``, for algorithms written in plain
        torch (``cuda_ppo``), which sample the Gaussian themselves."""
        return self._heads(obs)

    def action_log_std(self, n_assets: int) -> torch.Tensor:
        """``(n_assets + 1,)`` log standard deviations of the Gaussian: one shared by the
        assets, then the cash one."""
        return torch.cat([self.asset_log_std.expand(n_assets), self.cash_log_std])

    def _distribution(self, means: torch.Tensor) -> DiagGaussianDistribution:
        log_std = self.action_log_std(means.shape[-1] - 1)
        return cast(DiagGaussianDistribution,
                    self.action_dist.proba_distribution(means, log_std))

    def forward(self, obs: torch.Tensor, deterministic: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions; return actions, values and log-probabilities."""
        means, values = self._heads(obs)
        distribution = self._distribution(means)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(self, obs: PyTorchObs, actions: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Values, log-probabilities and entropy of ``actions`` (used by the PPO update)."""
        means, values = self._heads(obs)
        distribution = self._distribution(means)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> DiagGaussianDistribution:
        """The action distribution for ``obs``."""
        return self._distribution(self._heads(obs)[0])

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        """State values for ``obs``."""
        return self._heads(obs)[1]

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)
