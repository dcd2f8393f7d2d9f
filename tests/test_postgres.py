"""Issue 14: ``ploutos tune`` workers sharing one study on a real PostgreSQL server.

Runs when ``PLOUTOS_TEST_POSTGRES_URL`` names an empty database (``.ci/run`` and
``tox -e postgres`` start a throwaway server with ``.ci/postgres.sh``); skipped
otherwise. Three workers share one run directory; one is killed with -9 in the
middle of a trial. The survivors fail its trial once its heartbeat is stale, run
exactly the trial budget between them, and one of them writes
``optimized_params.json``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

URL = os.environ.get("PLOUTOS_TEST_POSTGRES_URL")

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not URL, reason="PLOUTOS_TEST_POSTGRES_URL is not set")]


def test_workers_finish_exactly_the_budget_when_one_is_killed(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from ploutos_plugins.optuna_tuner import open_storage
    from tests.test_tuning import TUNED_TOML

    assert URL is not None
    stage_file = tmp_path / "tiny.toml"
    stage_file.write_text(TUNED_TOML.format(gate1=-100.0).replace("timesteps = 256",
                                                                  "timesteps = 1024", 1))
    study = f"shared-{uuid.uuid4().hex[:8]}"
    budget = 6
    out = tmp_path / "run"  # one run directory for every worker
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PLOUTOS_TUNING_HEARTBEAT_SECONDS": "1", "PLOUTOS_TUNING_GRACE_SECONDS": "4"}

    def worker(seed: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "ploutos_core.cli", "tune", "--stage", "tiny1",
             "--stage-file", str(stage_file), "--source", "synthetic", "--device", "cpu",
             "--storage", URL, "--study-name", study, "--trials", str(budget),
             "--sampler-seed", str(seed), "--out", str(out)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)

    victim = worker(0)
    assert victim.stdout is not None
    started = time.monotonic()
    for line in victim.stdout:  # its first finished trial: it is now inside its second
        if re.search(r"tiny1: trial \d+ \(", line):
            break
        assert time.monotonic() - started < 120, "the first worker never finished a trial"
    survivors = [worker(1), worker(2)]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    outputs = [s.communicate(timeout=300)[0] for s in survivors]
    for survivor, output in zip(survivors, outputs, strict=True):
        assert survivor.returncode == 0, output

    loaded = optuna.load_study(study_name=study, storage=open_storage(URL))
    trials = loaded.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == budget
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if t.state == TrialState.FAIL]) <= 1  # the killed trial
    reported = [int(n) for output in outputs for n in re.findall(r"tiny1: trial (\d+) \(",
                                                                  output)]
    assert len(reported) == len(set(reported))  # no trial run twice

    saved = json.loads((out / "models" / "tiny1" / "optimized_params.json").read_text())
    assert saved["trials_completed"] + saved["trials_pruned"] == budget
    writers = [output for output in outputs if "saved to" in output]
    assert len(writers) == 1, outputs  # written once, by one worker
    assert sum("was written by another worker" in output for output in outputs) == 1
