"""Train one agent to its step budget: checkpoints, loggers, progress bar, periodic
evaluation and a polite stop on SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
from typing import Any

from ploutos_core.agents.contract import Agent
from ploutos_core.errors import ConfigError, TrainingInterrupted
from ploutos_core.tracking.session import open_loggers
from ploutos_core.training.context import StageContext
from ploutos_core.training.interrupts import StopFlag, stop_on_signals
from ploutos_core.training.monitor import StageMonitor
from ploutos_core.training.records import Checkpoint, StageRun
from ploutos_core.training.selection import periodic_evaluator


def frozen_steps(ctx: StageContext, run: StageRun) -> int:
    """Steps during which the tensors the stage copied stay fixed
    (``[stage.transfer] freeze_fraction``): none unless it starts from another stage's
    model — a model of this very stage is continued whole, and a fresh start copies
    nothing."""
    from ploutos_core.agents.model_files import continues_itself

    fraction = ctx.stage.transfer.freeze_fraction
    if not fraction or run.start_from is None or continues_itself(run.start_from,
                                                                    ctx.stage.name):
        return 0
    return round(fraction * run.timesteps)


def learn_in_phases(ctx: StageContext, agent: Agent, run: StageRun, monitor: StageMonitor,
                    stop: StopFlag, env: Any) -> None:
    """Train on the stage's universe for its first ``universe.fraction`` of steps (when it
    has one and the agent has not got that far), then on the stage's own tickers; the
    tensors copied from another stage stay fixed for the first ``transfer.freeze_fraction``
    of the steps. Each phase starts where the agent is, so a resumed run picks up in the
    phase it stopped in."""
    universe_until, frozen_until = ctx.universe_steps, frozen_steps(ctx, run)
    name, start = ctx.stage.name, agent.num_timesteps
    if universe_until and start < universe_until:
        ctx.run.echo(f"{name}: {universe_until:,} steps on sub-universes of "
                     f"{len(ctx.universe.panels) if ctx.universe else 0} tickers, then "
                     f"{run.timesteps - universe_until:,} on {','.join(ctx.stage.tickers)}")
    frozen = ctx.stage.transfer.parameters
    if frozen_until and start < frozen_until:
        ctx.run.echo(f"{name}: the transferred {', '.join(frozen)} stay fixed for the first "
                     f"{frozen_until:,} steps")
    ends = sorted({end for end in (universe_until, frozen_until) if start < end < run.timesteps}
                  | {run.timesteps})
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
            if stop.requested:
                return
    finally:
        if on_universe:
            switch_environment(agent, env)
        if freezing:
            set_trainable(agent, frozen, True)


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
            learn_in_phases(ctx, agent, run, monitor, stop, env)
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
