"""Model files record their action map; a model is never read under another one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ploutos_core.agents.ensemble import write_ensemble
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.errors import ModelError
from tests.conftest import TINY_TOML, CliResult


def tilted(path: Path, extra: str = "") -> Path:
    """The tiny curriculum with ``tilt`` actions in every stage."""
    path.write_text(TINY_TOML.format(gate1=-100.0).replace(
        "[stage.env]\n", f'[stage.env]\naction = "tilt"\n{extra}'))
    return path


def test_a_model_is_refused_under_another_action_map_and_warned_about_on_transfer(
        tiny_stage_file: Callable[..., Path], run_cli: Callable[..., CliResult],
        tmp_path: Path) -> None:
    softmax_file = str(tiny_stage_file())
    tilt_file = str(tilted(tmp_path / "tilt.toml"))
    out = tmp_path / "run"
    trained = run_cli("run", "stage", "tiny1", "--stage-file", softmax_file, "--source",
                      "synthetic", "--out", str(out), "--no-progress")
    assert trained.code == 0, trained
    final = out / "models" / "tiny1_final.zip"
    assert read_metadata(final)["actions"] == {"action": "softmax", "action_scale": 5.0}

    common = ("--stage", "tiny1", "--source", "synthetic", "--out", str(out))
    assert run_cli("evaluate", str(final), "--stage-file", softmax_file, *common).code == 0
    refused = run_cli("evaluate", str(final), "--stage-file", tilt_file, *common)
    assert refused.code == 1
    assert refused.err.count("\n") == 1, refused.err
    assert ("was trained with softmax actions (action_scale 5), stage 'tiny1' uses tilt "
            "actions (tilt_scale 1, max_cash 1)") in refused.err

    # Another tilt_scale is another map too.
    scaled = str(tilted(tmp_path / "scaled.toml", "tilt_scale = 0.5\n"))
    tilt_run = tmp_path / "tilt-run"
    assert run_cli("run", "stage", "tiny1", "--stage-file", tilt_file, "--source", "synthetic",
                   "--out", str(tilt_run), "--no-progress").code == 0
    tilt_final = tilt_run / "models" / "tiny1_final.zip"
    assert run_cli("evaluate", str(tilt_final), "--stage-file", tilt_file, *common).code == 0
    assert "tilt_scale 0.5" in run_cli("evaluate", str(tilt_final), "--stage-file", scaled,
                                       *common).err

    # Fine-tuning under a new map is allowed, with a warning saying what it means.
    moved = run_cli("run", "stage", "tiny2", "--stage-file", tilt_file, "--source",
                    "synthetic", "--load-model", str(final), "--out", str(tmp_path / "moved"),
                    "--no-progress")
    assert moved.code == 0, moved
    assert "must relearn what its actions do" in moved.err

    # An ensemble records its members' map, and refuses members of different maps.
    ensemble = write_ensemble([final, final], tmp_path / "ens.zip")
    assert read_metadata(ensemble)["actions"] == {"action": "softmax", "action_scale": 5.0}
    with pytest.raises(ModelError, match="must share an action map"):
        write_ensemble([final, tilt_final], tmp_path / "mixed.zip")
