"""Pytest fixtures for plugin authors, installed with Ploutos as a ``pytest11`` plugin.

Every test suite in an environment where Ploutos is installed can use them without
copying anything, as pytest's own ``pytester`` works::

    def test_my_source_is_listed(ploutos_run_cli, ploutos_pm):
        result = ploutos_run_cli("data", "sources", pm=ploutos_pm)
        assert result.code == 0 and "parquet" in result.out

    def test_my_stage_trains(ploutos_run_cli, ploutos_tiny_stage_file, tmp_path):
        result = ploutos_run_cli("run", "stage", "tiny1", "--stage-file",
                                 str(ploutos_tiny_stage_file), "--source", "synthetic",
                                 "--out", str(tmp_path), "--no-progress")
        assert result.code == 0, result

Fixtures: ``ploutos_pm`` (a fresh plugin manager of every installed plugin, with the
developer's ``PLOUTOS_*`` variables cleared), ``ploutos_registry``,
``ploutos_tiny_stage`` (a two-asset stage that trains in a second on the synthetic
source), ``ploutos_tiny_stage_file`` (a two-stage curriculum ``tiny`` as a file) and
``ploutos_run_cli`` (``ploutos`` in-process, returning exit code, stdout and stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from ploutos_core.config.stage import StageSpec, stage_to_toml
from ploutos_core.pluginmanager.manager import PloutosPluginManager, get_plugin_manager
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.testing import tiny_stage

#: variables that would let the developer's own setup leak into a test.
PLOUTOS_VARIABLES = ("PLOUTOS_PLUGINS", "PLOUTOS_BLOCK_PLUGINS", "PLOUTOS_DATA_DIR")


@attrs.frozen
class CliResult:
    """Exit code and captured output of one ``ploutos`` call."""

    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


@pytest.fixture
def ploutos_isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear ``PLOUTOS_PLUGINS``, ``PLOUTOS_BLOCK_PLUGINS`` and ``PLOUTOS_DATA_DIR``."""
    for name in PLOUTOS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def ploutos_pm(ploutos_isolated: None) -> PloutosPluginManager:
    """A fresh plugin manager with every installed plugin (yours too, once installed)."""
    return get_plugin_manager()


@pytest.fixture
def ploutos_registry(ploutos_pm: PloutosPluginManager) -> Registry:
    """What the plugins of :func:`ploutos_pm` registered."""
    return Registry(ploutos_pm)


@pytest.fixture
def ploutos_tiny_stage() -> StageSpec:
    """A two-asset stage (tickers AAA, BBB) that trains in about a second on the
    ``synthetic`` source; ``attrs.evolve`` it to test your own settings."""
    return tiny_stage()


@pytest.fixture
def ploutos_tiny_stage_file(tmp_path: Path) -> Path:
    """A stage file with the curriculum ``tiny``: ``tiny1`` (one asset) then ``tiny2``
    (three assets), for ``--stage-file``."""
    first = tiny_stage("tiny1", tickers=("AAA",), order=1, timesteps=256)
    second = tiny_stage("tiny2", tickers=("AAA", "BBB", "CCC"), order=2, timesteps=256)
    path = tmp_path / "tiny.toml"
    path.write_text(stage_to_toml(first).replace("[stage]", "[[stage]]", 1) + "\n"
                    + stage_to_toml(second).replace("[stage]", "[[stage]]", 1))
    return path


@pytest.fixture
def ploutos_run_cli(capsys: pytest.CaptureFixture[str], ploutos_isolated: None
                    ) -> Callable[..., CliResult]:
    """Call ``ploutos`` in-process: ``ploutos_run_cli("stages", "list", pm=...)``; without
    ``pm`` the plugin manager is made from the command line, as the console script does."""
    from ploutos_core.cli import main

    def call(*args: str, pm: PloutosPluginManager | None = None) -> CliResult:
        capsys.readouterr()
        code = main(list(args), pm=pm)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call
