"""Typed records the curriculum runner passes to event hooks and writes to reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ploutos_core.config.stage import Hyperparameters, StageSpec

if TYPE_CHECKING:
    from ploutos_core.evaluation.backtest import EvaluationResult


@attrs.frozen
class StageRun:
    """A stage about to run (or running) inside a curriculum.

    :param stage: the stage definition.
    :param position: 1-based position in the curriculum being run.
    :param run_dir: the output directory (``--out``).
    :param seed: the run's seed.
    :param device: ``cpu`` or ``cuda``.
    :param timesteps: steps to train, after ``--scale``.
    :param n_envs: environments stepped at once.
    :param hyperparameters: effective hyperparameters (tuned or from the stage).
    :param algorithm: registered algorithm name used.
    :param start_from: model whose policy weights the stage starts from, if any.
    :param resume_from: checkpoint the stage continues from, if resuming.
    :param selection_trials: configurations looked at to choose the hyperparameters (the
        tuning study's trials; 1 when untuned), for the deflated Sharpe ratio.
    """

    stage: StageSpec
    position: int
    run_dir: Path
    seed: int
    device: str
    timesteps: int
    n_envs: int
    hyperparameters: Hyperparameters
    algorithm: str
    start_from: Path | None = None
    resume_from: Path | None = None
    selection_trials: int = 1

    def model_metadata(self) -> dict[str, Any]:
        """What every model file of the stage records in its ``ploutos.json``."""
        record = self.to_dict()
        return {"stage": record["stage"], "tickers": record["tickers"],
                "target_timesteps": self.timesteps, "n_envs": self.n_envs, "seed": self.seed,
                "hyperparameters": record["hyperparameters"], "start_from": record["start_from"],
                "benchmark": self.stage.benchmark, "selection_trials": self.selection_trials,
                "actions": self.stage.env.action_record()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (for manifests, model files and loggers)."""
        return {"stage": self.stage.name, "position": self.position, "seed": self.seed,
                "device": self.device, "timesteps": self.timesteps, "n_envs": self.n_envs,
                "algorithm": self.algorithm, "tickers": list(self.stage.tickers),
                "hyperparameters": attrs.asdict(self.hyperparameters),
                "start_from": str(self.start_from) if self.start_from else None,
                "resumed_from": str(self.resume_from) if self.resume_from else None,
                "run_dir": str(self.run_dir), "selection_trials": self.selection_trials}


@attrs.frozen
class Checkpoint:
    """A checkpoint file that was just written.

    :param path: the ``.zip`` file.
    :param num_timesteps: steps trained when it was written.
    """

    path: Path
    num_timesteps: int


@attrs.frozen
class StageResult:
    """What a finished stage produced.

    :param stage: stage name.
    :param final_model: ``models/<stage>_final.zip``, or ``None`` when the gate failed.
    :param last_checkpoint: the newest checkpoint (always kept, also on a failed gate).
    :param num_timesteps: steps trained.
    :param train_seconds: wall time of training (tuning excluded).
    :param steps_per_second: training throughput.
    :param validation: the validation backtest, when the stage was evaluated.
    :param gate_passed: whether the validation Sharpe reached the stage's gate.
    :param gate_ignored: the gate failed but ``--ignore-gates`` continued.
    """

    stage: str
    final_model: Path | None
    last_checkpoint: Path | None
    num_timesteps: int
    train_seconds: float
    steps_per_second: float
    validation: EvaluationResult | None = None
    gate_passed: bool | None = None
    gate_ignored: bool = False
