"""The training monitor of one stage: progress, checkpoints, stop requests, metrics.

It is the :class:`~ploutos_core.algorithm.TrainingMonitor` the runner hands to
an agent. Checkpoints are written only after a policy update, so the step count
a checkpoint records is exactly what its weights learned from, and a resumed
run continues with the right number of remaining steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ploutos_core.algorithm import Agent, TrainingMonitor
from ploutos_core.loggers import MetricLogger
from ploutos_core.signals import StopFlag

#: ``evaluate(agent, num_timesteps)`` returns validation metrics for logging.
PeriodicEvaluation = Callable[[Agent, int], Mapping[str, float]]


class StageMonitor(TrainingMonitor):
    """Drives checkpoints, progress output, loggers and periodic evaluation.

    :param total_timesteps: the stage's step target.
    :param checkpoint_path: ``checkpoint_path(steps)`` gives the file for a checkpoint.
    :param checkpoint_every: steps between checkpoints.
    :param save: ``save(agent, path)`` writes a checkpoint.
    :param on_checkpoint: called with ``(path, steps)`` after each checkpoint.
    :param loggers: open metric loggers.
    :param stop: set by a signal handler; training stops at the next step.
    :param progress: a ``tqdm``-like bar (``update``/``set_postfix_str``/``close``) or ``None``.
    :param evaluate: periodic validation evaluation, or ``None``.
    :param evaluate_every: steps between periodic evaluations.
    """

    def __init__(
        self,
        total_timesteps: int,
        checkpoint_path: Callable[[int], Path],
        checkpoint_every: int,
        save: Callable[[Agent, Path], None],
        on_checkpoint: Callable[[Path, int], None],
        loggers: Sequence[MetricLogger] = (),
        stop: StopFlag | None = None,
        progress: Any = None,
        evaluate: PeriodicEvaluation | None = None,
        evaluate_every: int = 0,
    ) -> None:
        self.total_timesteps = total_timesteps
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = max(1, checkpoint_every)
        self.save = save
        self.on_checkpoint = on_checkpoint
        self.loggers = list(loggers)
        self.stop = stop or StopFlag()
        self.progress = progress
        self.evaluate = evaluate
        self.evaluate_every = evaluate_every
        self.agent: Agent | None = None
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_steps = -1
        self._next_checkpoint = 0
        self._next_evaluation = 0
        self._seen_steps = 0
        self._started = time.monotonic()
        self._start_steps = 0
        self._episodes: dict[str, list[float]] = {"portfolio_value": [], "sharpe": [],
                                                  "success": []}

    # --- TrainingMonitor --------------------------------------------------------------

    def on_training_start(self, agent: Agent) -> None:
        """Remember the agent and where the step counters start (after a resume)."""
        self.agent = agent
        self._seen_steps = self._start_steps = agent.num_timesteps
        self._next_checkpoint = (agent.num_timesteps // self.checkpoint_every + 1) \
            * self.checkpoint_every
        if self.evaluate_every:
            self._next_evaluation = (agent.num_timesteps // self.evaluate_every + 1) \
                * self.evaluate_every
        self._started = time.monotonic()

    def on_step(self, num_timesteps: int, infos: list[dict[str, Any]]) -> bool:
        """Advance the progress bar, collect finished episodes, honour stop requests."""
        if self.progress is not None:
            self.progress.update(num_timesteps - self._seen_steps)
        self._seen_steps = num_timesteps
        for info in infos:
            if "episode" in info:
                self._episodes["portfolio_value"].append(float(info.get("portfolio_value", 1.0)))
                self._episodes["sharpe"].append(float(info.get("episode_sharpe", 0.0)))
                self._episodes["success"].append(float(info.get("is_success", False)))
        return not self.stop.requested

    def on_iteration(self, num_timesteps: int) -> None:
        """After an update: checkpoint and evaluate when due."""
        if num_timesteps >= self._next_checkpoint:
            self.checkpoint(num_timesteps)
            self._next_checkpoint = (num_timesteps // self.checkpoint_every + 1) \
                * self.checkpoint_every
        if self.evaluate is not None and self.evaluate_every and \
                num_timesteps >= self._next_evaluation:
            assert self.agent is not None  # set in on_training_start; not user input
            metrics = self.evaluate(self.agent, num_timesteps)
            self.write(metrics, num_timesteps)
            self._next_evaluation = (num_timesteps // self.evaluate_every + 1) \
                * self.evaluate_every

    def on_metrics(self, metrics: Mapping[str, float], num_timesteps: int) -> None:
        """Forward the algorithm's statistics plus episode statistics to every logger."""
        combined = dict(metrics)
        elapsed = max(time.monotonic() - self._started, 1e-9)
        combined["time/steps_per_second"] = (num_timesteps - self._start_steps) / elapsed
        for key, values in self._episodes.items():
            if values:
                combined[f"episode/{'success_rate' if key == 'success' else key}"] = \
                    float(np.mean(values))
                values.clear()
        self.write(combined, num_timesteps)
        if self.progress is not None and "train/approx_kl" in combined:
            self.progress.set_postfix_str(
                f"kl={combined['train/approx_kl']:.4f} "
                f"ent={combined.get('train/entropy_loss', float('nan')):.2f}", refresh=False)

    def on_training_end(self) -> None:
        """Nothing to do: the runner writes the final checkpoint."""

    # --- helpers ----------------------------------------------------------------------

    def write(self, metrics: Mapping[str, float], num_timesteps: int) -> None:
        """Send ``metrics`` to every logger."""
        for logger in self.loggers:
            logger.write(metrics, num_timesteps)

    def checkpoint(self, num_timesteps: int) -> Path:
        """Write a checkpoint of the current agent (once per step count)."""
        assert self.agent is not None  # set in on_training_start; not user input
        path = self.checkpoint_path(num_timesteps)
        if num_timesteps != self.last_checkpoint_steps:
            self.save(self.agent, path)
            self.last_checkpoint, self.last_checkpoint_steps = path, num_timesteps
            self.on_checkpoint(path, num_timesteps)
        return path

    @property
    def steps_per_second(self) -> float:
        """Throughput since training (re)started."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return (self._seen_steps - self._start_steps) / elapsed
