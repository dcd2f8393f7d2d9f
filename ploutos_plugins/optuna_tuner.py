"""Built-in ``optuna`` tuner: TPE with a seed, median pruning, resumable shared studies.

The study lives in any storage Optuna supports: a database URL (SQLite beside
the stage by default, PostgreSQL, MySQL) or a journal file (``*.log``,
``*.journal``). An interrupted search therefore resumes, and workers on several
machines share one study. Together they run exactly the trial budget: a worker
claims a trial only while fewer than ``n_trials`` trials are finished or running
(see :meth:`OptunaTuner._objective`), so no worker runs a trial too many.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ploutos_core import (
    ConfigError,
    Registrar,
    TrialPruned,
    Tuner,
    TuningProblem,
    TuningResult,
    hookimpl,
)

if TYPE_CHECKING:
    import optuna

T = TypeVar("T")

#: seconds between heartbeats of a running trial (database storages).
HEARTBEAT_SECONDS = int(os.environ.get("PLOUTOS_TUNING_HEARTBEAT_SECONDS", "30"))
#: a running trial without a heartbeat for this long belongs to a dead worker and is failed.
GRACE_SECONDS = int(os.environ.get("PLOUTOS_TUNING_GRACE_SECONDS", "120"))
#: how often a worker with no trial left to claim looks whether the others have finished.
POLL_SECONDS = 1.0
#: file endings that select Optuna's journal storage instead of a database URL.
JOURNAL_SUFFIXES = (".log", ".journal")


class _Surplus(Exception):
    """Another worker claimed the last trial of the budget first; this trial is not run."""


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence Optuna's own logging and experimental warnings; progress goes via ``on_trial``."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def is_journal(storage: str) -> bool:
    """Whether ``storage`` names a journal file rather than a database URL."""
    return "://" not in storage and storage.endswith(JOURNAL_SUFFIXES)


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for a database URL or a journal file path.

    Database storages get a heartbeat, so a trial left running by a killed worker
    is failed after :data:`GRACE_SECONDS` and its slot in the budget freed.

    :raises ConfigError: for a value that is neither, or a database that cannot be opened.
    """
    import optuna

    from ploutos_core import redact_storage

    shown = redact_storage(storage)
    if is_journal(storage):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(storage).expanduser()
        check_storage_folder(path, shown)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in storage:
        raise ConfigError(
            f"tuning storage {shown!r} is neither a database URL nor a journal file; use "
            f"sqlite:///path/optuna.db, postgresql://user@host/db, mysql://… or a file ending "
            f"in {' or '.join(JOURNAL_SUFFIXES)}"
        )
    engine_kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite"):
        import sqlalchemy

        database = sqlalchemy.engine.make_url(storage).database
        if database and database != ":memory:":
            check_storage_folder(Path(database).expanduser(), shown)
        # SQLite lets one writer in at a time; concurrent workers wait for the lock
        # instead of failing with "database is locked" after the default 5 s.
        engine_kwargs["connect_args"] = {"timeout": 120}
    storage = postgres_driver(storage)

    def connect() -> optuna.storages.BaseStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS)

    try:
        return _retry_transient(connect)
    except ImportError as exc:
        hint = ("pip install 'ploutos[postgres]' (psycopg 3)" if storage.startswith("postgres")
                else "pip install PyMySQL for mysql+pymysql://…" if storage.startswith("mysql")
                else "install the driver the URL names")
        raise ConfigError(f"tuning storage {shown}: the database driver is not installed "
                          f"({one_line(exc)}); {hint}") from exc
    except Exception as exc:  # sqlalchemy raises many error types for a bad URL or server
        raise ConfigError(f"tuning storage {shown} cannot be opened: {one_line(exc)}") from exc


def one_line(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's ``[SQL: …]`` and background notes."""
    text = str(exc).split("\n")[0]
    return text.split("(Background on this error")[0].strip()


def check_storage_folder(path: Path, shown: str) -> None:
    """Refuse a storage file whose folder is missing or is a file (nothing is created).

    The default storage's folder (``models/<stage>/``) is made before the tuner opens it.

    :raises ConfigError: naming the folder.
    """
    folder = path.parent
    if folder.is_file():
        raise ConfigError(f"tuning storage {shown}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise ConfigError(f"tuning storage {shown}: the folder {folder} does not exist; create "
                          f"it (mkdir -p {folder}) or choose another path")


def postgres_driver(storage: str) -> str:
    """``postgresql://…`` with the psycopg 3 driver when it is the one installed.

    SQLAlchemy reads a bare ``postgresql://`` as psycopg2; Ploutos's ``postgres`` extra
    installs psycopg 3, spelled ``postgresql+psycopg://``.
    """
    scheme, sep, rest = storage.partition("://")
    if scheme in ("postgresql", "postgres") and sep and \
            importlib.util.find_spec("psycopg2") is None and \
            importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return storage


def _retry_transient(action: Callable[[], T], attempts: int = 5) -> T:
    """Run ``action``, retrying database errors that concurrent workers cause.

    Workers that open a new database at the same moment race to create Optuna's
    tables (``UNIQUE constraint failed: alembic_version``, optuna/optuna#4621); the
    loser succeeds when it tries again.
    """
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return action()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def format_trial(trial: optuna.trial.FrozenTrial, finished: int, budget: int,
                 score_name: str = "score") -> str | None:
    """One progress line for a finished trial, or ``None`` for a surplus trial."""
    from optuna.trial import TrialState

    from ploutos_core import format_params

    head = f"trial {trial.number} ({finished}/{budget}) {format_params(trial.params)}"
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        return f"{head}: {score_name} {trial.value:.3f}"
    if trial.state == TrialState.PRUNED:
        step = trial.last_step
        at = "" if step is None else \
            f" at report {step} ({score_name} {trial.intermediate_values[step]:.3f})"
        return f"{head}: pruned{at}"
    return None


class OptunaTuner(Tuner):
    """Optuna study: seeded TPE sampler, median pruner, stored so it resumes and is shared."""

    name = "optuna"
    description = "Optuna TPE + median pruning; SQLite/PostgreSQL/MySQL/journal storage"

    def sampler(self, problem: TuningProblem, seed: int) -> optuna.samplers.BaseSampler:
        """TPE: a third of the budget (2-10 trials) samples at random before TPE models.

        ``constant_liar`` keeps concurrent workers from proposing the same point.
        """
        import optuna

        startup = max(2, min(10, problem.n_trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup,
                                          constant_liar=True)

    def pruner(self, problem: TuningProblem) -> optuna.pruners.BasePruner:
        """Median pruner sized for budgets of a few trials.

        Pruning starts once a quarter of the budget (2-5 trials) has completed, so a
        trial is never pruned for being a little worse than a single other one; with
        three or more reports per trial the first one, after very little training,
        never prunes.
        """
        import optuna

        return optuna.pruners.MedianPruner(
            n_startup_trials=max(2, min(5, problem.n_trials // 4)),
            n_warmup_steps=2 if problem.space.reports >= 3 else 1,
        )

    def tune(self, problem: TuningProblem) -> TuningResult:
        """Run trials until the study holds ``problem.n_trials`` finished trials.

        Trials of earlier, interrupted runs and of other workers count. When every
        remaining trial is running in another worker, wait for them (database
        storages, whose heartbeat tells a dead worker from a slow one); a journal
        storage has no heartbeat, so the worker returns the best trial so far.

        :raises ConfigError: bad storage, or no trial has completed yet.
        """
        import optuna
        from optuna.trial import TrialState

        from ploutos_core import redact_storage

        if problem.n_trials < 1:
            raise ConfigError(f"{problem.stage_name}: the trial budget must be >= 1, "
                              f"got {problem.n_trials}")
        budget = problem.n_trials
        shown = redact_storage(problem.storage)
        with _quiet_optuna():
            storage = open_storage(problem.storage)
            study = self._study(storage, problem)
            heartbeat = not is_journal(problem.storage)
            # Optuna's MaxTrialsCallback over finished trials alone would let this worker
            # start one more trial while another runs the last one, ending the study above
            # the budget; counting running trials too stops every worker at the total.
            claimed = optuna.study.MaxTrialsCallback(
                budget, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
            progress = self._progress(problem)
            waiting = False
            stamped: set[int] = set()
            while True:
                if heartbeat:
                    stamp_running_once(storage, study, stamped)
                    optuna.storages.fail_stale_trials(study)
                finished, running = _counts(study)
                if finished >= budget:
                    break
                if finished + running < budget:
                    study.optimize(self._objective(problem, study), catch=(_Surplus,),
                                   callbacks=[claimed, progress], gc_after_trial=False)
                    continue
                if not heartbeat:
                    problem.on_trial(f"{running} trial(s) still running in other workers; "
                                     f"using the best finished trial so far")
                    break
                if not waiting:
                    problem.on_trial(f"waiting for {running} trial(s) running in other workers")
                    waiting = True
                time.sleep(POLL_SECONDS)
            trials = study.get_trials(deepcopy=False)
            completed = [t for t in trials if t.state == TrialState.COMPLETE]
            pruned = [t for t in trials if t.state == TrialState.PRUNED]
            if not completed:
                raise ConfigError(
                    f"{problem.stage_name}: study {problem.study_name!r} in {shown} has no "
                    f"completed trial yet; run again once the other workers have finished"
                )
            best = study.best_trial
        return TuningResult(best_params=dict(best.params), best_value=float(best.values[0]),
                            trials_completed=len(completed), trials_pruned=len(pruned),
                            study_name=problem.study_name, storage=shown)

    def _study(self, storage: optuna.storages.BaseStorage, problem: TuningProblem
               ) -> optuna.Study:
        """Create or load the study; the sampler seed mixes in the number of trials already
        in it, so a resumed study does not draw its first points again."""
        import optuna

        existing = _retry_transient(lambda: optuna.create_study(
            storage=storage, study_name=problem.study_name, load_if_exists=True,
            direction="maximize"))
        if existing.direction != optuna.study.StudyDirection.MAXIMIZE:
            raise ConfigError(f"study {problem.study_name!r} minimises its objective; it "
                              f"belongs to something else, choose another study name")
        import numpy as np

        joined_at = len(existing.get_trials(deepcopy=False))
        # Mixed, not added: seed 1 joining after one trial must not equal seed 2 at zero.
        seed = int(np.random.SeedSequence((problem.seed, joined_at)).generate_state(1)[0])
        return optuna.load_study(study_name=problem.study_name, storage=storage,
                                 sampler=self.sampler(problem, seed),
                                 pruner=self.pruner(problem))

    def _objective(self, problem: TuningProblem, study: optuna.Study
                   ) -> Callable[[optuna.Trial], float]:
        import optuna
        from optuna.trial import TrialState

        space = problem.space
        budget = problem.n_trials

        def objective(trial: optuna.Trial) -> float:
            # Trial numbers are handed out by the storage in order. Count the trials
            # before this one that are finished or still running: if they fill the
            # budget, another worker claimed the last slot while this one was asking.
            before = [t for t in study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                        TrialState.RUNNING)) if t.number < trial.number]
            if len(before) >= budget:
                study.stop()
                raise _Surplus(f"the budget of {budget} trials is already claimed")
            params: dict[str, float | int] = {
                "learning_rate": trial.suggest_float("learning_rate", *space.learning_rate,
                                                     log=True),
                "n_steps": trial.suggest_categorical("n_steps", list(space.n_steps)),
                "ent_coef": trial.suggest_float("ent_coef", *space.ent_coef, log=True),
            }

            def report(value: float, step: int) -> bool:
                trial.report(value, step)
                return trial.should_prune()

            try:
                return problem.objective(params, report)
            except TrialPruned as exc:
                raise optuna.TrialPruned(str(exc)) from exc

        return objective

    def _progress(self, problem: TuningProblem
                  ) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
        def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            line = format_trial(trial, _counts(study)[0], problem.n_trials,
                                problem.score_name)
            if line is not None:
                problem.on_trial(line)

        return progress


def stamp_running_once(storage: optuna.storages.BaseStorage, study: optuna.Study,
                       stamped: set[int]) -> None:
    """Record one heartbeat for every running trial not in ``stamped``, and add it there.

    Optuna fails a running trial whose last heartbeat is older than the grace period, but
    never one without any heartbeat: a worker killed after creating its trial and before
    that trial's first heartbeat leaves a trial that would keep every other worker waiting
    forever. One heartbeat from here makes such a trial stale after the grace period,
    while a live worker's own heartbeats keep its trial running as before.
    """
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    if not isinstance(storage, RDBStorage) or storage.get_heartbeat_interval() is None:
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = trial._trial_id  # the storage's key; Optuna's own heartbeat code uses it
        if trial_id not in stamped:
            storage.record_heartbeat(trial_id)
            stamped.add(trial_id)


def _counts(study: optuna.Study) -> tuple[int, int]:
    """``(finished, running)``: complete or pruned trials, and running ones."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return finished, running


@hookimpl
def ploutos_register_tuners(register: Registrar[Tuner]) -> None:
    """Register the Optuna tuner."""
    register(OptunaTuner())
