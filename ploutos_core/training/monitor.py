"""The training monitor of one stage: progress, checkpoints, stop requests, metrics.

It is the :class:`~ploutos_core.agents.contract.TrainingMonitor` the runner hands to
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

from ploutos_core.agents.contract import Agent, TrainingMonitor
from ploutos_core.tracking.contract import MetricLogger
from ploutos_core.training.interrupts import StopFlag

#: ``evaluate(agent, num_timesteps)`` returns validation metrics for logging.
PeriodicEvaluation = Callable[[Agent, int], Mapping[str, float]]

#: The metric names every logger receives (issue 6), with their meaning. Loggers also
#: receive whatever else the algorithm logs under its own names (``rollout/ep_rew_mean``,
#: ``train/explained_variance``, ``time/fps`` …). ``episode/*`` appear at a logging step
#: when training episodes finished since the previous one; ``eval/*`` every ``--eval-freq``
#: steps.
METRICS: dict[str, str] = {
    "train/policy_loss": "policy (surrogate) loss of the last update",
    "train/value_loss": "value-function loss of the last update",
    "train/entropy": "mean policy entropy of the last update (higher: more exploration)",
    "train/approx_kl": "approximate KL divergence between old and new policy",
    "train/clip_fraction": "fraction of samples whose probability ratio was clipped",
    "time/steps_per_second": "environment steps per second since training (re)started",
    "episode/portfolio_value": "mean final portfolio value of finished training episodes "
                               "(start = 1.0)",
    "episode/sharpe": "mean annualised Sharpe ratio of finished training episodes",
    "episode/success_rate": "share of finished training episodes that ended above 1.0",
    "eval/sharpe": "annualised Sharpe ratio of a deterministic validation backtest",
    "eval/portfolio_value": "final portfolio value of that backtest",
    "eval/max_drawdown": "maximum drawdown of that backtest (a fraction)",
    "eval/best_sharpe": "best eval/sharpe so far (the model kept as best.zip)",
}

#: stable-baselines3 names → the names above; the originals are forwarded too.
_ALIASES = {"train/policy_gradient_loss": "train/policy_loss"}


def standard_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` plus the :data:`METRICS` names derived from an algorithm's own names.

    SB3's PPO logs ``train/policy_gradient_loss`` and ``train/entropy_loss`` (the
    negative entropy); loggers get ``train/policy_loss`` and ``train/entropy`` as
    well, whatever the algorithm calls them (A2C already says ``train/policy_loss``).
    """
    combined = dict(metrics)
    for source, target in _ALIASES.items():
        if source in combined and target not in combined:
            combined[target] = combined[source]
    if "train/entropy_loss" in combined and "train/entropy" not in combined:
        combined["train/entropy"] = -combined["train/entropy_loss"]
    return combined


def _next_multiple(steps: int, every: int) -> int:
    """The first multiple of ``every`` above ``steps``."""
    return (steps // every + 1) * every


class StageMonitor(TrainingMonitor):
    """Drives checkpoints, progress output, loggers and periodic evaluation.

    :param agent: the agent being trained (checkpoints save it).
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
        agent: Agent,
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
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = max(1, checkpoint_every)
        self.save = save
        self.on_checkpoint = on_checkpoint
        self.loggers = list(loggers)
        self.stop = stop or StopFlag()
        self.progress = progress
        self.evaluate = evaluate
        self.evaluate_every = evaluate_every
        self.agent = agent
        self.last_checkpoint_steps = -1
        self._next_checkpoint = 0
        self._next_evaluation = 0
        self._started = time.monotonic()
        self._start_steps = self._seen_steps = agent.num_timesteps
        self._training_started = False
        self._episodes: dict[str, list[float]] = {"portfolio_value": [], "sharpe": [],
                                                  "success": []}

    # --- TrainingMonitor --------------------------------------------------------------

    def on_training_start(self, agent: Agent) -> None:
        """Remember the agent and where the step counters start (after a resume).

        A stage that trains in phases (a universe, then its own tickers) calls
        ``learn`` twice; throughput counts from the first start.
        """
        self.agent = agent
        self._seen_steps = agent.num_timesteps
        self._next_checkpoint = _next_multiple(agent.num_timesteps, self.checkpoint_every)
        if self.evaluate_every:
            self._next_evaluation = _next_multiple(agent.num_timesteps, self.evaluate_every)
        if not self._training_started:
            self._training_started = True
            self._start_steps = agent.num_timesteps
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
            self._next_checkpoint = _next_multiple(num_timesteps, self.checkpoint_every)
        self._evaluate_if_due(num_timesteps)

    def on_metrics(self, metrics: Mapping[str, float], num_timesteps: int) -> None:
        """Forward the algorithm's statistics plus episode statistics to every logger."""
        combined = standard_metrics(metrics)
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
                f"ent={combined.get('train/entropy', float('nan')):.2f}", refresh=False)

    def on_training_end(self) -> None:
        """Run a periodic evaluation that fell due with the last update.

        ``on_iteration`` only follows an update that another rollout comes after,
        so without this the final weights would never compete for best.zip.
        The runner writes the final checkpoint.
        """
        if self._next_evaluation and not self.stop.requested:  # started, not interrupted
            self._evaluate_if_due(self.agent.num_timesteps)

    # --- helpers ----------------------------------------------------------------------

    def _evaluate_if_due(self, num_timesteps: int) -> None:
        if self.evaluate is None or not self.evaluate_every or \
                num_timesteps < self._next_evaluation:
            return
        self.write(self.evaluate(self.agent, num_timesteps), num_timesteps)
        self._next_evaluation = _next_multiple(num_timesteps, self.evaluate_every)

    def write(self, metrics: Mapping[str, float], num_timesteps: int) -> None:
        """Send ``metrics`` to every logger."""
        for logger in self.loggers:
            logger.write(metrics, num_timesteps)

    def checkpoint(self, num_timesteps: int) -> Path:
        """Write a checkpoint of the current agent (once per step count)."""
        path = self.checkpoint_path(num_timesteps)
        if num_timesteps != self.last_checkpoint_steps:
            self.save(self.agent, path)
            self.last_checkpoint_steps = num_timesteps
            self.on_checkpoint(path, num_timesteps)
        return path

    @property
    def steps_per_second(self) -> float:
        """Throughput since training (re)started."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return (self._seen_steps - self._start_steps) / elapsed
