"""The algorithm contract: trainers that build, train, save, load and transfer a policy."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import Hyperparameters
from ploutos_core.errors import ConfigError

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


@attrs.frozen
class TrainingSetup:
    """How to build an agent.

    :param hyperparameters: effective hyperparameters (after tuning and clamping).
    :param seed: seed of the network initialisation and the rollout sampling.
    :param device: resolved torch device, ``cpu`` or ``cuda``.
    :param tensorboard_dir: where the algorithm may write its own TensorBoard
        events, or ``None``.
    :param options: the algorithm's own settings from ``[stage.algorithm_options]``, as
        :meth:`Algorithm.parse_options` structured them (``None`` for an algorithm that
        declares none).
    """

    hyperparameters: Hyperparameters
    seed: int = 0
    device: str = "cpu"
    tensorboard_dir: Path | None = None
    options: Any = None


@attrs.frozen
class TransferReport:
    """What :meth:`Agent.transfer_from` copied.

    :param source: the model file the weights came from.
    :param copied: number of tensors copied.
    :param total: number of tensors in the receiving policy.
    """

    source: Path
    copied: int
    total: int

    def __str__(self) -> str:
        return f"transferred {self.copied}/{self.total} tensors from {self.source}"


class TrainingMonitor(abc.ABC):
    """Callbacks the runner gives :meth:`Agent.learn`; the agent calls them.

    An algorithm calls :meth:`on_step` after every batched environment step,
    :meth:`on_iteration` after every policy update (a consistent point at which
    the runner may checkpoint or evaluate), and :meth:`on_metrics` whenever it
    has training statistics to report.
    """

    def on_training_start(self, agent: Agent) -> None:  # noqa: B027 - optional hook
        """Called once before the first step."""

    @abc.abstractmethod
    def on_step(self, num_timesteps: int, infos: list[dict[str, Any]]) -> bool:
        """Called after each batched step; return ``False`` to stop training.

        :param num_timesteps: total environment steps so far (all envs together).
        :param infos: the environment's info dicts of this step.
        """

    def on_iteration(self, num_timesteps: int) -> None:  # noqa: B027 - optional hook
        """Called after each policy update, with the steps the weights have learned from."""

    def on_metrics(self, metrics: Mapping[str, float], num_timesteps: int) -> None:  # noqa: B027
        """Training statistics (losses, entropy, KL, …) at ``num_timesteps``."""

    def on_training_end(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last step."""


class Agent(abc.ABC):
    """A policy being trained or evaluated, as returned by an :class:`Algorithm`."""

    @property
    @abc.abstractmethod
    def num_timesteps(self) -> int:
        """Environment steps trained so far, counted across resumes."""

    @abc.abstractmethod
    def learn(self, total_timesteps: int, monitor: TrainingMonitor) -> None:
        """Train until :attr:`num_timesteps` reaches ``total_timesteps``."""

    @abc.abstractmethod
    def predict(self, observation: NDArray[np.float32], deterministic: bool = True
                ) -> NDArray[np.float32]:
        """Actions for a batch of observations."""

    def reset_state(self) -> None:  # noqa: B027 - optional hook
        """Forget any memory of earlier observations (recurrent policies).

        Backtests call it before each episode; stateless agents need not override it.
        """

    @abc.abstractmethod
    def save(self, path: Path, metadata: Mapping[str, Any]) -> None:
        """Write a complete checkpoint (weights, optimiser, step count, ``metadata``) atomically."""

    @abc.abstractmethod
    def transfer_from(self, path: Path) -> TransferReport:
        """Load policy weights only from a model file; every tensor must match.

        Agents that can copy part of a policy accept ``only=`` (a sequence of tensor-name
        prefixes); the core passes it only for a stage with ``[stage.transfer]
        parameters``.

        :raises ploutos_core.errors.ModelError: when the file is missing, corrupt or
            its tensors do not fit this policy.
        """

    def set_trainable(self, prefixes: Sequence[str], trainable: bool) -> int:
        """Let the optimiser update the policy tensors whose names start with one of
        ``prefixes``, or keep them fixed (``[stage.transfer] freeze_fraction``); return how
        many tensors matched.

        :raises NotImplementedError: for agents that cannot (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot freeze policy tensors")

    def set_environment(self, env: VecEnv) -> None:
        """Switch to another environment with the same spaces and number of environments
        (a stage with a ``[stage.universe]`` trains on it, then on its own tickers).

        :raises NotImplementedError: for agents that cannot (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot switch environments")


class Algorithm(abc.ABC):
    """A named trainer, registered by a plugin.

    :cvar supports_transfer: whether a policy trained on one asset count loads
        into an environment with another; the CLI refuses a curriculum with
        ``--algorithm`` set to one that cannot, before training starts.
    :cvar supports_universe: whether its agents train on a stage's ``[stage.universe]``
        (sub-universes sampled by the NumPy ``portfolio`` env, then the stage's tickers,
        through :meth:`Agent.set_environment`); a run with a universe stage and an
        algorithm that cannot is refused before training starts.
    :cvar supports_freeze: whether its agents keep tensors fixed on request
        (:meth:`Agent.set_trainable`, for ``[stage.transfer] freeze_fraction``); a run in
        which such a stage starts from another stage's model is refused before training
        starts when it is False.
    """

    #: registered name, used by ``--algorithm`` and a stage's ``algorithm`` field.
    name: str = ""
    #: one line for listings.
    description: str = ""
    supports_transfer: bool = True
    supports_universe: bool = True
    supports_freeze: bool = False
    #: an attrs class of the algorithm's own settings (``[stage.algorithm_options]``, e.g.
    #: SAC's ``tau``), validated by its field validators; ``None``: the algorithm takes none.
    options_type: type | None = None

    def parse_options(self, options: Mapping[str, Any]) -> Any:
        """Check and structure a stage's ``[stage.algorithm_options]`` for this algorithm.

        :returns: an instance of :attr:`options_type` (its defaults for an empty table), or
            ``None`` when the algorithm takes no options.
        :raises ConfigError: listing every unknown key and bad value as
            ``"what @ algorithm_options.key"``.
        """
        from ploutos_core.config.stage import structure_options

        if self.options_type is None:
            if options:
                raise ConfigError(f"algorithm {self.name!r} takes no [stage.algorithm_options]; "
                                  f"got {', '.join(sorted(options))}")
            return None
        try:
            return structure_options(dict(options), self.options_type, "algorithm_options")
        except ConfigError as exc:
            raise ConfigError(f"algorithm {self.name!r}: {exc}") from exc

    @abc.abstractmethod
    def build(self, env: VecEnv, setup: TrainingSetup) -> Agent:
        """A fresh, randomly initialised agent for ``env``."""

    @abc.abstractmethod
    def load(self, path: Path, env: VecEnv, setup: TrainingSetup) -> Agent:
        """An agent restored from a checkpoint written by :meth:`Agent.save`, to continue
        training or to evaluate.

        :raises ploutos_core.errors.ModelError: when the file is missing, corrupt or
            was written by another algorithm or for other spaces.
        """
