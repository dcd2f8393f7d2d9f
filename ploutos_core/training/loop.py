"""Train one agent to its step budget: checkpoints, loggers, progress bar, periodic
evaluation and a polite stop on SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ploutos_core.agents.contract import Agent, TrainingMonitor
from ploutos_core.errors import ConfigError, TrainingInterrupted
from ploutos_core.tracking.session import open_loggers
from ploutos_core.training.context import StageContext
from ploutos_core.training.interrupts import StopFlag, stop_on_signals
from ploutos_core.training.monitor import StageMonitor
from ploutos_core.training.records import Checkpoint, StageRun
from ploutos_core.training.selection import periodic_evaluator


def freezes_transfer(ctx: StageContext, start_from: Path | None) -> bool:
    """Whether the tensors copied from ``start_from`` stay fixed for a while
    (``[stage.transfer] freeze_fraction``): only when they come from another stage's
    model — a model of this very stage is continued whole, and a fresh start copies
    nothing."""
    from ploutos_core.agents.model_files import continues_itself

    return bool(ctx.stage.transfer.freeze_fraction) and start_from is not None and \
        not continues_itself(start_from, ctx.stage.name)


@attrs.frozen
class Phases:
    """Where training changes what it trains: on the stage's universe before
    ``universe_until``, with the transferred tensors fixed before ``frozen_until``, to
    ``total`` steps in all."""

    total: int
    universe_until: int = 0
    frozen_until: int = 0

    @classmethod
    def of_stage(cls, ctx: StageContext, run: StageRun) -> Phases:
        """The phases of the stage's own training."""
        return cls.scaled(ctx, run.start_from, run.timesteps)

    @classmethod
    def scaled(cls, ctx: StageContext, start_from: Path | None, total: int) -> Phases:
        """The stage's phases over a run of ``total`` steps that starts from
        ``start_from``: the stage's own, or a tuning trial's, which trains the way the
        stage will."""
        fraction = ctx.stage.universe.fraction if ctx.universe is not None else 0.0
        freeze = ctx.stage.transfer.freeze_fraction if freezes_transfer(ctx, start_from) \
            else 0.0
        return cls(total=total, universe_until=round(fraction * total),
                   frozen_until=round(freeze * total))


def learn_in_phases(ctx: StageContext, agent: Agent, phases: Phases,
                    monitor: TrainingMonitor, stopped: Callable[[], bool],
                    env: Any) -> None:
    """Train on the stage's universe up to ``phases.universe_until`` (when the agent has
    not got that far), then on the stage's own tickers; the tensors copied from another
    stage stay fixed up to ``phases.frozen_until``. Each phase starts where the agent is,
    so a resumed run picks up in the phase it stopped in. Returns early once
    ``stopped()``; the agent is left on ``env`` with every tensor trainable."""
    universe_until, frozen_until = phases.universe_until, phases.frozen_until
    name, start = ctx.stage.name, agent.num_timesteps
    if universe_until and start < universe_until:
        ctx.run.echo(f"{name}: {universe_until:,} steps on sub-universes of "
                     f"{len(ctx.universe.panels) if ctx.universe else 0} tickers, then "
                     f"{phases.total - universe_until:,} on {','.join(ctx.stage.tickers)}")
    frozen = ctx.stage.transfer.parameters
    if frozen_until and start < frozen_until:
        ctx.run.echo(f"{name}: the transferred {', '.join(frozen)} stay fixed for the first "
                     f"{frozen_until:,} steps")
    ends = sorted({end for end in (universe_until, frozen_until) if start < end < phases.total}
                  | {phases.total})
    universe_env: Any = None
    on_universe = freezing = False
    try:
        for end in ends:
            if (agent.num_timesteps < universe_until) != on_universe:
                on_universe = not on_universe
                if on_universe and universe_env is None:
                    from ploutos_core.training.builder import build_universe_env

                    universe_env = build_universe_env(ctx)
                switch_environment(agent, universe_env if on_universe else env)
            if (agent.num_timesteps < frozen_until) != freezing:
                freezing = not freezing
                set_trainable(agent, frozen, not freezing)
            agent.learn(end, monitor)
            if stopped():
                return
    finally:
        if on_universe:
            switch_environment(agent, env)
        if freezing:
            set_trainable(agent, frozen, True)
        if universe_env is not None:
            universe_env.close()


def set_trainable(agent: Agent, prefixes: tuple[str, ...], trainable: bool) -> None:
    """``agent.set_trainable(prefixes, trainable)``, refusing agents that cannot freeze.

    :raises ConfigError: naming the agent's class.
    """
    try:
        agent.set_trainable(prefixes, trainable)
    except NotImplementedError as exc:
        raise ConfigError(f"the algorithm's agent ({type(agent).__name__}) cannot keep "
                          f"tensors fixed, which [stage.transfer] freeze_fraction needs; "
                          f"set it to 0 or use --algorithm ppo") from exc


def switch_environment(agent: Agent, env: Any) -> None:
    """``agent.set_environment(env)``, refusing agents that cannot switch.

    :raises ConfigError: naming the agent's algorithm.
    """
    try:
        agent.set_environment(env)
    except NotImplementedError as exc:
        raise ConfigError(f"the algorithm's agent ({type(agent).__name__}) cannot switch "
                          f"environments, which a [stage.universe] needs; remove the universe "
                          f"or use --algorithm ppo") from exc


def train_agent(ctx: StageContext, agent: Agent, run: StageRun, env: Any,
                stop: StopFlag | None = None) -> StageMonitor:
    """Train ``agent`` to ``run.timesteps`` with checkpoints and a progress bar.

    :param stop: the run's stop flag, set by SIGINT/SIGTERM (the caller installed the
        handlers); without one, handlers are installed for the training alone.

    :param env: the stage's training environment (the agent's, when it was built).

    :raises TrainingInterrupted: on a signal, after writing a checkpoint.
    """
    from tqdm import tqdm

    options, layout = ctx.options, ctx.run.layout
    name = run.stage.name
    every = options.checkpoint_freq or max(1, run.timesteps // options.checkpoints)
    loggers = open_loggers(ctx.registry, options.loggers, layout, run,
                           start_step=agent.num_timesteps)
    progress = tqdm(total=run.timesteps, initial=agent.num_timesteps, unit="step",
                    unit_scale=True, desc=name, dynamic_ncols=True,
                    disable=not options.progress, mininterval=0.5)
    metadata = run.model_metadata()
    try:
        with contextlib.nullcontext(stop) if stop is not None else stop_on_signals() as flag:
            stop = flag
            monitor = StageMonitor(
                agent=agent,
                checkpoint_path=lambda steps: layout.checkpoint(name, steps),
                checkpoint_every=every,
                save=lambda a, path: a.save(path, metadata),
                on_checkpoint=lambda path, steps: ctx.run.call_event(
                    "ploutos_on_checkpoint", run=run,
                    checkpoint=Checkpoint(path=path, num_timesteps=steps)),
                loggers=loggers,
                stop=stop,
                progress=progress,
                evaluate=periodic_evaluator(ctx, run) if ctx.eval_every else None,
                evaluate_every=ctx.eval_every,
            )
            learn_in_phases(ctx, agent, Phases.of_stage(ctx, run), monitor,
                            lambda: stop.requested, env)
    finally:
        progress.close()
        for logger in loggers:
            logger.close()
    if stop.requested:
        path = monitor.checkpoint(agent.num_timesteps)
        raise TrainingInterrupted(
            f"{name}: stopped by {stop.signal_name} at step {agent.num_timesteps:,}; "
            f"checkpoint saved to {path}; continue with the same command and --resume",
            exit_code=stop.exit_code)
    ctx.run.echo(f"{name}: trained {agent.num_timesteps:,} steps at "
                 f"{monitor.steps_per_second:,.0f} steps/s")
    return monitor
