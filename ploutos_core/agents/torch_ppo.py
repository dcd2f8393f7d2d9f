"""A lean PPO in plain torch whose rollout and update never leave the device (issue 15).

The built-in ``cuda_ppo`` algorithm (usable on a CPU as well) trains
:class:`TorchPPOAgent`. It steps the portfolio environment's torch backend
(:class:`~ploutos_core.env.torch_portfolio.TorchPortfolioVecEnv`) through
:meth:`~ploutos_core.env.torch_portfolio.TorchPortfolioVecEnv.step_tensors`, so prices,
features, weights, actions and rewards stay on the device: no per-step Python loop
over environments, no host↔device copy and no synchronisation inside a rollout (one
per rollout, to bootstrap truncated episodes and report finished ones, and one per
update, for its statistics).

The algorithm is stable-baselines3's PPO, step for step: Gaussian actions sampled
around the policy's means and clipped to ``[-1, 1]`` for the environment, the value
of a truncated episode's last observation added to its last reward (the environment
truncates, never terminates), GAE(λ), per-minibatch advantage normalisation, the
clipped surrogate, a value loss, an entropy bonus, gradient clipping and Adam
(``eps=1e-5``) over shuffled minibatches for ``n_epochs``. The network is ploutos's
:class:`~ploutos_core.agents.policy.AssetSetPolicy` itself, so a model moves exactly
between ``cuda_ppo`` and the SB3 ``ppo`` plugin (weights only) and both predict the
same actions from the same weights.

The rollout stores, per transition, the day and weights an observation is made from
(:meth:`~ploutos_core.env.torch_portfolio.TorchPortfolioVecEnv.observe` rebuilds it)
instead of the observation itself: 20-40× less memory, so tens of thousands of
environments fit on one GPU (:func:`~ploutos_core.agents.device.rollout_memory_bytes`).

Model files are the SB3-style zip of the other algorithms (``policy.pth``,
``policy.optimizer.pth``, ``ploutos.json``) plus ``training_state.pth``: the sampler's
and every environment's state at the last update, so ``--resume`` continues exactly
as if training had never stopped (same device).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional

from ploutos_core.agents.contract import Agent, TrainingMonitor, TrainingSetup, TransferReport
from ploutos_core.agents.device import check_device_memory, rollout_memory_bytes
from ploutos_core.agents.model_files import (
    METADATA_MEMBER,
    open_archive,
    read_own_metadata,
)
from ploutos_core.agents.policy import AssetSetPolicy
from ploutos_core.agents.sb3_agent import (
    POLICY_MEMBER,
    check_compatible,
    read_state_dict,
    set_requires_grad,
    transfer_weights,
)
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.env.torch_portfolio import STATE_FIELDS, TorchPortfolioVecEnv
from ploutos_core.errors import ConfigError, ModelError, first_line
from ploutos_core.runfiles.atomic import atomic_path

OPTIMIZER_MEMBER = "policy.optimizer.pth"
STATE_MEMBER = "training_state.pth"
#: ``float32``, or ``bfloat16`` autocast of the network on CUDA (mixed precision).
PRECISIONS = ("float32", "bfloat16")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_log_prob(actions: torch.Tensor, means: torch.Tensor,
                      log_std: torch.Tensor) -> torch.Tensor:
    """Log-density of ``actions`` under independent Gaussians, summed over the last axis
    (stable-baselines3's ``DiagGaussianDistribution.log_prob``)."""
    z = (actions - means) / log_std.exp()
    return (-0.5 * z**2 - log_std - _LOG_SQRT_2PI).sum(dim=-1)


@attrs.define(eq=False)
class Rollout:
    """One rollout of ``n_steps × n_envs`` transitions, on the device.

    An observation is stored as its day and weights (and, sampling sub-universes, the
    market columns traded: ``assets``, else ``None``); ``next_weights`` with ``day + 1``
    is the observation after the step (a finished episode's terminal observation).
    ``episodes`` holds ``(final value, Sharpe, reward sum, length)`` where ``dones``.
    """

    day: torch.Tensor
    weights: torch.Tensor
    actions: torch.Tensor
    next_weights: torch.Tensor
    log_prob: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episodes: torch.Tensor
    assets: torch.Tensor | None = None

    @classmethod
    def allocate(cls, n_steps: int, n_envs: int, n_assets: int, device: torch.device,
                 sampling: bool = False) -> Rollout:
        """Uninitialised buffers for a rollout."""
        def empty(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.empty((n_steps, n_envs, *shape), dtype=dtype, device=device)

        width = n_assets + 1
        return cls(day=empty(dtype=torch.int32), weights=empty(width), actions=empty(width),
                   next_weights=empty(width), log_prob=empty(), values=empty(),
                   rewards=empty(), dones=empty(dtype=torch.bool), advantages=empty(),
                   returns=empty(), episodes=empty(4, dtype=torch.float64),
                   assets=empty(n_assets, dtype=torch.int64) if sampling else None)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_steps, n_envs)``."""
        return int(self.rewards.shape[0]), int(self.rewards.shape[1])


def _tensor_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_cpu(item) for item in value]
    return value


def _read_member(path: Path, member: str) -> Any:
    """A member of plain tensors and numbers, loaded with ``weights_only=True``; ``None``
    when the file has no such member.

    :raises ModelError: when it holds anything else (code is never run).
    """
    with open_archive(path) as archive:
        if member not in archive.namelist():
            return None
        data = archive.read(member)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unpickling error types
        raise ModelError(f"{path}: {member} is not a plain file of tensors; Ploutos loads "
                         f"weights only, never code, so the file is refused") from exc


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


class TorchPPOAgent(Agent):
    """PPO in plain torch over the device environment, with the asset-set policy.

    :param env: the stage's training (or backtest) environment: a
        :class:`~ploutos_core.env.torch_portfolio.TorchPortfolioVecEnv`, or the NumPy
        :class:`~ploutos_core.env.portfolio.PortfolioVecEnv` (moved to the device, with its
        state, when training starts).
    :param setup: hyperparameters (the PPO family's), seed, device.
    :param algorithm: the registered name written into model files.
    :param precision: ``float32``, or ``bfloat16`` for mixed precision on CUDA (the
        network's forward passes autocast; accounting, losses and optimiser stay float32).
    :param log_std_init: initial log standard deviation of the Gaussian.
    :param target_kl: stop an update's epochs when the approximate KL divergence of a
        minibatch exceeds 1.5 × this (``None``: never); it costs one synchronisation per
        minibatch.
    :param normalize_advantage: normalise the advantages of each minibatch.
    :raises DeviceError: when the rollout would not fit in the GPU's free memory.
    :raises ConfigError: for an unknown precision.
    """

    def __init__(self, env: Any, setup: TrainingSetup, algorithm: str = "cuda_ppo", *,
                 precision: str = "float32", log_std_init: float = -0.5,
                 target_kl: float | None = None, normalize_advantage: bool = True) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"{algorithm}: unknown precision {precision!r}; use "
                              f"{' or '.join(PRECISIONS)}")
        self.env = env
        self.setup = setup
        self.algorithm = algorithm
        self.precision = precision
        self.target_kl = target_kl
        self.normalize_advantage = normalize_advantage
        self.options: dict[str, Any] = {"log_std_init": log_std_init, "target_kl": target_kl,
                                        "normalize_advantage": normalize_advantage,
                                        "precision": precision}
        self.device = torch.device(setup.device)
        hp = setup.hyperparameters
        n_envs = int(env.num_envs)
        self.batch_size = max(1, min(hp.batch_size, hp.n_steps * n_envs))
        n_assets, n_features = (int(v) for v in env.observation_space.shape)
        market = getattr(env, "market", None)
        n_days = int(market.observations.shape[0]) if market is not None else 0
        pool = 0
        if market is not None and getattr(env, "sampling", False):
            pool = int(market.observations.shape[1])
        check_device_memory(
            str(self.device),
            lambda envs: rollout_memory_bytes(envs, hp.n_steps, n_assets, n_features,
                                              batch_size=hp.batch_size,
                                              hidden_size=hp.hidden_size, n_days=n_days,
                                              pool=pool),
            n_envs, what=f"{algorithm} with n_steps={hp.n_steps}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(setup.seed)
            self.policy = AssetSetPolicy(env.observation_space, env.action_space,
                                         lambda _: hp.learning_rate, hidden_size=hp.hidden_size,
                                         log_std_init=log_std_init)
        self.policy.to(self.device)
        self.optimizer, self._fused = _adam(self.policy, hp.learning_rate)
        self.policy.optimizer = self.optimizer
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(setup.seed))
        self._steps = 0
        self._n_updates = 0
        self._device_env: TorchPortfolioVecEnv | None = None
        self._pending_env_state: dict[str, torch.Tensor] | None = None
        self._rollout: Rollout | None = None
        self._episode_rewards: list[float] = []
        self._episode_lengths: list[int] = []
        self._started = time.monotonic()
        #: cumulative seconds of rollouts and updates (each ends with a synchronisation).
        self.timings = {"rollout": 0.0, "update": 0.0}

    # --- Agent contract -----------------------------------------------------------------

    @property
    def num_timesteps(self) -> int:
        """Environment steps the weights have learned from, counted across resumes."""
        return self._steps

    def learn(self, total_timesteps: int, monitor: TrainingMonitor) -> None:
        """Train in whole rollouts until :attr:`num_timesteps` reaches ``total_timesteps``.

        Calls ``monitor.on_step`` after every batched step, ``on_metrics`` after every
        update and ``on_iteration`` after every update another rollout follows. A stop
        inside a rollout discards it: the step count, the environments and the sampler
        return to the last update, so a checkpoint then written resumes exactly.
        """
        if total_timesteps - self._steps <= 0:
            return
        env = self.device_env()
        monitor.on_training_start(self)
        while self._steps < total_timesteps:
            snapshot = self._snapshot(env)
            started = time.perf_counter()
            rollout = self._collect(env, monitor)
            self.timings["rollout"] += time.perf_counter() - started
            if rollout is None:
                self._restore_snapshot(env, snapshot)
                break
            started = time.perf_counter()
            metrics = self._update(env, rollout)
            self.timings["update"] += time.perf_counter() - started
            monitor.on_metrics(metrics, self._steps)
            if self._steps < total_timesteps:
                monitor.on_iteration(self._steps)
        monitor.on_training_end()

    def predict(self, observation: NDArray[np.float32], deterministic: bool = True
                ) -> NDArray[np.float32]:
        """Actions for a batch of observations (the Gaussian's means when deterministic),
        clipped to ``[-1, 1]`` as stable-baselines3 clips them."""
        obs = torch.as_tensor(np.asarray(observation, dtype=np.float32), device=self.device)
        single = obs.ndim == 2
        if single:
            obs = obs[None]
        with torch.no_grad():
            means, _ = self.policy.heads(obs)
            if not deterministic:
                std = self.policy.action_log_std(int(obs.shape[1])).exp()
                means = means + std * torch.randn_like(means)
        actions: NDArray[np.float32] = np.clip(means.cpu().numpy(), -1.0, 1.0).astype(np.float32)
        return actions[0] if single else actions

    def metadata(self) -> dict[str, Any]:
        """What :meth:`save` writes into ``ploutos.json`` (before the caller's fields)."""
        return {
            "format": 1,
            "algorithm": self.algorithm,
            "num_timesteps": self._steps,
            "observation_shape": list(self.env.observation_space.shape or ()),
            "hyperparameters": attrs.asdict(self.setup.hyperparameters),
            "algorithm_options": dict(self.options),
        }

    def save(self, path: Path, metadata: Mapping[str, Any]) -> None:
        """Write weights, optimiser, sampler and environment state, and ``ploutos.json``,
        into one zip, atomically."""
        training: dict[str, torch.Tensor] = {
            "generator": self.generator.get_state(),
            "n_updates": torch.tensor(self._n_updates),
            "device_is_cuda": torch.tensor(self.device.type == "cuda"),
        }
        env_state = (self._device_env.state_dict() if self._device_env is not None
                     else self._pending_env_state)
        if env_state is not None:
            training.update({f"env.{key}": value for key, value in env_state.items()})
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(POLICY_MEMBER, _tensor_bytes(_to_cpu(self.policy.state_dict())))
            archive.writestr(OPTIMIZER_MEMBER,
                             _tensor_bytes(_to_cpu(self.optimizer.state_dict())))
            archive.writestr(STATE_MEMBER, _tensor_bytes(training))
            archive.writestr(METADATA_MEMBER, json.dumps({**self.metadata(), **metadata},
                                                         default=str, indent=2))

    def restore(self, path: str | Path) -> dict[str, Any]:
        """Load weights, optimiser, step count and (when present and on the same kind of
        device) the sampler's and environments' state from a file this algorithm wrote.

        :raises ModelError: for a file of another algorithm or policy, or a damaged one.
        """
        resolved, metadata = read_own_metadata(path, self.algorithm)
        state = read_state_dict(resolved)
        check_compatible(resolved, self.policy.state_dict(), state)
        self.policy.load_state_dict(state, strict=True)
        optimizer = _read_member(resolved, OPTIMIZER_MEMBER)
        if optimizer is not None:
            try:
                self.optimizer.load_state_dict(optimizer)
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise ModelError(f"{resolved}: its optimiser state does not fit this policy "
                                 f"({first_line(exc)})") from exc
            for group in self.optimizer.param_groups:  # this device's implementation
                group["fused"], group["foreach"], group["capturable"] = self._fused, None, False
        training = read_state_dict(resolved, STATE_MEMBER) if \
            _has_member(resolved, STATE_MEMBER) else {}
        self._restore_training_state(training)
        self._steps = int(metadata.get("num_timesteps", 0))
        return metadata

    def transfer_from(self, path: Path, only: Sequence[str] = ()) -> TransferReport:
        """Copy policy weights from any model file of the asset-set policy (``ppo``,
        ``a2c``, ``cuda_ppo``): every tensor, or those named by ``only``'s prefixes.

        :raises ModelError: when the file does not fit.
        """
        return transfer_weights(self.policy, path, only)

    def set_trainable(self, prefixes: Sequence[str], trainable: bool) -> int:
        """Train or fix the policy tensors named by ``prefixes``; see
        :func:`~ploutos_core.agents.sb3_agent.set_requires_grad`."""
        return set_requires_grad(self.policy, prefixes, trainable)

    def set_environment(self, env: Any) -> None:
        """Train on another environment with the same spaces from now on.

        :raises ConfigError: for one this agent cannot step on its device.
        """
        self._device_env = self._to_device(env)
        self.env = env

    # --- the device environment -------------------------------------------------------

    def device_env(self) -> TorchPortfolioVecEnv:
        """The environment on the device (built from :attr:`env` on first use)."""
        if self._device_env is None:
            self._device_env = self._to_device(self.env)
            if self._pending_env_state is not None:
                self._device_env.load_state_dict(self._pending_env_state)
                self._pending_env_state = None
        return self._device_env

    def _to_device(self, env: Any) -> TorchPortfolioVecEnv:
        if isinstance(env, TorchPortfolioVecEnv):
            if not _same_device(env.device, self.device):
                raise ConfigError(f"{self.algorithm}: the environment lives on {env.device}, "
                                  f"the agent on {self.device}; build both for one --device")
            return env
        if isinstance(env, PortfolioVecEnv):
            return TorchPortfolioVecEnv.from_numpy(env, self.device, seed=self.setup.seed)
        raise ConfigError(f"{self.algorithm} steps the portfolio environment on the device, "
                          f"but the stage's env builder made a {type(env).__name__}; use "
                          f"env_builder = \"portfolio\" or \"torch_portfolio\"")

    def _restore_training_state(self, training: Mapping[str, torch.Tensor]) -> None:
        if "n_updates" in training:
            self._n_updates = int(training["n_updates"])
        same_kind = bool(training.get("device_is_cuda", torch.tensor(False))) == \
            (self.device.type == "cuda")
        if not same_kind:  # another device's random streams: continue with fresh ones
            return
        if "generator" in training:
            self.generator.set_state(training["generator"])
        env_state = {key.removeprefix("env."): value for key, value in training.items()
                     if key.startswith("env.")}
        if not env_state:
            return
        if self._device_env is not None:
            self._device_env.load_state_dict(env_state)
        else:
            self._pending_env_state = env_state

    def _snapshot(self, env: TorchPortfolioVecEnv) -> dict[str, Any]:
        # References suffice: the environment replaces its state tensors, never writes
        # into them.
        return {"env": {name: getattr(env, name) for name in STATE_FIELDS},
                "env_generator": env.generator.get_state(),
                "generator": self.generator.get_state(), "steps": self._steps}

    def _restore_snapshot(self, env: TorchPortfolioVecEnv, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot["env"].items():
            setattr(env, name, value)
        env.generator.set_state(snapshot["env_generator"])
        self.generator.set_state(snapshot["generator"])
        self._steps = snapshot["steps"]

    # --- rollout and update -----------------------------------------------------------

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision == "bfloat16" and self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield

    def _heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            means, values = self.policy.heads(obs)
        return means.float(), values.float().flatten()

    def _buffers(self, n_steps: int, n_envs: int, n_assets: int, sampling: bool = False
                 ) -> Rollout:
        if self._rollout is None or self._rollout.shape != (n_steps, n_envs) or \
                int(self._rollout.weights.shape[-1]) != n_assets + 1 or \
                (self._rollout.assets is not None) != sampling:
            self._rollout = None  # free the old buffers before allocating new ones
            self._rollout = Rollout.allocate(n_steps, n_envs, n_assets, self.device, sampling)
        return self._rollout

    def _collect(self, env: TorchPortfolioVecEnv, monitor: TrainingMonitor) -> Rollout | None:
        """Fill the rollout buffers; ``None`` when the monitor stopped training."""
        hp = self.setup.hyperparameters
        n_steps, n_envs, n_assets = hp.n_steps, env.num_envs, env.n_assets
        buffers = self._buffers(n_steps, n_envs, n_assets, env.sampling)
        with torch.no_grad():
            log_std = self.policy.action_log_std(n_assets)
            std = log_std.exp()
            for t in range(n_steps):
                day, weights, assets = env.day, env.weights, env.assets
                means, values = self._heads(env.observe(day, weights, assets))
                noise = torch.randn(means.shape, generator=self.generator, device=self.device)
                actions = means + std * noise
                buffers.day[t] = day
                buffers.weights[t] = weights
                if buffers.assets is not None:
                    buffers.assets[t] = assets
                buffers.actions[t] = actions
                buffers.log_prob[t] = gaussian_log_prob(actions, means, log_std)
                buffers.values[t] = values
                step = env.step_tensors(actions.clamp(-1.0, 1.0))
                buffers.rewards[t] = step.reward
                buffers.dones[t] = step.done
                buffers.next_weights[t] = step.next_weights
                buffers.episodes[t] = torch.stack(
                    [step.episode_value, step.episode_sharpe, step.episode_reward,
                     step.episode_length.to(torch.float64)], dim=-1)
                self._steps += n_envs
                if t < n_steps - 1 and not monitor.on_step(self._steps, []):
                    return None
            last_values = self._heads(env.observation())[1]
            # The one synchronisation of a rollout: which episodes ended where.
            finished = buffers.dones.nonzero()
            if finished.shape[0]:
                rows, cols = finished[:, 0], finished[:, 1]
                terminal = env.observe(
                    buffers.day[rows, cols] + 1, buffers.next_weights[rows, cols],
                    None if buffers.assets is None else buffers.assets[rows, cols])
                # Truncated, not terminated: bootstrap with the last observation's value.
                buffers.rewards[rows, cols] += hp.gamma * self._heads(terminal)[1]
            self._advantages(buffers, last_values)
        infos = self._episode_infos(buffers, finished)
        if not monitor.on_step(self._steps, infos):
            return None
        return buffers

    def _advantages(self, buffers: Rollout, last_values: torch.Tensor) -> None:
        """GAE(λ) advantages and returns, as stable-baselines3's rollout buffer computes them."""
        hp = self.setup.hyperparameters
        not_done = 1.0 - buffers.dones.to(torch.float32)
        gae = torch.zeros_like(last_values)
        next_values = last_values
        for t in reversed(range(buffers.shape[0])):
            delta = buffers.rewards[t] + hp.gamma * next_values * not_done[t] - buffers.values[t]
            gae = delta + hp.gamma * hp.gae_lambda * not_done[t] * gae
            buffers.advantages[t] = gae
            next_values = buffers.values[t]
        torch.add(buffers.advantages, buffers.values, out=buffers.returns)

    def _episode_infos(self, buffers: Rollout, finished: torch.Tensor) -> list[dict[str, Any]]:
        """The info dicts of the episodes that ended in the rollout (one host copy)."""
        if not finished.shape[0]:
            self._episode_rewards, self._episode_lengths = [], []
            return []
        stats = buffers.episodes[finished[:, 0], finished[:, 1]].cpu().numpy()
        elapsed = round(time.monotonic() - self._started, 6)
        self._episode_rewards = [float(r) for r in stats[:, 2]]
        self._episode_lengths = [int(n) for n in stats[:, 3]]
        return [{"episode": {"r": float(reward), "l": int(length), "t": elapsed},
                 "portfolio_value": float(value), "episode_sharpe": float(sharpe),
                 "is_success": bool(value > 1.0), "TimeLimit.truncated": True}
                for value, sharpe, reward, length in stats]

    def _update(self, env: TorchPortfolioVecEnv, buffers: Rollout) -> dict[str, float]:
        """``n_epochs`` passes of shuffled minibatches; the statistics of the update."""
        hp = self.setup.hyperparameters
        n_steps, n_envs = buffers.shape
        total = n_steps * n_envs
        day = buffers.day.reshape(total)
        weights = buffers.weights.reshape(total, -1)
        assets = None if buffers.assets is None else buffers.assets.reshape(total, -1)
        actions = buffers.actions.reshape(total, -1)
        old_log_prob = buffers.log_prob.reshape(total)
        advantages = buffers.advantages.reshape(total)
        returns = buffers.returns.reshape(total)
        parameters = list(self.policy.parameters())
        sums = torch.zeros(6, device=self.device)
        batches = epochs = 0
        stopped_early = False
        for _ in range(hp.n_epochs):
            order = torch.randperm(total, generator=self.generator, device=self.device)
            for start in range(0, total, self.batch_size):
                index = order[start:start + self.batch_size]
                means, values = self._heads(env.observe(
                    day[index], weights[index], None if assets is None else assets[index]))
                log_std = self.policy.action_log_std(env.n_assets)
                log_prob = gaussian_log_prob(actions[index], means, log_std)
                entropy = (0.5 + _LOG_SQRT_2PI + log_std).sum()
                advantage = advantages[index]
                if self.normalize_advantage and advantage.shape[0] > 1:
                    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                log_ratio = log_prob - old_log_prob[index]
                ratio = torch.exp(log_ratio)
                policy_loss = -torch.min(
                    advantage * ratio,
                    advantage * ratio.clamp(1.0 - hp.clip_range, 1.0 + hp.clip_range)).mean()
                value_loss = functional.mse_loss(returns[index], values)
                loss = policy_loss - hp.ent_coef * entropy + hp.vf_coef * value_loss
                with torch.no_grad():
                    approx_kl = ((ratio - 1.0) - log_ratio).mean()
                    sums += torch.stack([
                        policy_loss, value_loss, entropy, approx_kl,
                        ((ratio - 1.0).abs() > hp.clip_range).float().mean(), loss])
                batches += 1
                if self.target_kl is not None and float(approx_kl) > 1.5 * self.target_kl:
                    stopped_early = True  # as stable-baselines3: before this step
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(parameters, hp.max_grad_norm)
                self.optimizer.step()
            epochs += 1
            if stopped_early:
                break
        self._n_updates += epochs
        with torch.no_grad():
            variance = returns.var(unbiased=False)
            explained = 1.0 - (returns - buffers.values.reshape(total)).var(unbiased=False) \
                / variance
            std = self.policy.action_log_std(env.n_assets).exp().mean()
            numbers = torch.cat([sums / max(batches, 1), torch.stack([
                torch.where(variance > 0, explained, torch.nan), std])]).tolist()  # sync
        policy_loss_, value_loss_, entropy_, kl, clipped, loss_, explained_, std_ = numbers
        metrics = {
            "train/policy_loss": policy_loss_, "train/value_loss": value_loss_,
            "train/entropy": entropy_, "train/approx_kl": kl, "train/clip_fraction": clipped,
            "train/loss": loss_, "train/explained_variance": explained_, "train/std": std_,
            "train/learning_rate": float(self.optimizer.param_groups[0]["lr"]),
            "train/n_updates": float(self._n_updates),
        }
        if self._episode_rewards:
            metrics["rollout/ep_rew_mean"] = float(np.mean(self._episode_rewards))
            metrics["rollout/ep_len_mean"] = float(np.mean(self._episode_lengths))
        return metrics


def _adam(policy: torch.nn.Module, learning_rate: float
          ) -> tuple[torch.optim.Adam, bool | None]:
    """Adam as stable-baselines3 configures it (``eps=1e-5``), fused into one kernel where
    torch can (CUDA; CPUs since torch 2.4: 3-4× faster steps for the many small tensors of
    this policy), else torch's default implementation."""
    try:
        return torch.optim.Adam(policy.parameters(), lr=learning_rate, eps=1e-5,
                                fused=True), True
    except RuntimeError:
        return torch.optim.Adam(policy.parameters(), lr=learning_rate, eps=1e-5), None


def _has_member(path: Path, member: str) -> bool:
    with open_archive(path) as archive:
        return member in archive.namelist()
