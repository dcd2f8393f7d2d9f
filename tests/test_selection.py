"""Issue 11: model selection on a window carved from the end of the train split, never on
validation — training ends before the window, and the best model there is promoted."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import attrs

from ploutos_core import Splits, get_plugin_manager, hookimpl
from ploutos_core.config.stage import stage_to_toml
from ploutos_core.data.panel import DateRange
from ploutos_plugins.portfolio_env import PortfolioEnvBuilder
from tests.conftest import make_tiny_stage

WINDOW = DateRange(dt.date(2012, 7, 1), dt.date(2012, 12, 31))


class SplitRecorder:
    """The portfolio env builder, remembering which splits and modes were built."""

    def __init__(self) -> None:
        self.built: list[tuple[str, str]] = []

    @hookimpl
    def ploutos_register_env_builders(self, register: Any) -> None:
        recorder = self

        class Recording(PortfolioEnvBuilder):
            name = "recording"

            def build(self, request: Any) -> Any:
                recorder.built.append((request.split, request.mode))
                return super().build(request)

        register(Recording())


def _stage_file(tmp_path: Path, **changes: Any) -> Path:
    stage = make_tiny_stage("picky", timesteps=1024, env_builder="recording",
                            splits=attrs.evolve(Splits(), train=DateRange(dt.date(2010, 1, 1),
                                                                          dt.date(2012, 12, 31)),
                                                validation=DateRange(dt.date(2013, 1, 1),
                                                                     dt.date(2013, 12, 31)),
                                                test=DateRange(dt.date(2014, 1, 1), None),
                                                selection=WINDOW), **changes)
    path = tmp_path / "picky.toml"
    path.write_text(stage_to_toml(stage))
    return path


def test_the_best_model_on_the_window_is_promoted_and_judged(run_cli: Any,
                                                            tmp_path: Path) -> None:
    recorder = SplitRecorder()
    pm = get_plugin_manager(plugins=[("recorder", recorder)])
    path = _stage_file(tmp_path, selection_every=256, promote="best")
    out = tmp_path / "run"
    result = run_cli("run", "stage", "picky", "--stage-file", str(path), "--source",
                     "synthetic", "--out", str(out), "--no-progress", pm=pm)
    assert result.code == 0, result
    # Training ran on the train split without the window; selection backtested the window.
    assert ("fit", "train") in recorder.built and ("selection", "backtest") in recorder.built
    assert ("train", "train") not in recorder.built
    assert "promoting the best model on the selection window" in result.out
    best = out / "models" / "picky" / "best.zip"
    final = out / "models" / "picky_final.zip"
    assert best.read_bytes() == final.read_bytes()
    with zipfile.ZipFile(final) as archive:
        meta = json.loads(archive.read("ploutos.json"))
    assert meta["selection_split"] == "selection" and meta["tickers"] == ["AAA", "BBB"]
    report = json.loads((out / "reports" / "picky" / "validation.json").read_text())
    assert report["model"] == str(best)  # the promoted model is the one judged


def test_promote_best_without_evaluations_is_refused(run_cli: Any, tmp_path: Path) -> None:
    pm = get_plugin_manager(plugins=[("recorder", SplitRecorder())])
    result = run_cli("run", "stage", "picky", "--stage-file",
                     str(_stage_file(tmp_path, promote="best")), "--source", "synthetic",
                     "--out", str(tmp_path / "never"), pm=pm)
    assert result.code == 1 and "needs evaluations on the selection window" in result.err
