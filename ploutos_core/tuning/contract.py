"""The tuner contract: hyperparameter searches over a stage's tuning space."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ploutos_core.config.stage import TuningSpace

#: the hyperparameters a tuner may change; nothing else is ever tuned.
TUNED = ("learning_rate", "n_steps", "ent_coef")

#: ``report(value, step)`` records an intermediate validation score; it returns
#: ``True`` when the tuner wants the trial stopped (pruned).
ReportFn = Callable[[float, int], bool]
#: ``objective(params, report)`` trains one trial with ``params`` and returns its
#: final validation score; it calls ``report`` at regular intervals.
ObjectiveFn = Callable[[Mapping[str, float | int], ReportFn], float]


class TrialPruned(Exception):
    """Raised inside an objective when ``report`` asked for the trial to stop."""


@attrs.frozen(eq=False)
class TuningProblem:
    """One study to run.

    :param stage_name: the stage being tuned (for names and messages).
    :param space: the search space and trial budget.
    :param objective: trains a trial and returns its score (higher is better).
    :param storage: a database URL (``sqlite:///…``, ``postgresql://…``) or a
        journal file path; the study lives there so it can resume and be shared.
    :param study_name: the study's name inside the storage.
    :param n_trials: trials this call should bring the study up to, in total
        (finished and pruned trials of earlier runs and other workers count).
    :param seed: seed of the sampler.
    :param on_trial: called with one line per finished trial, for progress output.
    :param score_name: what the score is, for those lines (``selection Sharpe``: the
        Sharpe ratio on the stage's selection window).
    """

    stage_name: str
    space: TuningSpace
    objective: ObjectiveFn
    storage: str
    study_name: str
    n_trials: int
    seed: int = 0
    on_trial: Callable[[str], None] = print
    score_name: str = "score"


@attrs.frozen
class TuningResult:
    """Outcome of a study.

    :param best_params: the best trial's parameters.
    :param best_value: its score.
    :param trials_completed: trials that ran to the end, in the whole study.
    :param trials_pruned: trials stopped early, in the whole study.
    :param study_name: the study's name.
    :param storage: where it is stored (passwords removed).
    """

    best_params: Mapping[str, float | int]
    best_value: float
    trials_completed: int
    trials_pruned: int
    study_name: str
    storage: str


class Tuner(abc.ABC):
    """A named hyperparameter search, registered by a plugin."""

    #: registered name, used by ``--tuner``.
    name: str = ""
    #: one line for listings.
    description: str = ""

    @abc.abstractmethod
    def tune(self, problem: TuningProblem) -> TuningResult:
        """Run (or resume, or join) the study and return its best parameters."""


def default_storage(stage_dir: Path) -> str:
    """The SQLite URL beside a stage's checkpoints (``models/stageN/optuna.db``)."""
    return f"sqlite:///{(stage_dir / 'optuna.db').resolve()}"


def redact_storage(storage: str) -> str:
    """``storage`` with any password in a URL replaced by ``***``."""
    if "://" not in storage:
        return storage
    parts = urlsplit(storage)
    if parts.password is None:
        return storage
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def format_params(params: Mapping[str, Any]) -> str:
    """``learning_rate=1.2e-04 n_steps=256 ent_coef=3.1e-03``."""
    shown = []
    for key in sorted(params, key=lambda k: (TUNED.index(k) if k in TUNED else len(TUNED), k)):
        value = params[key]
        shown.append(f"{key}={value:.2e}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(shown)
