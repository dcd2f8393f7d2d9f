"""Evaluate a policy on a split: the agent's backtest beside baselines on the same days."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ploutos_core.agents.contract import Agent, TrainingSetup
from ploutos_core.agents.ensemble import EnsembleAgent, is_ensemble, unpacked_members
from ploutos_core.agents.model_files import check_actions_fit, read_metadata, resolve_model_path
from ploutos_core.config.stage import Hyperparameters, StageSpec
from ploutos_core.data.panel import Panel
from ploutos_core.env.actions import ActionMap
from ploutos_core.env.base import EnvRequest, Split
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import (
    EvaluationResult,
    baseline_backtests,
    evaluation_dates,
    first_and_last,
    run_agent_backtest,
)
from ploutos_core.pluginmanager.registry import Registry

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


def with_cost_multiplier(stage: StageSpec, multiplier: float) -> StageSpec:
    """``stage`` with its transaction cost multiplied (for cost-sensitivity reports)."""
    if multiplier == 1.0:
        return stage
    return attrs.evolve(stage, transaction_cost_bps=stage.transaction_cost_bps * multiplier)


def build_backtest_env(registry: Registry, stage: StageSpec, panel: Panel, split: Split,
                       device: str = "cpu", n_envs: int = 1) -> VecEnv:
    """A ``backtest``-mode env over ``split`` (one environment unless told otherwise)."""
    builder = registry.env_builder(stage.env_builder)
    return builder.build(EnvRequest(panel=panel, stage=stage, split=split, n_envs=n_envs,
                                    mode="backtest", device=device))


def evaluate_agent(agent: Agent, registry: Registry, stage: StageSpec, panel: Panel,
                   split: Split, *, model: str, risk_free_rate: float = 0.0,
                   env: VecEnv | None = None, trials: int = 1) -> EvaluationResult:
    """Backtest ``agent`` deterministically over ``split`` and compute the baselines.

    :param agent: the policy to evaluate.
    :param registry: for the stage's env builder.
    :param stage: the stage (costs are taken from it; see :func:`with_cost_multiplier`).
    :param panel: prices covering the split (and its warm-up).
    :param split: ``validation``, ``test`` or ``train`` (reported as in-sample).
    :param model: how the report names the model (usually its path).
    :param risk_free_rate: annual rate for Sharpe and Sortino.
    :param env: a backtest env to reuse (built when ``None``).
    :param trials: configurations looked at before this model was chosen (deflated Sharpe).
    """
    env = env or build_backtest_env(registry, stage, panel, split)
    backtest = run_agent_backtest(agent, env, risk_free_rate)
    baselines = baseline_backtests(panel.close, panel.tickers, backtest.days,
                                   stage.transaction_cost, risk_free_rate)
    start, end = first_and_last(panel.dates, backtest.days)
    return EvaluationResult(
        stage=stage.name, split=split, model=model, start=start, end=end,
        cost_bps=stage.transaction_cost_bps, agent=backtest, baselines=tuple(baselines),
        dates=evaluation_dates(panel.dates, backtest.days), tickers=panel.tickers,
        trials=trials,
    )


def load_for_evaluation(registry: Registry, path: Path, stage: StageSpec, env: VecEnv, *,
                        seed: int = 0, device: str = "cpu", algorithm: str | None = None
                        ) -> Agent:
    """Load a model file to backtest it, with the algorithm and hyperparameters it was
    trained with (from its ``ploutos.json``; the stage's when the file has none). An
    ensemble file loads every member and averages their target weights.

    :param algorithm: the algorithm the user named (``--algorithm``), if any.
    :raises ConfigError: when ``algorithm`` contradicts the one the file records.
    :raises ModelError: when the file is missing, corrupt or does not fit ``env``.
    """
    metadata = read_metadata(path)
    check_actions_fit(path, metadata, stage.env, stage.name)
    if is_ensemble(metadata):
        with unpacked_members(resolve_model_path(path)) as members:
            agents = [load_for_evaluation(registry, member, stage, env, seed=seed,
                                          device=device, algorithm=algorithm)
                      for member, _ in members]
        n_assets = int(env.observation_space.shape[0])  # type: ignore[index]
        return EnsembleAgent(agents, ActionMap.for_stage(stage.env, stage.benchmark, n_assets),
                             metadata)
    recorded = metadata.get("algorithm")
    if recorded and algorithm and algorithm != recorded:
        raise ConfigError(f"{path} was trained with {recorded!r}, not {algorithm!r}")
    saved = metadata.get("hyperparameters")
    chosen = registry.algorithm(algorithm or recorded or stage.algorithm)
    # The stage's algorithm options apply when the model was trained with its algorithm.
    options = stage.algorithm_options if chosen.name == stage.algorithm else {}
    setup = TrainingSetup(
        hyperparameters=Hyperparameters(**saved) if saved else stage.hyperparameters,
        seed=seed, device=device, options=chosen.parse_options(options))
    return chosen.load(path, env, setup)
