"""Issue 11: seed ensembles average their members' target weights and load like a model."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ploutos_core.agents.ensemble import write_ensemble
from ploutos_core.errors import ModelError


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two tiny2 models trained with different seeds, and the stage file."""
    from ploutos_core.cli import main
    from tests.conftest import TINY_TOML

    root = tmp_path_factory.mktemp("ensemble")
    stage_file = root / "tiny.toml"
    stage_file.write_text(TINY_TOML.format(gate1=-100.0))
    for seed in (0, 1):
        code = main(["run", "stage", "tiny2", "--stage-file", str(stage_file), "--source",
                     "synthetic", "--out", str(root / f"seed{seed}"), "--seed", str(seed),
                     "--no-progress"])
        assert code == 0
    return (root / "seed0" / "models" / "tiny2_final.zip",
            root / "seed1" / "models" / "tiny2_final.zip", stage_file)


def _evaluate(run_cli: Any, model: Path, stage_file: Path, out: Path) -> dict[str, Any]:
    result = run_cli("evaluate", str(model), "--stage-file", str(stage_file), "--source",
                     "synthetic", "--out", str(out))
    assert result.code == 0, result
    return json.loads((out / "reports" / "tiny2" / "validation.json").read_text())


def test_an_ensemble_of_identical_members_equals_the_member(run_cli: Any, members: Any,
                                                            tmp_path: Path) -> None:
    first, _, stage_file = members
    ensemble = tmp_path / "same.zip"
    made = run_cli("ensemble", "make", str(first), str(first), "--out", str(ensemble))
    assert made.code == 0, made
    alone = _evaluate(run_cli, first, stage_file, tmp_path / "alone")
    together = _evaluate(run_cli, ensemble, stage_file, tmp_path / "together")
    assert together["agent"]["sharpe"] == pytest.approx(alone["agent"]["sharpe"], abs=1e-5)
    assert together["agent"]["final_value"] == pytest.approx(alone["agent"]["final_value"],
                                                             rel=1e-6)


def test_an_ensemble_holds_the_mean_of_its_members_targets(run_cli: Any, members: Any,
                                                           tmp_path: Path) -> None:
    import pandas as pd

    first, second, stage_file = members
    ensemble = write_ensemble([first, second], tmp_path / "pair.zip")
    with zipfile.ZipFile(ensemble) as archive:
        assert {"ploutos.json", "members/0.zip", "members/1.zip"} <= set(archive.namelist())
        meta = json.loads(archive.read("ploutos.json"))
    assert meta["algorithm"] == "ensemble" and meta["stage"] == "tiny2"
    assert [m["seed"] for m in meta["members"]] == [0, 1]
    daily = {}
    for name, model in (("a", first), ("b", second), ("ab", ensemble)):
        _evaluate(run_cli, model, stage_file, tmp_path / name)
        frame = pd.read_csv(tmp_path / name / "reports" / "tiny2" / "validation_daily.csv")
        daily[name] = frame[frame.strategy == "agent"].filter(like="weight_").to_numpy()
    # Day one, from cash, every agent trades straight to its target: the ensemble's is the mean.
    np.testing.assert_allclose(daily["ab"][0], (daily["a"][0] + daily["b"][0]) / 2, atol=1e-5)


def test_an_ensemble_starts_a_stage_from_its_first_member(run_cli: Any, members: Any,
                                                         tmp_path: Path) -> None:
    first, second, stage_file = members
    ensemble = write_ensemble([first, second], tmp_path / "pair.zip")
    result = run_cli("run", "stage", "tiny1", "--stage-file", str(stage_file), "--source",
                     "synthetic", "--out", str(tmp_path / "run"), "--load-model", str(ensemble),
                     "--no-progress")
    assert result.code == 0, result
    assert "from the first member of the ensemble" in result.out


def test_bad_ensembles_are_refused(run_cli: Any, members: Any, tmp_path: Path) -> None:
    first, second, _ = members
    with pytest.raises(ModelError, match="at least two models"):
        write_ensemble([first], tmp_path / "one.zip")
    pair = write_ensemble([first, second], tmp_path / "pair.zip")
    nested = run_cli("ensemble", "make", str(pair), str(first), "--out", str(tmp_path / "n.zip"))
    assert nested.code == 1 and "is an ensemble itself" in nested.err
    assert not (tmp_path / "n.zip").exists()


@pytest.mark.slow
def test_ensemble_train_makes_and_evaluates_one_ensemble_per_stage(run_cli: Any,
                                                                   tmp_path: Path) -> None:
    from tests.conftest import TINY_TOML

    stage_file = tmp_path / "tiny.toml"
    stage_file.write_text(TINY_TOML.format(gate1=-100.0))
    result = run_cli("ensemble", "train", "--curriculum", "tiny", "--seeds", "0,1",
                     "--stage-file", str(stage_file), "--source", "synthetic", "--out",
                     str(tmp_path / "ens"), "--no-progress")
    assert result.code == 0, result
    for stage in ("tiny1", "tiny2"):
        assert (tmp_path / "ens" / "models" / f"{stage}_ensemble.zip").is_file()
        assert (tmp_path / "ens" / "reports" / stage / "validation.json").is_file()
        assert f"{stage} ensemble of 2: validation Sharpe" in result.out
