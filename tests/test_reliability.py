"""Issue 14: nothing lost, nothing mixed — run locks, honest --overwrite and --resume,
signals after training, corrupt checkpoints. docs/reliability.md lists these cases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ploutos_core import get_plugin_manager, hookimpl
from ploutos_core.runfiles.lock import LOCK_NAME
from tests.conftest import rewrite_member


def _run(run_cli: Any, stage_file: Path, out: Path, *extra: str, pm: Any = None) -> Any:
    return run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file", str(stage_file),
                   "--source", "synthetic", "--out", str(out), "--no-progress", *extra, pm=pm)


def _checkpoints(out: Path, stage: str) -> list[str]:
    return sorted(p.name for p in (out / "models" / stage).glob("ploutos_*_steps.zip"))


def test_a_second_process_is_refused_with_the_owners_pid(run_cli: Any, tiny_stage_file: Any,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path\n"
         "from ploutos_core.runfiles.lock import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n"
         "    print('locked', flush=True); time.sleep(60)\n", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = _run(run_cli, tiny_stage_file(), out)
        assert result.code == 1
        assert f"is in use by another Ploutos process (pid {holder.pid}" in result.err
        assert len(result.err.splitlines()) == 1
        assert not (out / "models").exists()
    finally:
        holder.kill()
        holder.wait()
    # The lock of a process killed with -9 is released by the kernel: the next run proceeds
    # and says whose lock it took over.
    done = _run(run_cli, tiny_stage_file(), out)
    assert done.code == 0, done
    assert f"taking over the lock of {out} left by pid {holder.pid}" in done.out


def test_overwrite_moves_earlier_outputs_aside_before_training(run_cli: Any,
                                                               tiny_stage_file: Any,
                                                               tmp_path: Path) -> None:
    stage_file, out = tiny_stage_file(), tmp_path / "run"
    assert _run(run_cli, stage_file, out, "--stages", "2").code == 0
    first = _checkpoints(out, "tiny2")
    again = _run(run_cli, stage_file, out, "--stages", "2", "--seed", "1", "--overwrite")
    assert again.code == 0, again
    assert "--overwrite: moved the earlier outputs of tiny2 to" in again.out
    previous = next((out / "previous").iterdir())
    assert sorted(p.name for p in (previous / "models" / "tiny2").glob("*_steps.zip")) == first
    assert (previous / "models" / "tiny2_final.zip").is_file()
    manifest = json.loads((out / "reports" / "run.json").read_text())
    assert manifest["stages"]["tiny2"]["seed"] == 1
    from ploutos_core import read_metadata

    assert read_metadata(out / "models" / "tiny2_final.zip")["seed"] == 1


def test_resume_and_overwrite_together_are_refused(run_cli: Any, tiny_stage_file: Any,
                                                   tmp_path: Path) -> None:
    result = _run(run_cli, tiny_stage_file(), tmp_path / "run", "--resume", "--overwrite")
    assert result.code == 1 and "give one of them" in result.err


def test_resume_refuses_other_options_listing_them(run_cli: Any, tiny_stage_file: Any,
                                                   tmp_path: Path) -> None:
    stage_file, out = tiny_stage_file(), tmp_path / "run"
    assert _run(run_cli, stage_file, out, "--stages", "1", "--scale", "0.5").code == 0
    result = _run(run_cli, stage_file, out, "--stages", "1", "--resume", "--seed", "7",
                  "--scale", "0.25")
    assert result.code == 1
    assert "seed 7 (the interrupted run used 0)" in result.err
    assert "scale 0.25 (the interrupted run used 0.5)" in result.err


def test_resume_refuses_another_start_model(run_cli: Any, tiny_stage_file: Any,
                                            tmp_path: Path) -> None:
    """The model a run started from decides which steps keep transferred tensors fixed
    ([stage.transfer] freeze_fraction), so a resume must name the same one."""
    stage_file = tiny_stage_file()
    assert _run(run_cli, stage_file, tmp_path / "a", "--stages", "1").code == 0
    start = tmp_path / "a" / "models" / "tiny1_final"
    out = tmp_path / "b"
    assert _run(run_cli, stage_file, out, "--stages", "1", "--load-model", str(start)).code == 0
    result = _run(run_cli, stage_file, out, "--stages", "1", "--resume")
    assert result.code == 1
    assert f"load_model none (the interrupted run used {start})" in result.err
    again = _run(run_cli, stage_file, out, "--stages", "1", "--resume", "--load-model",
                 str(start))
    assert again.code == 0, again.err


def test_a_corrupt_newest_checkpoint_is_quarantined_and_resume_falls_back(
        run_cli: Any, tiny_stage_file: Any, tmp_path: Path) -> None:
    stage_file, out = tiny_stage_file(), tmp_path / "run"
    assert _run(run_cli, stage_file, out, "--stages", "1", "--checkpoint-freq", "128").code == 0
    (out / "models" / "tiny1_final.zip").unlink()  # as if killed before promotion
    newest = out / "models" / "tiny1" / _checkpoints(out, "tiny1")[-1]
    with zipfile.ZipFile(newest, "w") as archive:  # a zip without the weights
        archive.writestr("ploutos.json", json.dumps({"algorithm": "ppo", "num_timesteps": 1}))
    result = _run(run_cli, stage_file, out, "--stages", "1", "--checkpoint-freq", "128",
                  "--resume")
    assert result.code == 0, result
    assert f"the checkpoint {newest.name} is unreadable" in result.out
    assert newest.with_name(newest.name + ".corrupt").is_file()
    assert (out / "models" / "tiny1_final.zip").is_file()


class TermOnLastCheckpoint:
    """Sends SIGTERM to its own process when the stage's final checkpoint is written."""

    @hookimpl
    def ploutos_on_checkpoint(self, run: Any, checkpoint: Any) -> None:
        if checkpoint.num_timesteps >= run.timesteps:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_after_training_stops_at_a_safe_point_with_143(run_cli: Any,
                                                               tiny_stage_file: Any,
                                                               tmp_path: Path) -> None:
    stage_file, out = tiny_stage_file(), tmp_path / "run"
    pm = get_plugin_manager(plugins=[("term", TermOnLastCheckpoint())])
    result = _run(run_cli, stage_file, out, "--stages", "1", pm=pm)
    assert result.code == 143
    assert result.err.startswith("Error: tiny1: stopped by SIGTERM after training (checkpoint")
    assert not list(out.rglob(".*.tmp*"))
    resumed = _run(run_cli, stage_file, out, "--stages", "1", "--resume")
    assert resumed.code == 0, resumed
    assert (out / "models" / "tiny1_final.zip").is_file()


def test_temporary_files_of_a_killed_run_are_cleaned(run_cli: Any, tiny_stage_file: Any,
                                                     tmp_path: Path) -> None:
    stage_file, out = tiny_stage_file(), tmp_path / "run"
    assert _run(run_cli, stage_file, out, "--stages", "1").code == 0
    stale = out / "models" / "tiny1" / ".tiny1_final.zip.abcd1234.tmp.zip"
    stale.write_bytes(b"half a file")
    result = _run(run_cli, stage_file, out, "--stages", "1", "--resume")
    assert result.code == 0
    assert "removed 1 temporary file(s)" in result.out and not stale.exists()


def test_a_refused_run_leaves_no_directory(run_cli: Any, tiny_stage_file: Any,
                                           tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _run(run_cli, tiny_stage_file(), out, "--source", "csv", "--data-dir",
                  str(tmp_path / "nothing"))
    assert result.code == 1
    assert not out.exists() and not (out / LOCK_NAME).exists()


def test_evaluate_keeps_the_report_a_run_wrote_for_its_own_model(run_cli: Any,
                                                                 tiny_stage_file: Any,
                                                                 tmp_path: Path) -> None:
    stage_file, out, other = tiny_stage_file(), tmp_path / "run", tmp_path / "other"
    assert _run(run_cli, stage_file, out, "--stages", "2").code == 0
    assert _run(run_cli, stage_file, other, "--stages", "2", "--seed", "3").code == 0
    again = run_cli("evaluate", str(out / "models" / "tiny2_final"), "--stage-file",
                    str(stage_file), "--source", "synthetic", "--out", str(out))
    assert again.code == 0 and "validation.json" in again.out  # its own model: rewritten
    own = (out / "reports" / "tiny2" / "validation.json").read_text()
    foreign = run_cli("evaluate", str(other / "models" / "tiny2_final.zip"), "--stage-file",
                      str(stage_file), "--source", "synthetic", "--out", str(out))
    assert foreign.code == 0, foreign
    assert "validation_tiny2_final.json" in foreign.out
    assert (out / "reports" / "tiny2" / "validation.json").read_text() == own


@pytest.mark.parametrize(("member", "content", "message"), [
    ("policy.pth", b"\x80\x04garbage", "policy.pth is not a plain file of tensors"),
    ("policy.optimizer.pth", b"\x80\x04garbage", "its optimiser state or variables are not"),
    ("ploutos.json", b'{"num_timesteps": "abc"}', "field num_timesteps = 'abc' is not an"),
    ("ploutos.json", b'{"hyperparameters": {"bogus": 1}}', "hyperparameters are invalid"),
])
def test_crafted_model_files_are_one_line_errors(run_cli: Any, tiny_stage_file: Any,
                                                 tmp_path: Path, member: str, content: bytes,
                                                 message: str) -> None:
    stage_file, out = tiny_stage_file(), tmp_path / "run"
    assert _run(run_cli, stage_file, out, "--stages", "1").code == 0
    crafted = rewrite_member(out / "models" / "tiny1_final.zip", tmp_path / "crafted.zip",
                             member, lambda data: content)
    result = run_cli("evaluate", str(crafted), "--stage", "tiny1", "--stage-file",
                     str(stage_file), "--source", "synthetic", "--out", str(tmp_path / "e"))
    assert result.code == 1 and message in result.err, result
    assert len(result.err.splitlines()) == 1 and "internal error" not in result.err


def test_non_finite_weights_and_values_are_refused(run_cli: Any, tiny_stage_file: Any,
                                                   tmp_path: Path) -> None:
    import io

    import torch

    stage_file, out = tiny_stage_file(), tmp_path / "run"
    assert _run(run_cli, stage_file, out, "--stages", "1").code == 0
    source = out / "models" / "tiny1_final.zip"

    def poison(data: bytes) -> bytes:
        state = torch.load(io.BytesIO(data), weights_only=True)
        first = next(iter(state))
        state[first] = state[first] * float("nan")
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    crafted = rewrite_member(source, tmp_path / "nan.zip", "policy.pth", poison)
    result = run_cli("evaluate", str(crafted), "--stage", "tiny1", "--stage-file",
                     str(stage_file), "--source", "synthetic")
    assert result.code == 1 and "holds NaN or infinite values" in result.err
    for option, value in (("--risk-free-rate", "nan"), ("--cost-multiplier", "inf")):
        bad = run_cli("evaluate", str(source), "--stage-file", str(stage_file), "--source",
                      "synthetic", option, value)
        assert bad.code == 1 and option in bad.err and "internal" not in bad.err, bad
    for args in (("--seed", "-1"), ("--seed", "4294967296"), ("--scale", "inf")):
        refused = _run(run_cli, stage_file, tmp_path / "never", *args)
        assert refused.code == 1 and args[0] in refused.err
        assert not (tmp_path / "never").exists()
