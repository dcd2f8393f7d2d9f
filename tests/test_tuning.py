"""Auto-optimisation (issue 5): pruning, resuming, shared studies, optimized_params.json, and
the test split never touched while tuning."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from ploutos_core import DataRequest, EnvRequest, Registry, get_plugin_manager, hookimpl
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.config.stage import TuningSpace
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.errors import ConfigError, DataError
from ploutos_core.training.builder import fit_to_budget, prepare_stage
from ploutos_core.training.context import RunContext, RunOptions
from ploutos_core.tuning.contract import ReportFn, TrialPruned, TuningProblem, redact_storage
from ploutos_core.tuning.study import (
    TrialObjective,
    apply_params,
    check_no_test_data,
    tune_stage,
)
from ploutos_plugins.optuna_tuner import OptunaTuner, open_storage
from ploutos_plugins.portfolio_env import PortfolioEnvBuilder
from ploutos_plugins.synthetic_source import SyntheticSource
from tests.conftest import TINY_TOML, make_tiny_stage

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: the tiny curriculum with a search space that fits its 256-step stages.
TUNED_TOML = TINY_TOML.replace(
    "[stage.splits]",
    "[stage.tuning]\nn_steps = [16, 32]\ntrial_fraction = 0.5\nreports = 2\n\n[stage.splits]")


def storage_url(kind: str, directory: Path) -> str:
    return f"sqlite:///{directory / 'study.db'}" if kind == "sqlite" \
        else str(directory / "study.journal")


def finished_numbers(storage: str, study_name: str) -> list[int]:
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert not running, running
    return sorted(t.number for t in study.get_trials(deepcopy=False, states=FINISHED))


def problem(storage: str, objective: Any, n_trials: int, lines: list[str] | None = None,
            reports: int = 2) -> TuningProblem:
    return TuningProblem(stage_name="tiny", space=TuningSpace(reports=reports),
                         objective=objective, storage=storage, study_name="tiny",
                         n_trials=n_trials, seed=0,
                         on_trial=(lines.append if lines is not None else lambda line: None),
                         score_name="selection Sharpe")


# --- the optuna tuner with synthetic objectives (no training) ---------------------------


def test_a_trial_reporting_poor_values_is_pruned(tmp_path: Path) -> None:
    calls = itertools.count()
    finals: list[int] = []

    def objective(params: Mapping[str, float | int], report: ReportFn) -> float:
        number = next(calls)
        value = -5.0 if number == 2 else 1.0 + number
        if report(value, 1):
            raise TrialPruned(f"value {value} at report 1")
        finals.append(number)
        report(value, 2)
        return value

    lines: list[str] = []
    storage = storage_url("sqlite", tmp_path)
    result = OptunaTuner().tune(problem(storage, objective, 4, lines))
    states = [t.state for t in optuna.load_study(study_name="tiny", storage=storage).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED,
                      TrialState.COMPLETE]
    assert finals == [0, 1, 3]  # the poor trial stopped at its first report
    assert (result.trials_completed, result.trials_pruned) == (3, 1)
    assert result.best_value == 4.0
    assert re.search(r"trial 2 \(3/4\) learning_rate=\S+ n_steps=\d+ ent_coef=\S+: pruned at "
                     r"report 1 \(selection Sharpe -5\.000\)", "\n".join(lines)), lines
    assert "trial 3 (4/4)" in lines[-1] and "selection Sharpe 4.000" in lines[-1]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_an_interrupted_study_resumes_to_its_total_budget(tmp_path: Path, kind: str) -> None:
    storage = storage_url(kind, tmp_path)
    calls: list[Mapping[str, float | int]] = []
    interrupt_at: list[int] = []

    def objective(params: Mapping[str, float | int], report: ReportFn) -> float:
        calls.append(params)
        if len(calls) in interrupt_at:
            raise KeyboardInterrupt
        return float(params["learning_rate"]) * 1000

    tuner = OptunaTuner()
    tuner.tune(problem(storage, objective, 2))
    assert finished_numbers(storage, "tiny") == [0, 1]
    assert len(calls) == 2
    interrupt_at.append(4)  # the second trial of the next run is interrupted (Ctrl-C)
    with pytest.raises(KeyboardInterrupt):
        tuner.tune(problem(storage, objective, 4))
    assert finished_numbers(storage, "tiny") == [0, 1, 2]
    result = tuner.tune(problem(storage, objective, 4))
    assert len(calls) == 5  # only the missing trial ran
    assert finished_numbers(storage, "tiny") == [0, 1, 2, 4]  # 3 failed when interrupted
    assert result.trials_completed == 4
    # A resumed sampler does not draw the first points of the study again.
    assert calls[4] != calls[0]
    # At its budget, the study runs nothing more.
    tuner.tune(problem(storage, objective, 4))
    assert len(calls) == 5


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker killed between creating its trial and the trial's first heartbeat leaves
    # a running trial that Optuna's stale check never sees; the others waited forever
    # (a CI run of tests/test_postgres.py hung 300 s on one).
    import ploutos_plugins.optuna_tuner as optuna_tuner

    monkeypatch.setattr(optuna_tuner, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(optuna_tuner, "GRACE_SECONDS", 1)
    monkeypatch.setattr(optuna_tuner, "POLL_SECONDS", 0.1)
    storage = storage_url("sqlite", tmp_path)
    orphan = optuna.create_study(study_name="tiny", storage=open_storage(storage),
                                 direction="maximize").ask()  # running, no heartbeat

    def objective(params: Mapping[str, float | int], report: ReportFn) -> float:
        return float(params["learning_rate"])

    lines: list[str] = []
    outcome: list[Any] = []
    worker = threading.Thread(
        target=lambda: outcome.append(OptunaTuner().tune(problem(storage, objective, 2, lines))),
        daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), f"still waiting for the dead worker's trial: {lines}"
    assert "waiting for 1 trial(s) running in other workers" in lines
    assert outcome[0].trials_completed == 2
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert trials[orphan.number].state == TrialState.FAIL
    assert finished_numbers(storage, "tiny") == [1, 2]


def test_storage_must_be_a_url_or_a_journal_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a database URL nor a journal file"):
        OptunaTuner().tune(problem(str(tmp_path / "study.db"), lambda p, r: 0.0, 1))


def test_passwords_never_leave_the_storage_url() -> None:
    assert redact_storage("postgresql://ploutos:s3cret@db.lan:5432/optuna") == \
        "postgresql://ploutos:***@db.lan:5432/optuna"
    assert redact_storage("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_storage("runs/study.journal") == "runs/study.journal"


def test_costs_and_the_market_are_never_tuned() -> None:
    stage = make_tiny_stage()
    tuned = apply_params(stage.hyperparameters, {"learning_rate": 1e-4, "n_steps": 16,
                                                 "ent_coef": 0.01})
    assert (tuned.learning_rate, tuned.n_steps, tuned.ent_coef) == (1e-4, 16, 0.01)
    assert tuned.gamma == stage.hyperparameters.gamma
    with pytest.raises(ConfigError, match="transaction_cost_bps are not tunable"):
        apply_params(stage.hyperparameters, {"transaction_cost_bps": 0.0})


# --- two worker processes on one study ---------------------------------------------------


@pytest.mark.slow  # subprocess training: tox -e slow (issue 13)
def test_two_worker_processes_finish_exactly_the_budget(tmp_path: Path) -> None:
    stage_file = tmp_path / "tiny.toml"
    stage_file.write_text(TUNED_TOML.format(gate1=-100.0))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    budget = 6
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "ploutos_core.cli", "tune", "--stage", "tiny1",
             "--stage-file", str(stage_file), "--source", "synthetic", "--device", "cpu",
             "--storage", storage, "--study-name", "shared", "--trials", str(budget),
             "--sampler-seed", str(seed), "--out", str(tmp_path / f"worker{seed}")],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (1, 2)
    ]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, (out, err)
    assert finished_numbers(storage, "shared") == list(range(budget))
    # Each trial was run (and reported) by exactly one worker.
    ran = [[int(n) for n in re.findall(r"tiny1: trial (\d+) \(", out)] for out, _ in outputs]
    assert sorted(ran[0] + ran[1]) == list(range(budget)), ran
    saved = [json.loads((tmp_path / f"worker{seed}" / "models" / "tiny1" /
                         "optimized_params.json").read_text()) for seed in (1, 2)]
    for record in saved:
        assert record["trials_completed"] + record["trials_pruned"] == budget
        assert record["study_name"] == "shared"
    assert saved[0]["params"] == saved[1]["params"]


# --- the stage objective and the runner ----------------------------------------------------


class RecordingSource(SyntheticSource):
    """Synthetic prices that remember every request."""

    name = "recording"

    def __init__(self) -> None:
        self.requests: list[DataRequest] = []

    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        self.requests.append(request)
        return super().fetch(request)


class RecordingEnvBuilder(PortfolioEnvBuilder):
    """The portfolio env that remembers which splits were built."""

    name = "recording-env"

    def __init__(self) -> None:
        self.splits: list[str] = []

    def build(self, request: EnvRequest) -> Any:
        self.splits.append(request.split)
        return super().build(request)


class RecordingPlugin:
    def __init__(self) -> None:
        self.source = RecordingSource()
        self.builder = RecordingEnvBuilder()

    @hookimpl
    def ploutos_register_data_sources(self, register: Any) -> None:
        register(self.source)

    @hookimpl
    def ploutos_register_env_builders(self, register: Any) -> None:
        register(self.builder)


def test_trial_objective_stops_training_when_pruned() -> None:
    registry = Registry(get_plugin_manager())
    stage = make_tiny_stage()
    run = RunContext(registry=registry, options=RunOptions(
        data=DataOptions(source="synthetic"), device="cpu", progress=False, n_envs=4),
        echo=lambda _: None)
    objective = TrialObjective(prepare_stage(run, stage), None, steps=256)
    reported: list[tuple[float, int]] = []

    def prune(value: float, step: int) -> bool:
        reported.append((value, step))
        return True

    with pytest.raises(TrialPruned, match="at report 1 of 2"):
        objective({"learning_rate": 3e-4, "n_steps": 16, "ent_coef": 1e-3}, prune)
    assert [step for _, step in reported] == [1]


def test_a_stage_trains_with_its_optimized_params_and_never_sees_test(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    stage_file = tmp_path / "tiny.toml"
    stage_file.write_text(TUNED_TOML.format(gate1=-100.0).replace(
        "[stage.hyperparameters]", 'env_builder = "recording-env"\n[stage.hyperparameters]'))
    pm = get_plugin_manager()
    plugin = RecordingPlugin()
    pm.register(plugin, name="recording")
    panels: list[Any] = []
    import ploutos_core.training.runner as runner_module

    def spy(ctx: Any, *args: Any) -> Any:
        panels.append((ctx.stage, ctx.panel))
        return tune_stage(ctx, *args)

    monkeypatch.setattr(runner_module, "tune_stage", spy)
    out = tmp_path / "run"
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file",
                     str(stage_file), "--out", str(out), "--source", "recording",
                     "--no-progress", "--device", "cpu", "--auto-optimize", "--trials", "2",
                     pm=pm)
    assert result.code == 0, result

    # The test split was never requested, built or in a tuning panel.
    validation_end = dt.date(2013, 12, 31)
    assert plugin.source.requests
    assert all(r.end is not None and r.end <= validation_end for r in plugin.source.requests)
    assert "test" not in plugin.builder.splits and "validation" in plugin.builder.splits
    assert [stage.name for stage, _ in panels] == ["tiny1", "tiny2"]
    assert all(panel.date(panel.n_days - 1) <= validation_end for _, panel in panels)

    manifest = json.loads((out / "reports" / "run.json").read_text())
    for name in ("tiny1", "tiny2"):
        saved = json.loads((out / "models" / name / "optimized_params.json").read_text())
        assert saved["stage"] == name and saved["study_name"] == f"ploutos-{name}"
        assert saved["trials_completed"] + saved["trials_pruned"] == 2
        assert saved["trials_budget"] == 2
        assert saved["storage"] == f"sqlite:///{(out / 'models' / name / 'optuna.db').resolve()}"
        assert set(saved["params"]) == {"learning_rate", "n_steps", "ent_coef"}
        assert isinstance(saved["best_value"], float)
        params = saved["params"]
        # The stage trained with them: the checkpoint records its hyperparameters.
        used = read_metadata(out / "models" / f"{name}_final.zip")["hyperparameters"]
        assert used["learning_rate"] == params["learning_rate"]
        assert used["ent_coef"] == params["ent_coef"]
        assert used["n_steps"] == fit_to_budget(apply_params(
            make_tiny_stage().hyperparameters, params), 256, 4).n_steps == params["n_steps"]
        assert manifest["stages"][name]["tuned_params"] == params
        assert manifest["stages"][name]["hyperparameters"] == used
        assert re.search(rf"{name}: trial 1 \(2/2\) learning_rate=", result.out)
    # tiny2's trials start from the weights tiny2 itself starts from.
    assert "2 trials of 128 steps scored on validation, study 'ploutos-tiny2' in sqlite:///" \
        in result.out
    assert f"from {out / 'models' / 'tiny1_final.zip'}" in result.out

    # Resume: the study reached its budget, so the saved parameters are reused as they are.
    stage = panels[1][0]
    lines: list[str] = []
    run = RunContext(registry=Registry(pm), options=RunOptions(
        out_dir=out, data=DataOptions(source="recording"), device="cpu", progress=False,
        auto_optimize=True, trials=2), echo=lines.append)
    hp = tune_stage(prepare_stage(run, stage, panel=panels[1][1]), None)
    assert hp.learning_rate == saved["params"]["learning_rate"]
    assert "already ran its 2 trials" in lines[0]
    assert finished_numbers(saved["storage"], "ploutos-tiny2") == [0, 1]


def test_tuning_refuses_prices_from_the_test_split() -> None:
    stage = make_tiny_stage()
    panel = load_stage_panel(SyntheticSource(), stage, DataOptions(source="synthetic"),
                             through="test")
    with pytest.raises(DataError, match="tuning must not see the test split"):
        check_no_test_data(stage, panel)


def test_a_storage_in_a_missing_folder_or_under_a_file_is_refused(run_cli, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                   ) -> None:
    """Issue 14: nothing is created for a bad storage path, and no empty stage folder
    is left behind."""
    stage_file = tmp_path / "tiny.toml"
    stage_file.write_text(TUNED_TOML.format(gate1=-100.0))
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    cases = [(f"sqlite:///{tmp_path / 'missing' / 'study.db'}", "does not exist; create it"),
             (f"sqlite:///{a_file / 'study.db'}", "is a file, not a folder"),
             (str(tmp_path / "missing" / "study.journal"), "does not exist; create it")]
    for storage, message in cases:
        out = tmp_path / "out"
        result = run_cli("tune", "--stage", "tiny1", "--stage-file", str(stage_file), "--source",
                         "synthetic", "--storage", storage, "--trials", "1", "--sampler-seed",
                         "1", "--out", str(out))
        assert result.code == 1 and message in result.err, result
        assert len(result.err.splitlines()) == 1
        assert not (tmp_path / "missing").exists()
        assert not (out / "models" / "tiny1").exists()


def test_a_postgresql_url_uses_the_installed_psycopg_driver() -> None:
    from ploutos_plugins.optuna_tuner import postgres_driver

    url = postgres_driver("postgresql://user:pw@db.example:5432/studies")
    assert url in ("postgresql+psycopg://user:pw@db.example:5432/studies",
                   "postgresql://user:pw@db.example:5432/studies")  # psycopg2 installed: kept
    assert postgres_driver("sqlite:///x.db") == "sqlite:///x.db"
    assert postgres_driver("postgresql+psycopg2://h/d") == "postgresql+psycopg2://h/d"


def test_trials_train_in_the_stages_phases_shrunk_to_their_budget(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """tiny2 trains its first half on a universe with the transferred encoder fixed for
    its first quarter: so does every one of its tuning trials, over the trial's steps —
    hyperparameters tuned on another schedule than the stage's would be tuned for the
    wrong training."""
    import ploutos_core.training.builder as builder_module
    import ploutos_core.training.loop as loop_module

    text = TUNED_TOML.format(gate1=-100.0)
    tiny2 = text.index('name = "tiny2"')
    stage_file = tmp_path / "tiny.toml"
    stage_file.write_text(text[:tiny2] + text[tiny2:].replace(
        "[stage.hyperparameters]",
        '[stage.universe]\ntickers = ["P1", "P2", "P3", "P4"]\nfraction = 0.5\n\n'
        '[stage.transfer]\nparameters = ["encoder"]\nfreeze_fraction = 0.25\n\n'
        "[stage.hyperparameters]", 1))
    universe_envs: list[int] = []
    frozen: list[bool] = []
    build_universe_env = builder_module.build_universe_env
    set_trainable = loop_module.set_trainable

    def spy_universe(ctx: Any) -> Any:
        universe_envs.append(ctx.timesteps)
        return build_universe_env(ctx)

    def spy_trainable(agent: Any, prefixes: tuple[str, ...], trainable: bool) -> None:
        frozen.append(not trainable)
        set_trainable(agent, prefixes, trainable)

    monkeypatch.setattr(builder_module, "build_universe_env", spy_universe)
    monkeypatch.setattr(loop_module, "set_trainable", spy_trainable)
    out = tmp_path / "run"
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file",
                     str(stage_file), "--out", str(out), "--source", "synthetic",
                     "--no-progress", "--device", "cpu", "--auto-optimize", "--trials", "2")
    assert result.code == 0, result
    assert "tiny2: tuning learning_rate, n_steps, ent_coef with optuna: 2 trials of 128 " \
           "steps (the first 64 on sub-universes) scored on validation" in result.out
    # The tiny stages have no selection window, so their trials are scored on validation.
    assert re.search(r"tiny2: trial 1 \(2/2\) .*: validation Sharpe -?\d", result.out)
    # Two trials, then the stage: each builds its universe episodes once and freezes the
    # encoder once (tiny1 has neither).
    assert len(universe_envs) == 3
    assert frozen == [True, False] * 3


def test_trial_phases_follow_the_stage_file_and_the_start_model(tmp_path: Path) -> None:
    import zipfile
    from types import SimpleNamespace

    from ploutos_core.config.stage import TransferSettings, UniverseSettings
    from ploutos_core.training.loop import Phases

    def model_of(stage: str) -> Path:
        path = tmp_path / f"{stage}_final.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("ploutos.json", json.dumps({"stage": stage}))
        return path

    stage = make_tiny_stage("wide", universe=UniverseSettings(tickers=("P1", "P2"),
                                                              fraction=0.5),
                            transfer=TransferSettings(parameters=("encoder",),
                                                      freeze_fraction=0.25))
    ctx = SimpleNamespace(stage=stage, universe=object())
    assert Phases.scaled(ctx, model_of("narrow"), 400) == Phases(400, 200, 100)  # type: ignore[arg-type]
    # Nothing is copied from a fresh start; a model of the stage itself is continued whole.
    assert Phases.scaled(ctx, None, 400) == Phases(400, 200, 0)  # type: ignore[arg-type]
    assert Phases.scaled(ctx, model_of("wide"), 400) == Phases(400, 200, 0)  # type: ignore[arg-type]
    no_universe = SimpleNamespace(stage=stage, universe=None)
    assert Phases.scaled(no_universe, None, 400) == Phases(400)  # type: ignore[arg-type]
