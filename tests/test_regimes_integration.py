"""The installed example plugin, seen from outside: run with ``tox -e integration-plugin``.

Skipped unless ``examples/ploutos-regimes`` is installed in this Python (the main
suite must not depend on it). Runs the real ``ploutos`` console script in a
subprocess, as a user would.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not importlib.metadata.entry_points(group="ploutos", name="regimes"),
        reason="ploutos-regimes is not installed (pip install ./examples/ploutos-regimes)",
    ),
]

REGIMES = ("bull", "bear", "sideways")


def ploutos(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script of this Python's environment."""
    script = Path(sys.executable).with_name("ploutos")
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    env.pop("PLOUTOS_BLOCK_PLUGINS", None)
    return subprocess.run([str(script), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300, check=False)


def test_plugins_list_shows_the_example_and_what_it_registers() -> None:
    result = ploutos("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    (record,) = [r for r in json.loads(result.stdout) if r["name"] == "regimes"]
    assert record["distribution"] == "ploutos-regimes"
    assert record["origin"] == "entry point"
    assert set(record["registers"]["stages"]) == set(REGIMES)
    assert set(record["registers"]["day_filters"]) == set(REGIMES)
    text = ploutos("plugins", "list").stdout
    assert "regimes (entry point)  [ploutos-regimes" in text


def test_stages_list_shows_bull_bear_sideways_from_the_plugin() -> None:
    result = ploutos("stages", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    for name in REGIMES:
        assert rows[name][1] == "regimes"  # curriculum
        assert rows[name][-1] == "regimes"  # supplying plugin


def test_blocking_the_plugin_removes_its_stages() -> None:
    result = ploutos("--block-plugin", "regimes", "stages", "list")
    assert result.returncode == 0, result.stderr
    assert not {line.split()[0] for line in result.stdout.splitlines()} & set(REGIMES)


def test_run_stage_bull_trains_only_from_bull_days(tmp_path: Path) -> None:
    result = ploutos("run", "stage", "bull", "--source", "synthetic", "--scale", "0.0001",
                     "--ignore-gates", "--no-progress", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "day filter 'bull' allows episode starts on" in result.stdout
    assert (tmp_path / "models" / "bull_final.zip").is_file()
