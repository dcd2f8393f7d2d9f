"""Issue 12: ``ploutos walkforward`` and ``ploutos retrain``.

The central test perturbs every price on or after a day and reruns the walk-forward:
the folds that start on or before that day must train the same models, and every
decision before that day must be the same — no fold sees a later price.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ploutos
from ploutos_core import (
    ConfigError,
    DataRequest,
    DataSource,
    Registry,
    get_plugin_manager,
    hookimpl,
    read_metadata,
)
from ploutos_plugins.synthetic_source import SyntheticSource
from tests.trading_helpers import TradingPlugin, save_probe_model, trading_stage

STAGE = trading_stage()
PERIOD = {"start": "2013-01-01", "end": "2013-06-28", "retrain_every": 42}


class Perturbed(DataSource):
    """The synthetic market, with every price from ``cut`` on moved by a random walk."""

    name = "perturbed"
    cut = "2100-01-01"

    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        frames = dict(SyntheticSource().fetch(request))
        for ticker, frame in frames.items():
            frame = frame.copy()
            later = frame.index >= pd.Timestamp(self.cut)
            rng = np.random.default_rng(abs(hash(ticker)) % 2**32)
            factor = np.exp(np.cumsum(0.03 * rng.standard_normal(int(later.sum()))))
            for column in ("open", "high", "low", "close"):
                frame.loc[later, column] = frame.loc[later, column] * factor
            frames[ticker] = frame
        return frames


class Sources:
    def __init__(self, source: Perturbed) -> None:
        self.source = source

    @hookimpl
    def ploutos_register_data_sources(self, register: Any) -> None:
        register(self.source)


def registry_with(source: Perturbed | None = None, stage: Any = STAGE) -> Registry:
    plugins: list[tuple[str, object]] = [("trading", TradingPlugin(stage))]
    if source is not None:
        plugins.append(("perturbed", Sources(source)))
    return Registry(get_plugin_manager(plugins=plugins))


def run(out: Path, registry: Registry, source: str = "synthetic", **changes: Any) -> Any:
    settings: dict[str, Any] = {**PERIOD, "steps": 256, "out_dir": out, "source": source,
                                "registry": registry, "loggers": (), "echo": lambda _: None}
    settings.update(changes)
    return ploutos.walkforward(settings.pop("stage", "trader"), **settings)


def agent_weights(walk: Any) -> pd.DataFrame:
    daily = walk.daily()
    agent = daily[daily.strategy == "agent"].set_index("date")
    return agent[[c for c in agent.columns if c.startswith("weight_")]]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return run(tmp_path_factory.mktemp("walk"), registry_with())


def test_folds_retrain_on_schedule_and_trade_every_day_once(baseline: Any) -> None:
    folds = [item.fold for item in baseline.folds]
    assert [f.first.isoformat() for f in folds] == ["2013-01-01", "2013-02-28", "2013-04-29",
                                                    "2013-06-26"]
    for before, after in itertools.pairwise(folds):
        assert before.train.end < before.first and before.last < after.first
        assert (after.first_row - before.first_row) == 42
    daily = baseline.daily()
    days = {name: list(group.date) for name, group in daily.groupby("strategy")}
    assert len({tuple(d) for d in days.values()}) == 1  # baselines on exactly the same days
    agent_days = days["agent"]
    assert agent_days[0] == pd.Timestamp("2013-01-01")
    assert daily.next_date.max() == pd.Timestamp("2013-06-28")
    assert baseline.result.split == "walkforward" and not baseline.result.in_sample
    files = baseline.files
    for path in (files.json, files.markdown, files.plot, files.daily,
                 files.json.with_name("walkforward_folds.csv")):
        assert path.is_file(), path
    table = pd.read_csv(files.json.with_name("walkforward_folds.csv"))
    assert list(table.fold) == [1, 2, 3, 4] and table.days.sum() == len(agent_days)
    plan = json.loads((baseline.directory / "plan.json").read_text())
    assert plan["retrain_every"] == 42 and len(plan["folds"]) == 4
    # Each fold starts from the fold before.
    assert baseline.folds[1].start_from == baseline.folds[0].model


def test_the_stitched_days_are_what_each_fold_model_decides(baseline: Any) -> None:
    # Over the first fold, the stitched series is the first model's backtest from --from:
    # the signal of that model (a replay from the same day) holds the same weights.
    first = baseline.folds[0]
    weights = agent_weights(baseline)
    signal = ploutos.signal(first.model, as_of=first.fold.last, start=first.fold.first,
                            source="synthetic", registry=registry_with())
    assert np.array_equal(signal.weights, weights.loc[pd.Timestamp(first.fold.last)].to_numpy())


@pytest.mark.parametrize("offset", [0, 5])
def test_no_fold_sees_a_price_on_or_after_its_first_trading_day(
        baseline: Any, tmp_path: Path, offset: int) -> None:
    fold = baseline.folds[2].fold  # the third fold: two folds before it, one after
    panel_dates = agent_weights(baseline).index
    cut = panel_dates[panel_dates.get_loc(pd.Timestamp(fold.first)) + offset]
    source = Perturbed()
    source.cut = str(cut.date())
    perturbed = run(tmp_path, registry_with(source), source="perturbed")
    for before, after in zip(baseline.folds, perturbed.folds, strict=True):
        same = after.fold.first <= cut.date()
        memory = read_metadata(before.model)["memory"], read_metadata(after.model)["memory"]
        # A fold's model digests every observation and reward it trained on.
        assert (before.fingerprint == after.fingerprint) == same, after.fold
        if same:
            assert memory[0] == memory[1], after.fold
    original, changed = agent_weights(baseline), agent_weights(perturbed)
    earlier = original.index < cut
    pd.testing.assert_frame_equal(original[earlier], changed[earlier])
    assert not np.array_equal(original[~earlier].to_numpy(), changed[~earlier].to_numpy())


def test_resume_keeps_finished_folds_and_gives_the_same_result(baseline: Any,
                                                              tmp_path: Path) -> None:
    registry = registry_with()
    first = run(tmp_path, registry)
    # Interrupted during the third fold: its record and everything after it are missing.
    (first.directory / "fold_003" / "fold.json").unlink()
    for path in (first.directory / "fold_004").rglob("*"):
        if path.is_file():
            path.unlink()
    with pytest.raises(ConfigError, match="holds an earlier walk-forward; pass --resume"):
        run(tmp_path, registry)
    with pytest.raises(ConfigError, match="planned with other retrain_every"):
        run(tmp_path, registry, resume=True, retrain_every=21)
    lines: list[str] = []
    resumed = run(tmp_path, registry, resume=True, echo=lines.append)
    assert "fold_001: already trained" in "\n".join(lines)
    assert "fold_003: continuing at step 256 of 256 steps" in "\n".join(lines)
    assert "fold_004: training" in "\n".join(lines)
    pd.testing.assert_frame_equal(agent_weights(resumed), agent_weights(baseline))
    replaced = run(tmp_path, registry, overwrite=True)
    assert list(tmp_path.glob("walkforward/trader.replaced-*"))
    pd.testing.assert_frame_equal(agent_weights(replaced), agent_weights(baseline))


def test_walkforward_cli_and_its_refusals(tmp_path: Path, run_cli: Any) -> None:
    pm = get_plugin_manager(plugins=[("trading", TradingPlugin(STAGE))])
    model = save_probe_model(Registry(pm), STAGE, tmp_path / "start.zip")
    args = ["walkforward", "--stage", "trader", "--from", "2013-01-01", "--to", "2013-04-30",
            "--retrain-every", "63", "--steps", "128", "--source", "synthetic", "--out",
            str(tmp_path), "--logger", "jsonl", "--no-progress"]
    result = run_cli(*args, "--load-model", str(model), "--window", "rolling:200", pm=pm)
    assert result.code == 0, result
    assert "walkforward split" in result.out and "walkforward_folds.csv" in result.out
    record = json.loads((tmp_path / "walkforward" / "trader" / "fold_001" /
                         "fold.json").read_text())
    assert record["start_from"] == str(model)
    # A rolling window of 200 trading days (the synthetic calendar has every weekday).
    assert np.datetime64(record["train_start"]) == np.busday_offset("2013-01-01", -200)
    for extra, message in [(["--window", "rolling:x"], "use expanding or rolling:N_DAYS"),
                           (["--overwrite", "--from", "2012-02-01"], "only 22 trading days"),
                           (["--overwrite", "--to", "2012-12-01"], "must be after --from"),
                           (["--overwrite", "--load-model", str(tmp_path / "nope")],
                            "no model file")]:
        refused = run_cli(*args, *extra, pm=pm)
        assert refused.code == 1 and message in refused.err, (extra, refused)


def test_retrain_promotes_only_a_procedure_that_is_not_worse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any) -> None:
    pm = get_plugin_manager(plugins=[("trading", TradingPlugin(STAGE))])
    registry = Registry(pm)
    model = save_probe_model(registry, STAGE, tmp_path / "start.zip")
    common = {"holdout": 42, "steps": 256, "out_dir": tmp_path, "source": "synthetic",
              "registry": registry, "loggers": (), "echo": lambda _: None}
    with pytest.raises(ConfigError, match="has no production model yet; pass --model"):
        ploutos.retrain("trader", as_of="2013-06-28", **common)
    first = ploutos.retrain("trader", model=model, as_of="2013-06-28", **common)
    decision = first.decision
    assert first.promoted == (decision["shadow_sharpe"] >= decision["previous_sharpe"])
    assert decision["holdout_first"] == "2013-05-01" and decision["holdout_last"] == "2013-06-28"
    assert decision["shadow_trained_through"] == "2013-04-30"
    again = run_cli("retrain", "--stage", "trader", "--as-of", "2013-06-28", "--holdout", "42",
                    "--steps", "256", "--source", "synthetic", "--out", str(tmp_path),
                    "--no-progress", pm=pm)
    assert again.code == 0 and "nothing changed" in again.out, again
    with pytest.raises(ConfigError, match="already has a production lineage"):
        ploutos.retrain("trader", model=model, as_of="2013-09-30", **common)

    import ploutos_core.walkforward.retrain as module

    sharpes = iter([1.0, 0.5])  # the production model, then the shadow: worse
    monkeypatch.setattr(module, "_sharpe", lambda result: next(sharpes))
    current = (tmp_path / "production" / "trader" / "current.zip").read_bytes()
    kept = ploutos.retrain("trader", as_of="2013-09-30", **common)
    assert not kept.promoted and "kept the production model" in kept.describe()
    assert (tmp_path / "production" / "trader" / "current.zip").read_bytes() == current
    lineage = json.loads(kept.lineage.read_text())
    generations = lineage["generations"]
    assert generations[0]["origin"] == str(model) and generations[0]["parent"] is None
    if first.promoted:
        assert generations[1]["parent"] == 0 and generations[1]["trained_through"] == \
            "2013-06-28" and generations[1]["data_fingerprint"]
    assert [d["promoted"] for d in lineage["decisions"]] == [first.promoted, False]
    assert lineage["current"] == (1 if first.promoted else 0)


@pytest.mark.slow
def test_a_killed_walkforward_resumes(tmp_path: Path, tiny_stage_file: Any) -> None:
    """A real PPO walk-forward killed with SIGKILL mid-run continues with --resume."""
    stage_file = tiny_stage_file()
    args = [sys.executable, "-m", "ploutos_core.cli", "walkforward", "--stage", "tiny1",
            "--stage-file", str(stage_file), "--from", "2013-01-01", "--to", "2013-06-28",
            "--retrain-every", "42", "--steps", "2048", "--source", "synthetic", "--out",
            str(tmp_path), "--no-progress", "--logger", "jsonl"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    second = tmp_path / "walkforward" / "tiny1" / "fold_002" / "models"
    while not second.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    assert (tmp_path / "walkforward" / "tiny1" / "fold_001" / "fold.json").is_file()
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "fold_001: already trained" in resumed.stdout
    assert (tmp_path / "reports" / "tiny1" / "walkforward_daily.csv").is_file()


@pytest.mark.slow
def test_no_look_ahead_with_a_real_ppo_policy(tmp_path: Path) -> None:
    """The perturbation test with PPO: the folds before the cut train bit-identical
    networks (same seed, same data), and their decisions before the cut are the same."""
    import torch

    from ploutos_core.agents.sb3_agent import read_state_dict

    stage = trading_stage(algorithm="ppo")
    period = {"start": "2013-01-01", "end": "2013-04-30", "retrain_every": 42,
              "steps": 1024, "stage": "trader"}
    first = run(tmp_path / "a", registry_with(stage=stage), **period)
    cut = first.folds[1].fold.first
    source = Perturbed()
    source.cut = cut.isoformat()
    second = run(tmp_path / "b", registry_with(source, stage=stage), source="perturbed",
                 **period)
    for before, after in zip(first.folds, second.folds, strict=True):
        if after.fold.first <= cut:
            a, b = read_state_dict(before.model), read_state_dict(after.model)
            assert a.keys() == b.keys()
            assert all(torch.equal(a[key], b[key]) for key in a), after.fold
    original, changed = agent_weights(first), agent_weights(second)
    earlier = original.index < pd.Timestamp(cut)
    pd.testing.assert_frame_equal(original[earlier], changed[earlier])
