"""The curriculum runner from the CLI: transfer, checkpoints, resume, determinism, gates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ploutos_core.agents.model_files import read_metadata
from ploutos_core.agents.sb3_agent import read_state_dict

SYNTHETIC = ("--source", "synthetic", "--no-progress")


def run_tiny(run_cli, stage_file: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file", str(stage_file),
                   "--out", str(out), *SYNTHETIC, *extra)


def test_curriculum_trains_each_stage_from_the_previous(run_cli, tiny_stage_file,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_tiny(run_cli, tiny_stage_file(), out)
    assert result.code == 0, result
    assert (out / "models" / "tiny1_final.zip").is_file()
    assert (out / "models" / "tiny2_final.zip").is_file()
    assert (out / "models" / "tiny1" / "ploutos_tiny1_256_steps.zip").is_file()
    assert f"transferred 18/18 tensors from {out / 'models' / 'tiny1_final.zip'}" in result.out
    assert read_metadata(out / "models" / "tiny2_final.zip")["start_from"] == \
        str(out / "models" / "tiny1_final.zip")
    assert (out / "reports" / "tiny2" / "validation.json").is_file()
    assert (out / "reports" / "run.json").is_file()
    assert "tiny1: trained 256 steps" in result.out


def test_scale_multiplies_timesteps(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_tiny(run_cli, tiny_stage_file(), out, "--scale", "2", "--stages", "1").code == 0
    assert read_metadata(out / "models" / "tiny1_final.zip")["num_timesteps"] == 512


def test_run_stage_from_load_model_with_or_without_zip(run_cli, tiny_stage_file,
                                                       tmp_path: Path) -> None:
    stage_file = tiny_stage_file()
    first = tmp_path / "first"
    assert run_tiny(run_cli, stage_file, first, "--stages", "tiny1").code == 0
    model = first / "models" / "tiny1_final"  # no .zip, as in the docs
    second = run_cli("run", "stage", "tiny2", "--stage-file", str(stage_file), "--load-model",
                     str(model), "--out", str(tmp_path / "second"), *SYNTHETIC)
    assert second.code == 0, second
    assert "transferred 18/18 tensors" in second.out


def test_incompatible_load_model_is_one_line(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.zip"
    bogus.write_text("not a model")
    result = run_cli("run", "stage", "tiny1", "--stage-file", str(tiny_stage_file()),
                     "--load-model", str(bogus), "--out", str(tmp_path / "o"), *SYNTHETIC)
    assert result.code == 1
    assert result.err.startswith("Error: ") and result.err.count("\n") == 1
    assert "not a model file" in result.err
    missing = run_cli("run", "stage", "tiny1", "--stage-file", str(tiny_stage_file()),
                      "--load-model", str(tmp_path / "absent"), "--out", str(tmp_path / "o2"),
                      *SYNTHETIC)
    assert missing.code == 1 and "no model file at" in missing.err


def test_cuda_without_gpu_is_one_line(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = run_tiny(run_cli, tiny_stage_file(), tmp_path / "o", "--device", "cuda")
    assert result.code == 1
    assert "--device cuda was requested but no CUDA GPU is available" in result.err
    assert not (tmp_path / "o" / "models").exists()


def test_same_seed_same_weights(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    stage_file = tiny_stage_file()
    for name in ("a", "b", "c"):
        seed = "1" if name != "c" else "2"
        assert run_tiny(run_cli, stage_file, tmp_path / name, "--stages", "tiny1",
                        "--seed", seed).code == 0
    weights = {name: read_state_dict(tmp_path / name / "models" / "tiny1_final.zip")
               for name in "abc"}
    for key, tensor in weights["a"].items():
        torch.testing.assert_close(weights["b"][key], tensor, rtol=0, atol=0)
    assert any(not torch.equal(weights["c"][k], t) for k, t in weights["a"].items())


def test_earlier_outputs_are_not_overwritten(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    stage_file = tiny_stage_file()
    out = tmp_path / "run"
    assert run_tiny(run_cli, stage_file, out, "--stages", "tiny1").code == 0
    before = (out / "models" / "tiny1_final.zip").read_bytes()
    again = run_tiny(run_cli, stage_file, out, "--stages", "tiny1")
    assert again.code == 1
    assert "already holds outputs of an earlier run; pass --resume" in again.err
    assert (out / "models" / "tiny1_final.zip").read_bytes() == before
    assert run_tiny(run_cli, stage_file, out, "--stages", "tiny1", "--overwrite").code == 0


def test_failed_gate_stops_the_curriculum_and_keeps_the_model(run_cli, tiny_stage_file,
                                                              tmp_path: Path) -> None:
    stage_file = tiny_stage_file(gate1=50.0)
    out = tmp_path / "run"
    result = run_tiny(run_cli, stage_file, out)
    assert result.code == 1
    assert "tiny1: validation Sharpe" in result.err and "below the gate 50.00" in result.err
    assert "--resume --ignore-gates" in result.err
    assert not (out / "models" / "tiny1_final.zip").exists()
    assert (out / "models" / "tiny1" / "ploutos_tiny1_256_steps.zip").is_file()
    assert not (out / "models" / "tiny2").exists()
    resumed = run_tiny(run_cli, stage_file, out, "--resume", "--ignore-gates")
    assert resumed.code == 0, resumed
    assert "resuming from" in resumed.out and "missed (ignored: --ignore-gates)" in resumed.out
    assert (out / "models" / "tiny2_final.zip").is_file()
    import json

    manifest = json.loads((out / "reports" / "run.json").read_text())
    assert manifest["stages"]["tiny1"]["gate_ignored"] is True


def test_resume_skips_finished_stages(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    stage_file = tiny_stage_file()
    out = tmp_path / "run"
    assert run_tiny(run_cli, stage_file, out).code == 0
    again = run_tiny(run_cli, stage_file, out, "--resume")
    assert again.code == 0
    assert "tiny1: already finished" in again.out and "tiny2: already finished" in again.out


LONG_STAGE = """
[stage]
name = "long"
tickers = ["AAA", "BBB"]
timesteps = 16384
n_envs = 4
[stage.hyperparameters]
n_steps = 128
batch_size = 256
n_epochs = 2
hidden_size = 16
[stage.splits]
train = { start = 2010-01-01, end = 2012-12-31 }
validation = { start = 2013-01-01, end = 2013-12-31 }
test = { start = 2014-01-01, end = 2014-12-31 }
[stage.gate]
min_validation_sharpe = -100.0
[stage.env]
episode_length = 64
window = 4
"""


def start_training(stage_file: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from ploutos_core.cli import entry_point; entry_point()",
               "run", "stage", "long", "--stage-file", str(stage_file), "--out", str(out),
               "--checkpoint-freq", "1024", *SYNTHETIC, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_checkpoints(out: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((out / "models" / "long").glob("ploutos_long_*_steps.zip"))
        if len(found) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow  # subprocess training: tox -e slow (issue 13)
@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_interrupted_stage_resumes_from_newest_checkpoint(tmp_path: Path, how: str) -> None:
    stage_file = tmp_path / "long.toml"
    stage_file.write_text(LONG_STAGE)
    out = tmp_path / "run"
    process = start_training(stage_file, out)
    wait_for_checkpoints(out, 2, process)
    process.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    if how == "sigterm":
        assert process.returncode == 143  # SIGTERM, as a shell reports it (issue 14)
        assert "stopped by SIGTERM" in err and "--resume" in err
    else:
        assert process.returncode == -signal.SIGKILL
    checkpoints = sorted(int(p.name.split("_")[2]) for p in
                         (out / "models" / "long").glob("ploutos_long_*_steps.zip"))
    assert checkpoints and checkpoints[-1] < 16384
    assert not (out / "models" / "long_final.zip").exists()
    resumed = start_training(stage_file, out, "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"at step {checkpoints[-1]:,}" in stdout
    final = read_metadata(out / "models" / "long_final.zip")
    assert final["num_timesteps"] == 16384


def test_bad_input_leaves_no_files_behind(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file",
                     str(tiny_stage_file()), "--out", str(out), "--source", "csv",
                     "--data-dir", str(tmp_path / "no-such-dir"), "--no-progress")
    assert result.code == 1
    assert result.err == (f"Error: data directory {tmp_path / 'no-such-dir'} does not exist; "
                          f"check --data-dir or PLOUTOS_DATA_DIR\n")
    assert not out.exists() or not any(out.rglob("*"))
