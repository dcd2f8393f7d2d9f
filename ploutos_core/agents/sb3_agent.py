"""Adapt a stable-baselines3 model to the :class:`~ploutos_core.agents.contract.Agent` contract.

Algorithm plugins built on stable-baselines3 (the built-in PPO, A2C,
RecurrentPPO) wrap their model in :class:`SB3Agent`. Model files are SB3 zip
archives with one extra member, ``ploutos.json`` (algorithm, step count,
observation layout, hyperparameters). Loading never unpickles: weights and
optimiser state are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.vec_env import VecEnv

from ploutos_core.agents.contract import Agent, TrainingMonitor, TransferReport
from ploutos_core.agents.model_files import (
    METADATA_MEMBER,
    open_archive,
    read_own_metadata,
    resolve_model_path,
)
from ploutos_core.errors import ModelError, first_line
from ploutos_core.runfiles.atomic import atomic_path

POLICY_MEMBER = "policy.pth"


def read_state_dict(path: str | Path, member: str = POLICY_MEMBER) -> dict[str, torch.Tensor]:
    """Tensors of one ``.pth`` member, loaded with ``weights_only=True`` (no code runs).

    :raises ModelError: when the file or member is missing or unreadable.
    """
    resolved = resolve_model_path(path)
    with open_archive(resolved) as archive:
        if member not in archive.namelist():
            raise ModelError(f"{resolved} has no {member}; it is not a stable-baselines3 model")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notes
                state = torch.load(io.BytesIO(archive.read(member)), map_location="cpu",
                                   weights_only=True)
        except Exception as exc:  # torch raises several unpickling error types
            raise ModelError(f"{resolved}: {member} is not a plain file of tensors; Ploutos "
                             f"loads weights only, never code, so the file is refused") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ModelError(f"{resolved}: {member} does not hold a state dict of tensors")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"{resolved}: tensor {key} of {member} holds NaN or infinite "
                             f"values; the model diverged or the file is damaged")
    return state


def check_compatible(path: Path, own: Mapping[str, torch.Tensor],
                     state: Mapping[str, torch.Tensor]) -> None:
    """Refuse a state dict whose tensor names or shapes differ from the policy's ``own``.

    :raises ModelError: naming the missing, extra or differently shaped tensors.
    """
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelError(
            f"{path} is incompatible: its policy lacks {missing[:3] or 'nothing'} and has "
            f"extra {unexpected[:3] or 'nothing'}; it was trained with another algorithm "
            f"or policy (check --algorithm)"
        )
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ModelError(
                f"{path} is incompatible: tensor {key} has shape {tuple(state[key].shape)} "
                f"there but {tuple(tensor.shape)} here; the model was trained with another "
                f"observation layout (feature window) or network size (hidden_size)"
            )


def transfer_weights(policy: torch.nn.Module, path: str | Path,
                     only: Sequence[str] = ()) -> TransferReport:
    """Copy the ``policy.pth`` tensors of a model file into ``policy`` (weights only): every
    tensor (strict), or those whose names start with a prefix of ``only``.

    Shared by every agent of the asset-set policy (``ppo``, ``a2c``, ``cuda_ppo``), so a
    model moves between them exactly.

    :raises ModelError: when the file does not fit, or ``only`` matches no tensor.
    """
    resolved = resolve_model_path(path)
    state = read_state_dict(resolved)
    own = policy.state_dict()
    check_compatible(resolved, own, state)
    total = len(own)
    if not only:
        policy.load_state_dict(state, strict=True)
        return TransferReport(source=resolved, copied=len(state), total=total)
    chosen = {key: value for key, value in state.items()
              if any(key == prefix or key.startswith(prefix + ".") for prefix in only)}
    if not chosen:
        raise ModelError(f"[stage.transfer] parameters {list(only)} match no tensor of "
                         f"the policy; its tensors are {sorted(state)[:8]}…")
    policy.load_state_dict(chosen, strict=False)
    return TransferReport(source=resolved, copied=len(chosen), total=total)


def set_requires_grad(policy: torch.nn.Module, prefixes: Sequence[str], trainable: bool) -> int:
    """Mark the tensors of ``policy`` whose names start with a prefix of ``prefixes`` as
    trained or fixed; return how many matched. A fixed tensor gets no gradient, and Adam
    skips a tensor without one, so it and its optimiser moments stay as they are.

    :raises ModelError: when no tensor matches.
    """
    matched = [tensor for name, tensor in policy.named_parameters()
               if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)]
    if not matched:
        names = sorted(name for name, _ in policy.named_parameters())
        raise ModelError(f"[stage.transfer] parameters {list(prefixes)} match no tensor of "
                         f"the policy; its tensors are {names[:8]}…")
    for tensor in matched:
        tensor.requires_grad_(trainable)
    return len(matched)


class _MetricWriter(KVWriter):
    """Forward the numbers SB3 logs (losses, KL, fps, …) to the training monitor."""

    def __init__(self, monitor: TrainingMonitor) -> None:
        self.monitor = monitor

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]],
              step: int = 0) -> None:
        numbers = {key: float(value) for key, value in key_values.items()
                   if isinstance(value, (int, float, np.number)) and not isinstance(value, bool)}
        if numbers:
            self.monitor.on_metrics(numbers, step)

    def close(self) -> None:
        """Nothing to release."""


class _MonitorCallback(BaseCallback):
    """Drive a :class:`TrainingMonitor` from SB3's callback events."""

    def __init__(self, monitor: TrainingMonitor, agent: SB3Agent) -> None:
        super().__init__()
        self.monitor = monitor
        self.agent = agent
        self.first_rollout = True
        self.stopped = False

    def _on_training_start(self) -> None:
        self.monitor.on_training_start(self.agent)

    def _on_rollout_start(self) -> None:
        # A rollout starts right after a policy update: a clean point to checkpoint.
        self.agent.steps_at_update = self.model.num_timesteps
        if self.first_rollout:
            self.first_rollout = False
            return
        self.monitor.on_iteration(self.model.num_timesteps)

    def _on_step(self) -> bool:
        keep_going = self.monitor.on_step(self.model.num_timesteps, self.locals.get("infos", []))
        self.stopped = self.stopped or not keep_going
        return keep_going

    def _on_training_end(self) -> None:
        # SB3 calls this after a stop too; a partial rollout was never learned from.
        if not self.stopped:
            self.agent.steps_at_update = self.model.num_timesteps


class SB3Agent(Agent):
    """An :class:`Agent` backed by a stable-baselines3 model.

    :param model: the SB3 algorithm instance.
    :param algorithm: the registered algorithm name, stored in model files.
    :param extra_metadata: stored in every saved file (e.g. hyperparameters).
    """

    def __init__(self, model: BaseAlgorithm, algorithm: str,
                 extra_metadata: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.algorithm = algorithm
        self.extra_metadata = dict(extra_metadata or {})
        self.steps_at_update = model.num_timesteps

    @property
    def num_timesteps(self) -> int:
        """Environment steps trained so far."""
        return int(self.model.num_timesteps)

    def learn(self, total_timesteps: int, monitor: TrainingMonitor) -> None:
        """Train until ``total_timesteps``; stops early when the monitor says so."""
        remaining = total_timesteps - self.num_timesteps
        if remaining <= 0:
            return
        self.model.set_logger(Logger(folder=None, output_formats=[_MetricWriter(monitor)]))
        self.model.learn(total_timesteps=remaining, callback=_MonitorCallback(monitor, self),
                         reset_num_timesteps=False, progress_bar=False)
        # SB3 records the last update's losses without dumping them; flush them now.
        self.model.logger.dump(self.model.num_timesteps)
        if self.model.num_timesteps != self.steps_at_update:
            # Stopped inside a rollout: the partial rollout was never trained on, so
            # count only the steps the weights have learned from; resume redoes the rest.
            self.model.num_timesteps = self.steps_at_update
        monitor.on_training_end()

    def predict(self, observation: NDArray[np.float32], deterministic: bool = True
                ) -> NDArray[np.float32]:
        """Actions for a batch of observations."""
        actions, _ = self.model.predict(observation, deterministic=deterministic)
        return np.asarray(actions, dtype=np.float32)

    def metadata(self) -> dict[str, Any]:
        """What :meth:`save` writes into ``ploutos.json``."""
        space = self.model.observation_space
        return {
            "format": 1,
            "algorithm": self.algorithm,
            "num_timesteps": self.num_timesteps,
            "observation_shape": list(space.shape or ()),
            **self.extra_metadata,
        }

    def save(self, path: Path, metadata: Mapping[str, Any]) -> None:
        """Write an SB3 zip plus ``ploutos.json`` atomically."""
        with atomic_path(path) as tmp:
            self.model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(METADATA_MEMBER,
                                 json.dumps({**self.metadata(), **metadata}, default=str,
                                            indent=2))

    def restore(self, path: str | Path) -> dict[str, Any]:
        """Load weights, optimiser state and step count from a checkpoint of this algorithm.

        :raises ModelError: for a file of another algorithm or other spaces.
        """
        resolved, metadata = read_own_metadata(path, self.algorithm)
        self._check_compatible(resolved, read_state_dict(resolved))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.model.set_parameters(str(resolved), exact_match=True,
                                          device=self.model.device)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(f"{resolved} does not fit this model: {first_line(exc)}") from exc
        except Exception as exc:  # torch's unpickler raises its own error types
            raise ModelError(f"{resolved}: its optimiser state or variables are not plain "
                             f"tensors; Ploutos loads weights only, never code, so the file is "
                             f"refused") from exc
        self.model.num_timesteps = int(metadata.get("num_timesteps", 0))
        self.steps_at_update = self.model.num_timesteps
        return metadata

    def transfer_from(self, path: Path, only: Sequence[str] = ()) -> TransferReport:
        """Copy policy tensors from ``path`` (weights only): every tensor (strict), or the
        ones whose names start with a prefix of ``only`` (the rest keep their fresh
        initialisation).

        :raises ModelError: when the file does not fit, or ``only`` matches no tensor.
        """
        return transfer_weights(self.model.policy, path, only)

    def set_trainable(self, prefixes: Sequence[str], trainable: bool) -> int:
        """Train or fix the policy tensors named by ``prefixes``; see
        :func:`set_requires_grad`."""
        return set_requires_grad(self.model.policy, prefixes, trainable)

    def _check_compatible(self, path: Path, state: Mapping[str, torch.Tensor]) -> None:
        check_compatible(path, self.model.policy.state_dict(), state)

    def set_environment(self, env: VecEnv) -> None:
        """Use another environment with the same spaces."""
        self.model.set_env(env)


class RecurrentSB3Agent(SB3Agent):
    """An :class:`SB3Agent` for recurrent policies (sb3-contrib ``RecurrentPPO``).

    A recurrent policy's action depends on its hidden state, so :meth:`predict`
    carries the state from one call to the next and passes ``episode_start``
    flags: true on the first call after construction or :meth:`reset_state`
    (the backtest calls it before each episode), false afterwards, unless the
    caller says which environments have just started a new episode.
    Without this, SB3 would start every call from a zero state and the LSTM
    would never remember anything.
    """

    def __init__(self, model: BaseAlgorithm, algorithm: str,
                 extra_metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, algorithm, extra_metadata)
        self._state: tuple[NDArray[Any], ...] | None = None

    def reset_state(self) -> None:
        """Forget the hidden state: the next :meth:`predict` starts new episodes."""
        self._state = None

    def predict(self, observation: NDArray[np.float32], deterministic: bool = True,
                episode_start: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
        """Actions for a batch of observations, continuing each environment's episode.

        :param observation: a batch, one row per environment.
        :param deterministic: take the mode of the action distribution.
        :param episode_start: per environment, whether this observation starts a new
            episode (its hidden state is reset); default: every environment starts
            a new episode on the first call after :meth:`reset_state`, none after.
        """
        n_envs = int(np.shape(observation)[0])
        if self._state is not None and self._state[0].shape[1] != n_envs:
            self._state = None  # another batch size: a new set of episodes
        if episode_start is None:
            episode_start = np.full(n_envs, self._state is None)
        actions, self._state = self.model.predict(observation, state=self._state,
                                                  episode_start=episode_start,
                                                  deterministic=deterministic)
        return np.asarray(actions, dtype=np.float32)

    def restore(self, path: str | Path) -> dict[str, Any]:
        """Load a checkpoint (see :meth:`SB3Agent.restore`) and forget the hidden state."""
        self.reset_state()
        return super().restore(path)
