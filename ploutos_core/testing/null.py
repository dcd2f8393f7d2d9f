"""A torch-free ``null`` algorithm for tests where training is not what is checked.

Its agent always holds the neutral action (the benchmark, for ``tilt`` stages),
steps the environment as an on-policy algorithm would (rollouts of ``n_steps``
batched steps, then an "update"), reports every step and update to the monitor,
and saves small model files the core reads like any other. Register it in a test::

    from ploutos_core import get_plugin_manager
    from ploutos_core.testing.null import NullPlugin

    pm = get_plugin_manager(plugins=[("null", NullPlugin())])
    # ploutos run stage … --algorithm null, or a stage with algorithm = "null"
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import (
    Agent,
    Algorithm,
    TrainingMonitor,
    TrainingSetup,
    TransferReport,
)
from ploutos_core.agents.model_files import METADATA_MEMBER, read_metadata, resolve_model_path
from ploutos_core.errors import ModelError
from ploutos_core.hookspecs import hookimpl
from ploutos_core.pluginmanager.registry import Registrar
from ploutos_core.runfiles.atomic import atomic_path

NAME = "null"


class NullAgent(Agent):
    """Holds the neutral action; "trains" by stepping the environment.

    :param env: the batched environment (SB3 ``VecEnv`` interface).
    :param setup: hyperparameters (``n_steps`` per rollout), seed, device.
    """

    def __init__(self, env: Any, setup: TrainingSetup) -> None:
        self.env = env
        self.setup = setup
        self.steps = 0

    @property
    def num_timesteps(self) -> int:
        """Environment steps taken so far."""
        return self.steps

    def learn(self, total_timesteps: int, monitor: TrainingMonitor) -> None:
        """Step until ``total_timesteps``, one "update" after every rollout."""
        monitor.on_training_start(self)
        n_envs = self.env.num_envs
        rollout = max(1, self.setup.hyperparameters.n_steps) * n_envs
        action = np.zeros((n_envs, *self.env.action_space.shape), dtype=np.float32)
        self.env.reset()
        stopped = False
        while self.steps < total_timesteps and not stopped:
            done_in_rollout = 0
            while done_in_rollout < rollout:
                _, _, _, infos = self.env.step(action)
                self.steps += n_envs
                done_in_rollout += n_envs
                if not monitor.on_step(self.steps, list(infos)):
                    stopped = True
                    break
            if stopped:
                self.steps -= done_in_rollout  # a partial rollout is never learned from
                break
            monitor.on_metrics({"train/policy_loss": 0.0, "train/value_loss": 0.0,
                                "train/entropy": 0.0, "train/approx_kl": 0.0,
                                "train/clip_fraction": 0.0}, self.steps)
            if self.steps < total_timesteps:
                monitor.on_iteration(self.steps)
        monitor.on_training_end()

    def predict(self, observation: NDArray[np.float32], deterministic: bool = True
                ) -> NDArray[np.float32]:
        """The neutral action for every observation of the batch."""
        batch = np.asarray(observation).shape[0]
        return np.zeros((batch, *self.env.action_space.shape), dtype=np.float32)

    def save(self, path: Path, metadata: Mapping[str, Any]) -> None:
        """A zip holding ``ploutos.json`` only (there are no weights)."""
        record = {"format": 1, "algorithm": NAME, "num_timesteps": self.steps,
                  "observation_shape": list(self.env.observation_space.shape), **metadata}
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(record, default=str))

    def restore(self, path: Path) -> None:
        """Take the step count of a file this algorithm wrote.

        :raises ModelError: for a file of another algorithm.
        """
        metadata = read_metadata(path)
        if metadata.get("algorithm") != NAME:
            raise ModelError(f"{path} was not written by the null algorithm")
        self.steps = int(metadata.get("num_timesteps", 0))

    def set_environment(self, env: Any) -> None:
        """Step ``env`` from now on."""
        self.env = env

    def transfer_from(self, path: Path) -> TransferReport:
        """Nothing to copy; checks that the file is a readable model file."""
        return TransferReport(source=resolve_model_path(path), copied=0, total=0)


class NullAlgorithm(Algorithm):
    """The ``null`` algorithm: no network, the neutral action, instant "training"."""

    name = NAME
    description = "no network: holds the neutral action (for tests; never for results)"
    supports_transfer = True

    def build(self, env: Any, setup: TrainingSetup) -> Agent:
        """A fresh null agent."""
        return NullAgent(env, setup)

    def load(self, path: Path, env: Any, setup: TrainingSetup) -> Agent:
        """A null agent at the step count of ``path``."""
        agent = NullAgent(env, setup)
        agent.restore(resolve_model_path(path))
        return agent


class NullPlugin:
    """Registers :class:`NullAlgorithm`:
    ``get_plugin_manager(plugins=[("null", NullPlugin())])``."""

    @hookimpl
    def ploutos_register_algorithms(self, register: Registrar[Algorithm]) -> None:
        """Register the null algorithm."""
        register(NullAlgorithm())
