"""A torch-free ``probe`` algorithm and a trading stage, shared by the issue-12 tests.

The probe's action is a fixed function of its observation (the features and the
weights it holds), so its decisions depend on everything a trained policy's do,
while loading and predicting cost nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ploutos_core import (
    DateRange,
    EnvSettings,
    Registry,
    Splits,
    StageSpec,
    TrainingSetup,
    TransferReport,
    get_plugin_manager,
    hookimpl,
    read_metadata,
    resolve_model_path,
)
from ploutos_core.agents.model_files import METADATA_MEMBER
from ploutos_core.runfiles.atomic import atomic_path
from ploutos_core.testing import tiny_stage
from ploutos_core.testing.null import NullAgent, NullAlgorithm

PROBE = "probe"


class ProbeAgent(NullAgent):
    """Acts on its observation: asset scores from the features, the held weights and a
    ``memory``, a digest of every observation and reward it trained on (so a model
    changes exactly when its training data change)."""

    def __init__(self, env: Any, setup: TrainingSetup) -> None:
        super().__init__(env, setup)
        self.memory = "0"

    @property
    def bias(self) -> float:
        return int(self.memory[:6], 16) / 0xFFFFFF

    def learn(self, total_timesteps: int, monitor: Any) -> None:
        monitor.on_training_start(self)
        n_envs = self.env.num_envs
        rollout = max(1, self.setup.hyperparameters.n_steps) * n_envs
        digest = hashlib.sha256(self.memory.encode())
        observation = self.env.reset()
        while self.steps < total_timesteps:
            observation, rewards, _, infos = self.env.step(self.predict(observation))
            digest.update(np.asarray(observation, dtype=np.float32).tobytes())
            digest.update(np.asarray(rewards, dtype=np.float32).tobytes())
            self.memory = digest.hexdigest()[:16]  # checkpoints may be written at any update
            self.steps += n_envs
            if not monitor.on_step(self.steps, list(infos)):
                break
            if self.steps % rollout == 0:
                monitor.on_iteration(self.steps)
        monitor.on_training_end()

    def predict(self, observation: NDArray[np.float32], deterministic: bool = True
                ) -> NDArray[np.float32]:
        obs = np.asarray(observation, dtype=np.float64)
        features, held, cash = obs[..., :-2], obs[..., -2], obs[..., 0, -1]
        assets = np.tanh(2.0 * features.mean(axis=-1) - 1.5 * held + self.bias - 0.5)
        return np.concatenate([assets, np.tanh(0.3 * cash - 0.8)[:, None]], axis=1).astype(
            np.float32)

    def save(self, path: Path, metadata: Mapping[str, Any]) -> None:
        record = {"format": 1, "algorithm": PROBE, "num_timesteps": self.steps,
                  "memory": self.memory,
                  "observation_shape": list(self.env.observation_space.shape), **metadata}
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(record, default=str))

    def restore(self, path: Path) -> None:
        metadata = read_metadata(path)
        self.steps = int(metadata.get("num_timesteps", 0))
        self.memory = str(metadata.get("memory", "0"))

    def transfer_from(self, path: Path) -> TransferReport:
        self.memory = str(read_metadata(path).get("memory", "0"))
        return TransferReport(source=resolve_model_path(path), copied=1, total=1)


class ProbeAlgorithm(NullAlgorithm):
    name = PROBE
    description = "acts on its observation (tests only)"

    def build(self, env: Any, setup: TrainingSetup) -> ProbeAgent:
        return ProbeAgent(env, setup)

    def load(self, path: Path, env: Any, setup: TrainingSetup) -> ProbeAgent:
        agent = ProbeAgent(env, setup)
        agent.restore(path)
        return agent


def trading_stage(name: str = "trader", tickers: tuple[str, ...] = ("AAA", "BBB"),
                  **changes: Any) -> StageSpec:
    """The tiny stage with the turnover rule on (smoothed targets, a no-trade band), one
    year of training (2012) and a short warm-up, so each load is small."""
    settings = EnvSettings(episode_length=64, window=4, target_smoothing=0.5,
                           no_trade_band=0.03, warmup_days=200)
    splits = Splits(train=DateRange(dt.date(2012, 1, 1), dt.date(2012, 12, 31)),
                    validation=DateRange(dt.date(2013, 1, 1), dt.date(2013, 12, 31)),
                    test=DateRange(dt.date(2014, 1, 1), dt.date(2014, 12, 31)))
    return tiny_stage(name, tickers=tickers,
                      **{"algorithm": PROBE, "env": settings, "splits": splits, **changes})


class TradingPlugin:
    """Registers the probe algorithm and the given stages."""

    def __init__(self, *stages: StageSpec) -> None:
        self.stages = stages or (trading_stage(),)

    @hookimpl
    def ploutos_register_algorithms(self, register: Any) -> None:
        register(ProbeAlgorithm())

    @hookimpl
    def ploutos_register_stages(self, register: Any) -> None:
        for stage in self.stages:
            register(stage)


def trading_pm(*stages: StageSpec) -> Any:
    """A fresh plugin manager with the probe algorithm and ``stages``."""
    return get_plugin_manager(plugins=[("trading-test", TradingPlugin(*stages))])


def save_probe_model(registry: Registry, stage: StageSpec, path: Path, steps: int = 3) -> Path:
    """A probe model file of ``stage`` (its observation shape recorded)."""
    from ploutos_core.data.stage_data import DataOptions, load_stage_panel
    from ploutos_core.evaluation.evaluate import build_backtest_env

    panel = load_stage_panel(registry.data_source("synthetic"), stage,
                             DataOptions(source="synthetic"))
    env = build_backtest_env(registry, stage, panel, "validation")
    agent = ProbeAlgorithm().build(env, TrainingSetup(hyperparameters=stage.hyperparameters))
    agent.steps = steps
    agent.memory = f"{steps:016x}"
    agent.save(path, {"stage": stage.name, "tickers": list(stage.tickers)})
    return path


def write_csv_prices(directory: Path, tickers: tuple[str, ...], end: str) -> Path:
    """Synthetic prices (seed 0) of ``tickers`` through ``end`` as ``TICKER.csv`` files."""
    from ploutos_plugins.synthetic_source import synthetic_frame

    directory.mkdir(parents=True, exist_ok=True)
    for ticker in tickers:
        frame = synthetic_frame(ticker, 0).loc["2008-01-01":end]
        frame.index.name = "Date"
        frame.rename(columns=str.title).to_csv(directory / f"{ticker}.csv")
    return directory


def as_day(value: Any) -> dt.date:
    """A pandas/numpy date → ``datetime.date``."""
    return pd.Timestamp(value).date()
