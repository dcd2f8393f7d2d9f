"""CUDA checks, run by ``tox -e gpu`` on a machine with a GPU (skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ploutos_core.agents.model_files import read_metadata
from ploutos_core.agents.sb3_agent import read_state_dict

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_auto_picks_cuda_and_trains(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file",
                     str(tiny_stage_file()), "--source", "synthetic", "--out", str(tmp_path),
                     "--no-progress", "--device", "auto")
    assert result.code == 0, result
    assert "(4 envs, cuda)" in result.out
    assert "transferred 18/18 tensors" in result.out
    final = tmp_path / "models" / "tiny2_final.zip"
    assert read_metadata(final)["num_timesteps"] >= 256
    # Saved weights load on a CPU-only machine.
    assert all(t.device.type == "cpu" for t in read_state_dict(final).values())


def test_cuda_model_evaluates_on_cpu(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    stage_file = str(tiny_stage_file())
    assert run_cli("run", "stage", "tiny1", "--stage-file", stage_file, "--source", "synthetic",
                   "--out", str(tmp_path), "--no-progress", "--device", "cuda").code == 0
    result = run_cli("evaluate", str(tmp_path / "models" / "tiny1_final"), "--stage", "tiny1",
                     "--stage-file", stage_file, "--source", "synthetic", "--device", "cpu",
                     "--out", str(tmp_path / "eval"))
    assert result.code == 0, result
