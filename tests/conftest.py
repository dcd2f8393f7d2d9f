"""Shared fixtures: fresh plugin managers, tiny synthetic stages, a CLI runner."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ploutos_core import Registry, StageSpec, get_plugin_manager
from ploutos_core.pluginmanager.manager import PloutosPluginManager
from ploutos_core.testing import tiny_stage

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # subprocesses' torch too



def _market_data_dir() -> Path | None:
    """The real daily prices of ../shared/market-data/daily, when this checkout has them."""
    candidates = [os.environ.get("PLOUTOS_MARKET_DATA"),
                  Path(__file__).resolve().parents[2] / "shared" / "market-data" / "daily"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "SPY.csv").is_file():
            return Path(candidate)
    return None


MARKET_DATA = _market_data_dir()
needs_market_data = pytest.mark.skipif(MARKET_DATA is None, reason="../shared/market-data absent")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny networks train fastest on one thread, and torch's thread pool on a busy
    2-core machine can make a test twenty times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's plugin or data settings."""
    for name in ("PLOUTOS_PLUGINS", "PLOUTOS_BLOCK_PLUGINS", "PLOUTOS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pm() -> PloutosPluginManager:
    """A fresh plugin manager with the installed plugins."""
    return get_plugin_manager()


@pytest.fixture
def registry(pm: PloutosPluginManager) -> Registry:
    """The registry of :func:`pm`."""
    return Registry(pm)


#: the shipped test kit's tiny stage (ploutos_core.testing.tiny_stage).
make_tiny_stage = tiny_stage


@pytest.fixture(name="tiny_stage")
def tiny_stage_fixture() -> StageSpec:
    """One tiny two-asset stage."""
    return make_tiny_stage()


def rewrite_member(source: Path, target: Path, member: str,
                   change: Callable[[bytes], bytes]) -> Path:
    """Copy the model file ``source`` to ``target`` with ``member``'s bytes passed through
    ``change`` (a crafted or damaged model file)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item.filename)
            copy.writestr(item, change(data) if item.filename == member else data)
    return target


TINY_TOML = """
[[stage]]
name = "tiny1"
curriculum = "tiny"
order = 1
tickers = ["AAA"]
timesteps = 256
n_envs = 4
[stage.hyperparameters]
n_steps = 32
batch_size = 64
n_epochs = 2
hidden_size = 16
[stage.splits]
train = {{ start = 2010-01-01, end = 2012-12-31 }}
validation = {{ start = 2013-01-01, end = 2013-12-31 }}
test = {{ start = 2014-01-01, end = 2014-12-31 }}
[stage.gate]
min_validation_sharpe = {gate1}
[stage.env]
episode_length = 64
window = 4

[[stage]]
name = "tiny2"
curriculum = "tiny"
order = 2
tickers = ["AAA", "BBB", "CCC"]
timesteps = 256
n_envs = 4
[stage.hyperparameters]
n_steps = 32
batch_size = 64
n_epochs = 2
hidden_size = 16
[stage.splits]
train = {{ start = 2010-01-01, end = 2012-12-31 }}
validation = {{ start = 2013-01-01, end = 2013-12-31 }}
test = {{ start = 2014-01-01, end = 2014-12-31 }}
[stage.gate]
min_validation_sharpe = -100.0
[stage.env]
episode_length = 64
window = 4
"""


@pytest.fixture
def tiny_stage_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a two-stage curriculum ``tiny`` (tiny1: 1 asset, tiny2: 3 assets) to a file."""

    def write(gate1: float = -100.0, name: str = "tiny.toml") -> Path:
        path = tmp_path / name
        path.write_text(TINY_TOML.format(gate1=gate1))
        return path

    return write


class CliResult:
    """Exit code and captured output of one CLI call."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Call ``ploutos`` in-process: ``run_cli("stages", "list", pm=...)``."""
    from ploutos_core.cli import main

    def call(*args: str, pm: PloutosPluginManager | None = None) -> CliResult:
        capsys.readouterr()
        code = main(list(args), pm=pm)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run the test inside ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
