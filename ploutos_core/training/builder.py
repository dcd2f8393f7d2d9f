"""The one place that resolves a stage and builds its environments, agents and hyperparameters.

Used by the curriculum runner, tuning trials, periodic evaluation, the comparison,
:mod:`ploutos_core.testing` and the benchmarks, so every path trains what
``ploutos run`` trains.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import Agent, TrainingSetup, TransferReport
from ploutos_core.agents.ensemble import is_ensemble, unpacked_members
from ploutos_core.agents.model_files import action_mismatch, read_metadata, resolve_model_path
from ploutos_core.config.stage import Hyperparameters, StageSpec
from ploutos_core.data.panel import Panel
from ploutos_core.data.stage_data import load_stage_panel
from ploutos_core.data.universe import load_universe
from ploutos_core.env.base import EnvRequest, Split
from ploutos_core.errors import ConfigError, PloutosWarning
from ploutos_core.evaluation.evaluate import build_backtest_env
from ploutos_core.training.context import RunContext, StageContext
from ploutos_core.training.episode_starts import episode_start_mask

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


def scaled_timesteps(stage: StageSpec, scale: float) -> int:
    """The stage's timesteps times ``scale``, at least 1."""
    return max(1, round(stage.timesteps * scale))


def fit_to_budget(hp: Hyperparameters, timesteps: int, n_envs: int) -> Hyperparameters:
    """Shorten rollouts so whole rollouts tile the step budget, and fit the batch to them.

    On-policy algorithms train in whole rollouts of ``n_steps × n_envs`` steps.
    ``n_steps`` is lowered to the smallest value that covers ``timesteps`` with
    the same number of rollouts, so a run overshoots its budget by less than
    one step per environment and rollout. At full scale this leaves ``n_steps``
    unchanged (3,000,000 steps over 4 × 512 stays 512); a smoke run of 5,000
    steps on 8 environments gets two rollouts of 313 steps instead of two of
    512 (8,192 steps). ``batch_size`` is then capped at the rollout and moved
    to a divisor of it when one lies within a factor of two, so no minibatch
    is truncated.
    """
    rollouts = max(1, math.ceil(timesteps / (hp.n_steps * n_envs)))
    n_steps = max(2, math.ceil(timesteps / (rollouts * n_envs)))
    buffer = n_steps * n_envs
    batch_size = max(2, min(hp.batch_size, buffer))
    divisor = next((size for size in range(batch_size, batch_size // 2, -1)
                    if buffer % size == 0), batch_size)
    return attrs.evolve(hp, n_steps=n_steps, batch_size=divisor)


def training_split(ctx: StageContext) -> Split:
    """``fit`` (train without the selection window) when the run selects models and the
    stage has a window, else ``train``."""
    if ctx.selects_models and ctx.stage.splits.selection is not None:
        return "fit"
    return "train"


def check_stage_data(run: RunContext, stages: Sequence[StageSpec]) -> None:
    """Load the prices of every stage of a run, and of its universe, before the first
    one trains: a missing or corrupt file of a later stage then fails in seconds, not
    after the earlier stages have trained. Each stage loads its data again when it starts
    (and shows its warnings then).

    :raises DataError: for missing or bad data of any stage.
    """
    source = run.registry.data_source(run.options.data.source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PloutosWarning)
        for stage in stages:
            load_stage_panel(source, stage, run.options.data, through="validation")
            if stage.universe.enabled:
                load_universe(source, stage, run.options.data)


def prepare_stage(run: RunContext, stage: StageSpec, position: int = 1, *,
                  panel: Panel | None = None) -> StageContext:
    """Resolve ``stage`` for ``run``: load its data through validation (never the test
    split), pick its algorithm, step budget and environment count, compute its
    episode-start mask.

    :param panel: prices already loaded for the stage (the loader is skipped).
    :raises UnknownNameError: for an unknown data source, algorithm or day filter.
    :raises DataError: for missing or bad data.
    """
    options = run.options
    source = run.registry.data_source(options.data.source)
    algorithm = run.registry.algorithm(options.algorithm or stage.algorithm)
    if panel is None:
        panel = load_stage_panel(source, stage, options.data, through="validation")
    universe = None
    if stage.universe.enabled:
        universe = load_universe(source, stage, options.data)
        skipped = "; ".join(f"{ticker} ({why})" for ticker, why in universe.skipped)
        run.echo(f"{stage.name}: training universe of {len(universe.panels)} tickers"
                 + (f"; skipped {skipped}" if skipped else ""))
    ctx = StageContext(run=run, stage=stage, position=position, panel=panel, source=source,
                       algorithm=algorithm, timesteps=scaled_timesteps(stage, options.scale),
                       n_envs=stage.environments(options.n_envs), universe=universe)
    return attrs.evolve(ctx, start_mask=_start_mask(ctx))


def _start_mask(ctx: StageContext) -> NDArray[np.bool_] | None:
    stage, panel = ctx.stage, ctx.panel
    mask = episode_start_mask(ctx.registry, stage, panel, ctx.source, ctx.options.data)
    if mask is not None:
        first, last = panel.index_range(stage.splits.get(training_split(ctx)),
                                        label="train split")
        ctx.run.echo(f"{stage.name}: day filter {stage.env.day_filter!r} allows episode "
                     f"starts on {int(mask[first:last + 1].sum()):,} of "
                     f"{last - first + 1:,} training days")
    return mask


def build_env(ctx: StageContext, split: Split | None = None, *,
              mode: Literal["train", "backtest"] = "train", n_envs: int | None = None
              ) -> VecEnv:
    """The stage's environment: training episodes over its training split by default, or
    a one-environment backtest of ``split``.

    :param split: the date range; default: :func:`training_split` for ``train`` mode.
    :param mode: ``train`` (random episode starts, automatic resets) or ``backtest``.
    :param n_envs: environments (default: the stage context's for training, 1 for backtests).
    """
    if mode == "train":
        builder = ctx.registry.env_builder(ctx.stage.env_builder)
        return builder.build(EnvRequest(
            panel=ctx.panel, stage=ctx.stage, split=split or training_split(ctx),
            n_envs=n_envs or ctx.n_envs, seed=ctx.seed, start_mask=ctx.start_mask,
            device=ctx.device))
    return build_backtest_env(ctx.registry, ctx.stage, ctx.panel, split or "validation",
                              ctx.device, n_envs=n_envs or 1)


def build_universe_env(ctx: StageContext) -> VecEnv:
    """Training episodes over the stage's universe: each samples as many tickers as the
    stage trades, from those that trade through its whole window.

    :raises ConfigError: when the stage has no universe or its env builder cannot use one.
    """
    builder = ctx.registry.env_builder(ctx.stage.env_builder)
    if ctx.universe is None or not builder.supports_universe:
        raise ConfigError(f"{ctx.stage.name}: env builder {builder.name!r} cannot train on "
                          f"a [stage.universe]; use env_builder = \"portfolio\" or remove it")
    return builder.build(EnvRequest(
        panel=ctx.panel, stage=ctx.stage, split=training_split(ctx), n_envs=ctx.n_envs,
        seed=ctx.seed, device=ctx.device, universe=ctx.universe))


def training_setup(ctx: StageContext, hyperparameters: Hyperparameters) -> TrainingSetup:
    """How the stage's agent is built: hyperparameters, seed, device, algorithm options."""
    return TrainingSetup(hyperparameters=hyperparameters, seed=ctx.seed, device=ctx.device,
                         options=ctx.algorithm.parse_options(ctx.stage.algorithm_options))


def build_agent(ctx: StageContext, env: VecEnv, hyperparameters: Hyperparameters, *,
                start_from: Path | None = None, resume_from: Path | None = None) -> Agent:
    """Resume from a checkpoint, or build a fresh agent and transfer ``start_from``'s
    weights into it.

    :raises ModelError: for a model file that is missing, corrupt or does not fit.
    """
    setup = training_setup(ctx, hyperparameters)
    if resume_from is not None:
        agent = ctx.algorithm.load(resume_from, env, setup)
        ctx.run.echo(f"resuming from {resume_from} at step {agent.num_timesteps:,}")
        return agent
    agent = ctx.algorithm.build(env, setup)
    if start_from is None:
        return agent
    metadata = read_metadata(start_from)
    # [stage.transfer] chooses what passes between stages; a model of this very stage (a
    # walk-forward fold's predecessor, `retrain`, fine-tuning) is continued whole.
    only = () if metadata.get("stage") == ctx.stage.name else ctx.stage.transfer.parameters
    mismatch = action_mismatch(start_from, metadata, ctx.stage.env, ctx.stage.name)
    if mismatch:  # fine-tuning under a new action map is allowed; it starts off wrong
        warnings.warn(f"{mismatch}; the transferred policy starts from other decisions "
                      f"and must relearn what its actions do", PloutosWarning, stacklevel=2)
    if is_ensemble(metadata):
        with unpacked_members(resolve_model_path(start_from)) as members:
            report = transfer(agent, members[0][0], only)
        ctx.run.echo(f"transferred {report.copied}/{report.total} tensors from the first "
                     f"member of the ensemble {start_from}")
    else:
        ctx.run.echo(str(transfer(agent, start_from, only)))
    return agent


def transfer(agent: Agent, path: Path, only: tuple[str, ...]) -> TransferReport:
    """``agent.transfer_from(path)``, with ``only`` when the stage copies a part.

    :raises ConfigError: when the agent cannot copy parts of a policy.
    """
    if not only:
        return agent.transfer_from(path)
    try:
        return agent.transfer_from(path, only=only)  # type: ignore[call-arg]
    except TypeError as exc:
        raise ConfigError(f"the algorithm's agent ({type(agent).__name__}) cannot copy part "
                          f"of a policy ([stage.transfer] parameters = {list(only)})") from exc


def resumed_hyperparameters(resume_from: Path) -> Hyperparameters | None:
    """The hyperparameters a checkpoint trained with, when it records them."""
    saved = read_metadata(resume_from).get("hyperparameters")
    return Hyperparameters(**saved) if saved else None
