"""Observability (issue 6): logger plugins, TensorBoard, W&B, JSON lines, periodic
evaluation with best.zip, and the run manifest ``reports/run.json``."""

from __future__ import annotations

import json
import math
import socket
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ploutos_core import (
    LoggerFactory,
    LoggerRun,
    MetricLogger,
    Registry,
    StageResult,
    get_plugin_manager,
    hookimpl,
)
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.config.stage import stage_to_dict
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.tracking.session import logger_names
from ploutos_core.training.monitor import METRICS, standard_metrics
from ploutos_core.training.runner import CurriculumRunner, RunOptions
from ploutos_plugins import loggers as builtin_loggers
from tests.conftest import make_tiny_stage

EVAL_FREQ = 128


# --- a throwaway logger plugin -----------------------------------------------------------


class RecordingLogger(MetricLogger):
    """Keeps every write as ``(stage, step, metrics)``."""

    def __init__(self, sink: list[tuple[str, int, dict[str, float]]], stage: str) -> None:
        self.sink, self.stage = sink, stage
        self.closed = False

    def write(self, metrics: Mapping[str, float], step: int) -> None:
        self.sink.append((self.stage, step, dict(metrics)))

    def close(self) -> None:
        self.closed = True


class RecordingFactory(LoggerFactory):
    name = "fake"
    description = "records metrics for a test"

    def __init__(self) -> None:
        self.records: list[tuple[str, int, dict[str, float]]] = []
        self.runs: list[LoggerRun] = []
        self.opened: list[RecordingLogger] = []

    def open(self, run: LoggerRun) -> MetricLogger:
        self.runs.append(run)
        self.opened.append(RecordingLogger(self.records, run.stage))
        return self.opened[-1]


class FakeLoggerPlugin:
    """Registers the ``fake`` logger."""

    def __init__(self) -> None:
        self.factory = RecordingFactory()

    @hookimpl
    def ploutos_register_loggers(self, register):  # type: ignore[no-untyped-def]
        register(self.factory)


def _refuse_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any connection off this machine fail, so 'offline' is proven, not assumed."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise OSError(f"test: network access to {host} refused")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def _run(out: Path, pm: Any, stages: list[Any], **options: Any) -> list[StageResult]:
    return CurriculumRunner(
        Registry(pm),
        RunOptions(out_dir=out, data=DataOptions(source="synthetic"), progress=False,
                   **options),
        echo=lambda _: None,
    ).run(stages)


@attrs.frozen
class Observed:
    out: Path
    wandb_dir: Path
    factory: RecordingFactory
    results: list[StageResult]
    warnings: list[str]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """One tiny stage (512 steps, evaluated every 128) with fake, TensorBoard, W&B
    (offline, no network) and JSON-lines loggers."""
    root = tmp_path_factory.mktemp("observed")
    plugin = FakeLoggerPlugin()
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("PLOUTOS_PLUGINS", "PLOUTOS_BLOCK_PLUGINS", "PLOUTOS_DATA_DIR",
                     "WANDB_PROJECT", "WANDB_RUN_GROUP"):
            mp.delenv(name, raising=False)
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(root / "wandb-dir"))
        (root / "wandb-dir").mkdir()
        _refuse_network(mp)
        pm = get_plugin_manager(plugins=[("fake-logger", plugin)])
        results = _run(root / "run", pm, [make_tiny_stage()], eval_freq=EVAL_FREQ,
                       loggers=("fake", "tensorboard", "wandb"))
    yield Observed(out=root / "run", wandb_dir=root / "wandb-dir", factory=plugin.factory,
                   results=results, warnings=[str(w.message) for w in caught])


def _names(records: list[tuple[str, int, dict[str, float]]]) -> set[str]:
    return {name for _, _, metrics in records for name in metrics}


# --- the metrics -------------------------------------------------------------------------


def test_fake_logger_plugin_receives_every_documented_metric(observed: Observed) -> None:
    missing = set(METRICS) - _names(observed.factory.records)
    assert not missing, f"never logged: {sorted(missing)}"
    for _, _, metrics in observed.factory.records:
        if "train/entropy_loss" in metrics:
            assert metrics["train/entropy"] == -metrics["train/entropy_loss"]
            assert metrics["train/policy_loss"] == metrics["train/policy_gradient_loss"]
    assert all(logger.closed for logger in observed.factory.opened)


def test_loggers_are_opened_once_per_stage_with_config_and_tags(observed: Observed) -> None:
    (run,) = observed.factory.runs
    assert run.stage == "tiny"
    assert run.log_dir == observed.out / "logs" / "tiny"
    assert run.project == "Ploutos_Curriculum"
    assert {"tiny", "seed-0", "from-scratch"} <= set(run.tags)
    assert run.config["seed"] == 0 and run.config["tickers"] == ["AAA", "BBB"]
    assert run.start_step == 0


def test_periodic_evaluation_runs_every_eval_freq_including_the_last_update(
        observed: Observed) -> None:
    steps = [step for _, step, metrics in observed.factory.records if "eval/sharpe" in metrics]
    assert steps == [128, 256, 384, 512]


def test_standard_metrics_renames_sb3_names_and_keeps_the_originals() -> None:
    named = standard_metrics({"train/policy_gradient_loss": 0.25, "train/entropy_loss": -1.5,
                              "train/value_loss": 2.0})
    assert named["train/policy_loss"] == 0.25 and named["train/entropy"] == 1.5
    assert named["train/policy_gradient_loss"] == 0.25 and named["train/value_loss"] == 2.0
    # An algorithm that already logs the standard name (A2C) keeps its value.
    assert standard_metrics({"train/policy_loss": 3.0, "train/policy_gradient_loss": 1.0}
                            )["train/policy_loss"] == 3.0


# --- TensorBoard -------------------------------------------------------------------------


def test_tensorboard_event_files_hold_every_metric(observed: Observed) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = observed.out / "logs" / "tiny"
    assert list(log_dir.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert set(METRICS) <= tags, sorted(set(METRICS) - tags)
    assert [e.step for e in events.Scalars("eval/sharpe")] == [128, 256, 384, 512]
    logged = [m["eval/sharpe"] for _, _, m in observed.factory.records if "eval/sharpe" in m]
    assert [e.value for e in events.Scalars("eval/sharpe")] == pytest.approx(logged)


# --- Weights & Biases --------------------------------------------------------------------


def test_wandb_offline_writes_a_run_directory_without_network(observed: Observed) -> None:
    runs = list((observed.wandb_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    (record,) = runs[0].glob("run-*.wandb")
    content = record.read_bytes()
    for name in ("train/policy_loss", "eval/sharpe", "episode/portfolio_value",
                 "Ploutos_Curriculum", "from-scratch"):
        assert name.encode() in content, name
    assert not [w for w in observed.warnings if "Weights & Biases" in w], observed.warnings
    assert not (observed.out / "wandb").exists()  # WANDB_DIR wins over <out>/wandb


def test_failing_wandb_init_warns_once_and_training_finishes(
        tmp_path: Path, pm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    def broken_init(**_: Any) -> Any:
        raise RuntimeError("wandb service unavailable")

    monkeypatch.setattr(wandb, "init", broken_init)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result,) = _run(tmp_path, pm, [make_tiny_stage(timesteps=128)], loggers=("wandb",))
    messages = [str(w.message) for w in caught if "Weights & Biases" in str(w.message)]
    assert len(messages) == 1, messages
    assert "wandb service unavailable" in messages[0]
    assert result.final_model is not None and result.final_model.exists()
    assert (tmp_path / "reports" / "tiny" / "metrics.jsonl").exists()  # jsonl is always on


def test_a_wandb_logging_failure_is_one_warning_then_a_no_op() -> None:
    class BrokenRun:
        finished = 0

        def log(self, data: Any, step: int) -> None:
            raise ConnectionError("lost")

        def finish(self, exit_code: int = 0) -> None:
            BrokenRun.finished += 1

    logger = builtin_loggers.WandbLogger(BrokenRun())
    with pytest.warns(UserWarning, match="Weights & Biases logging failed") as caught:
        logger.write({"train/value_loss": 1.0}, 1)
        logger.write({"train/value_loss": 1.0}, 2)
        logger.close()
    assert len(caught) == 1 and BrokenRun.finished == 1


def test_wandb_mode_respects_wandb_mode_then_credentials_and_network(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc-absent"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    assert builtin_loggers.wandb_mode() == ("online", None)
    monkeypatch.delenv("WANDB_MODE")
    mode, reason = builtin_loggers.wandb_mode()
    assert mode == "offline" and reason is not None and "API key" in reason
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr(builtin_loggers, "wandb_reachable", lambda: False)
    assert builtin_loggers.wandb_mode()[0] == "offline"
    monkeypatch.setattr(builtin_loggers, "wandb_reachable", lambda: True)
    assert builtin_loggers.wandb_mode() == ("online", None)


def test_default_loggers_are_tensorboard_and_jsonl(registry: Registry) -> None:
    assert logger_names(registry, None) == ["jsonl", "tensorboard"]
    assert logger_names(registry, ("wandb",)) == ["jsonl", "wandb"]


# --- JSON lines --------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_has_one_record_per_logging_step(observed: Observed) -> None:
    records = _read_jsonl(observed.out / "reports" / "tiny" / "metrics.jsonl")
    assert len(records) == len(observed.factory.records)
    for record, (_, step, metrics) in zip(records, observed.factory.records, strict=True):
        assert record["step"] == step and isinstance(record["time"], float)
        assert set(record) - {"step", "time"} == set(metrics)
    assert set(METRICS) <= {name for record in records for name in record}


def test_jsonl_appends_writes_null_for_non_finite_and_drops_records_past_a_resume(
        tmp_path: Path) -> None:
    factory = builtin_loggers.JsonLinesFactory()
    run = LoggerRun(stage="s", run_dir=tmp_path, log_dir=tmp_path / "logs" / "s",
                    report_dir=tmp_path / "reports" / "s")
    logger = factory.open(run)
    for step in (10, 20, 30):
        logger.write({"train/value_loss": float(step), "eval/sharpe": math.nan,
                      "x": math.inf}, step)
    logger.close()
    path = tmp_path / "reports" / "s" / "metrics.jsonl"
    first = _read_jsonl(path)
    assert [r["step"] for r in first] == [10, 20, 30]
    assert first[0]["eval/sharpe"] is None and first[0]["x"] is None
    # A plain reopen appends; a resume from step 20 first drops what came after it.
    logger = factory.open(run)
    logger.write({"train/value_loss": 1.0}, 40)
    logger.close()
    assert [r["step"] for r in _read_jsonl(path)] == [10, 20, 30, 40]
    logger = factory.open(attrs.evolve(run, start_step=20))
    logger.write({"train/value_loss": 2.0}, 25)
    logger.close()
    assert [r["step"] for r in _read_jsonl(path)] == [10, 20, 25]


# --- best.zip and the manifest -----------------------------------------------------------


def test_best_model_by_validation_sharpe_is_kept(observed: Observed) -> None:
    best = observed.out / "models" / "tiny" / "best.zip"
    assert best.exists()
    sharpes = [m["eval/sharpe"] for _, _, m in observed.factory.records if "eval/sharpe" in m]
    # The tiny stage has no selection window: models are selected on validation.
    assert read_metadata(best)["selection_split"] == "validation"
    assert read_metadata(best)["selection_sharpe"] == pytest.approx(max(sharpes))
    manifest = json.loads((observed.out / "reports" / "run.json").read_text())
    assert manifest["stages"]["tiny"]["best_model"] == str(best)
    assert manifest["stages"]["tiny"]["best_selection_sharpe"] == pytest.approx(max(sharpes))


def test_manifest_is_complete(observed: Observed) -> None:
    manifest = json.loads((observed.out / "reports" / "run.json").read_text())
    run = manifest["run"]
    assert run["seed"] == 0 and run["device"] == "cpu" and run["eval_freq"] == EVAL_FREQ
    assert run["loggers"] == ["jsonl", "fake", "tensorboard", "wandb"]
    assert run["options"]["data"]["source"] == "synthetic"
    assert run["options"]["out_dir"] == str(observed.out)
    assert isinstance(manifest["command"], list)
    software = manifest["software"]
    for package in ("ploutos", "torch", "stable-baselines3", "numpy", "tensorboard", "wandb"):
        assert software["packages"][package], package
    assert "git_commit" in software and "git_dirty" in software
    assert manifest["hardware"]["cpu_count"]
    stage = manifest["stages"]["tiny"]
    assert stage["config"] == json.loads(json.dumps(stage_to_dict(make_tiny_stage()),
                                                    default=str))
    assert stage["seed"] == 0 and stage["device"] == "cpu"
    assert stage["hyperparameters"]["n_steps"] == 32
    assert stage["start_from"] is None and stage["resumed_from"] is None
    data = stage["data"]
    assert data["source"] == "synthetic" and data["tickers"] == ["AAA", "BBB"]
    assert len(data["fingerprint"]) == 16
    assert stage["final_model"] == str(observed.results[0].final_model)


# --- the command line --------------------------------------------------------------------


def test_cli_curriculum_logs_one_tensorboard_run_per_stage_and_records_transfer(
        run_cli: Any, tiny_stage_file: Any, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "cli-run"
    result = run_cli("run", "curriculum", "--curriculum", "tiny",
                     "--stage-file", str(tiny_stage_file()), "--source", "synthetic",
                     "--out", str(out), "--no-progress", "--logger", "tensorboard",
                     "--eval-freq", str(EVAL_FREQ))
    assert result.code == 0, result
    for stage in ("tiny1", "tiny2"):
        events = EventAccumulator(str(out / "logs" / stage), size_guidance={"scalars": 0})
        events.Reload()
        assert {"train/policy_loss", "eval/sharpe", "time/steps_per_second"} <= \
            set(events.Tags()["scalars"]), stage
        assert _read_jsonl(out / "reports" / stage / "metrics.jsonl")
        assert (out / "models" / stage / "best.zip").exists()
    assert not (out / "wandb").exists()  # not requested
    manifest = json.loads((out / "reports" / "run.json").read_text())
    assert manifest["run"]["loggers"] == ["jsonl", "tensorboard"]
    assert manifest["stages"]["tiny1"]["start_from"] is None
    assert manifest["stages"]["tiny2"]["start_from"] == str(out / "models" / "tiny1_final.zip")
    assert manifest["stages"]["tiny2"]["config"]["tickers"] == ["AAA", "BBB", "CCC"]
