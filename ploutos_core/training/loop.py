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


def learn_in_phases(ctx: StageContext, agent: Agent, run: StageRun, monitor: StageMonitor,
                    stop: StopFlag, env: Any) -> None:
    """Train on the stage's universe for its first ``universe.fraction`` of steps (when it
    has one and the agent has not got that far), then on the stage's own tickers."""
    if ctx.universe_steps and agent.num_timesteps < ctx.universe_steps:
        from ploutos_core.training.builder import build_universe_env

        ctx.run.echo(f"{ctx.stage.name}: {ctx.universe_steps:,} steps on sub-universes of "
                     f"{len(ctx.universe.panels) if ctx.universe else 0} tickers, then "
                     f"{run.timesteps - ctx.universe_steps:,} on {','.join(ctx.stage.tickers)}")
        switch_environment(agent, build_universe_env(ctx))
        agent.learn(ctx.universe_steps, monitor)
        switch_environment(agent, env)
        if stop.requested:
            return
    agent.learn(run.timesteps, monitor)


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
