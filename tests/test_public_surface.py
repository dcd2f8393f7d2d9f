"""Issue 13: the contract a plugin author sees — hooks through pluggy, named failures, global
options parsed by click, shipped fixtures, the plugin template and the public modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ploutos_core import (
    DataRequest,
    DataSource,
    PluginError,
    Registry,
    get_plugin_manager,
    hookimpl,
)
from ploutos_core.cli.plugin_template import KINDS, write_plugin_package
from ploutos_core.errors import ConfigError
from ploutos_core.testing.fixtures import CliResult
from tests.conftest import make_tiny_stage


def test_shipped_fixtures_are_available_through_pytest11(
        ploutos_pm: Any, ploutos_registry: Registry, ploutos_tiny_stage: Any,
        ploutos_run_cli: Any, ploutos_tiny_stage_file: Path) -> None:
    assert ploutos_pm.has_plugin("ppo")
    assert "synthetic" in ploutos_registry.all("data_sources")
    assert ploutos_tiny_stage.tickers == ("AAA", "BBB")
    listed = ploutos_run_cli("stages", "list", "--stage-file", str(ploutos_tiny_stage_file))
    assert isinstance(listed, CliResult) and listed.code == 0
    assert "tiny1" in listed.out and "tiny2" in listed.out


class Recorder:
    """An event hook as a new-style pluggy wrapper: it runs only when hooks are called
    through pluggy's relay."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl(wrapper=True)
    def ploutos_before_stage(self, run: Any) -> Any:
        self.calls.append(f"wrapped {run.stage.name}")
        return (yield)


def test_event_hooks_run_wrappers_through_pluggy(ploutos_run_cli: Any, tmp_path: Path,
                                                 ploutos_tiny_stage_file: Path) -> None:
    recorder = Recorder()
    pm = get_plugin_manager(plugins=[("recorder", recorder)])
    result = ploutos_run_cli("run", "stage", "tiny1", "--stage-file",
                             str(ploutos_tiny_stage_file), "--source", "synthetic", "--out",
                             str(tmp_path), "--no-progress", "--scale", "0.5", pm=pm)
    assert result.code == 0, result
    assert recorder.calls == ["wrapped tiny1"]
    manifest = json.loads((tmp_path / "reports" / "run.json").read_text())
    plugins = {p["name"]: p for p in manifest["run"]["plugins"]}
    assert plugins["ppo"]["distribution"] == "ploutos" and plugins["ppo"]["version"]
    assert plugins["recorder"]["origin"] == "runtime"


class Raiser:
    @hookimpl
    def ploutos_before_stage(self, run: Any) -> None:
        raise ZeroDivisionError("boom")


def test_an_event_hook_that_raises_stops_the_run_naming_the_plugin(
        ploutos_run_cli: Any, tmp_path: Path, ploutos_tiny_stage_file: Path) -> None:
    pm = get_plugin_manager(plugins=[("raiser", Raiser())])
    result = ploutos_run_cli("run", "stage", "tiny1", "--stage-file",
                             str(ploutos_tiny_stage_file), "--source", "synthetic", "--out",
                             str(tmp_path), "--no-progress", pm=pm)
    assert result.code == 1
    assert result.err == ("Error: plugin 'raiser' failed in ploutos_before_stage: "
                          "ZeroDivisionError: boom\n")


class Broken(DataSource):
    name = "broken"

    def fetch(self, request: DataRequest) -> Any:
        return {ticker: 1 / 0 for ticker in request.tickers}


class BrokenSource:
    @hookimpl
    def ploutos_register_data_sources(self, register: Any) -> None:
        register(Broken())


def test_an_exception_inside_a_plugin_object_names_the_plugin(ploutos_run_cli: Any) -> None:
    pm = get_plugin_manager(plugins=[("brokensource", BrokenSource())])
    result = ploutos_run_cli("data", "fetch", "--source", "broken", "--tickers", "AAA", pm=pm)
    assert result.code == 1
    assert result.err.startswith("Error: plugin 'brokensource' failed: ZeroDivisionError")
    assert "internal error" not in result.err and len(result.err.splitlines()) == 1


def test_a_misspelt_block_plugin_is_an_error(ploutos_run_cli: Any) -> None:
    result = ploutos_run_cli("--block-plugin", "optuan", "stages", "list")
    assert result.code == 1
    assert "names no plugin: 'optuan'" in result.err and "optuna" in result.err


def test_global_options_are_parsed_by_click_in_any_order(tmp_path: Path) -> None:
    """``--threads 2 --plugin x`` loads x (a hand-written pre-scan used to skip it)."""
    module = tmp_path / "extra_command.py"
    module.write_text("import click\nfrom ploutos_core import hookimpl\n\n@hookimpl\n"
                      "def ploutos_register_commands(cli):\n"
                      "    @cli.command('hello')\n"
                      "    def hello():\n"
                      "        click.echo('hello from a local plugin')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for args in (["--threads", "2", "--plugin", str(module), "hello"],
                 ["--plugin", str(module), "--threads", "2", "hello"]):
        done = subprocess.run([sys.executable, "-m", "ploutos_core.cli", *args], env=env,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello from a local plugin\n"
    helped = subprocess.run([sys.executable, "-m", "ploutos_core.cli", "--plugin", str(module),
                             "--help"], env=env, capture_output=True, text=True, check=False)
    assert "hello" in helped.stdout


def test_a_duplicate_stage_does_not_break_plugins_list(ploutos_run_cli: Any) -> None:
    class Twin:
        @hookimpl
        def ploutos_register_stages(self, register: Any) -> None:
            register(make_tiny_stage("stage1"))

    pm = get_plugin_manager(plugins=[("twin", Twin())])
    listed = ploutos_run_cli("plugins", "list", pm=pm)
    assert listed.code == 0
    assert "CONFLICT  stage 'stage1' is registered by 'stages' and 'twin'" in listed.out
    ran = ploutos_run_cli("run", "curriculum", "--source", "synthetic", pm=pm)
    assert ran.code == 1 and "'stage1' is registered twice" in ran.err


def test_registry_hooks_are_called_through_pluggy_per_plugin() -> None:
    calls: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def ploutos_register_tuners(self, register: Any) -> Any:
            calls.append("wrapped")
            return (yield)

    registry = Registry(get_plugin_manager(plugins=[("wrapper", Wrapper())]))
    assert "optuna" in registry.all("tuners")
    assert calls == ["wrapped"]  # around the one plugin that registers tuners


@pytest.mark.parametrize("kind", ["data-source", "stage",
                                  pytest.param("algorithm", marks=pytest.mark.slow),
                                  pytest.param("logger", marks=pytest.mark.slow)])
def test_plugin_template_writes_a_package_whose_tests_pass(kind: str, tmp_path: Path) -> None:
    name = f"my_{kind.replace('-', '_')}"
    files = write_plugin_package(kind, name, tmp_path, "a test plugin")
    root = tmp_path / f"ploutos-{name}"
    assert root / "pyproject.toml" in files
    assert f'{name} = "ploutos_{name}.plugin"' in (root / "pyproject.toml").read_text()
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "WANDB_MODE": "offline"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(root / "tests")], env=env, capture_output=True, text=True,
                          check=False, cwd=root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_plugin_template_refuses_bad_names_and_existing_folders(tmp_path: Path) -> None:
    assert KINDS == ("data-source", "stage", "algorithm", "logger")
    with pytest.raises(ConfigError, match="must be lower-case"):
        write_plugin_package("stage", "My-Stage", tmp_path, "x")
    write_plugin_package("stage", "mine", tmp_path, "x")
    with pytest.raises(ConfigError, match="exists already"):
        write_plugin_package("stage", "mine", tmp_path, "x")


def test_python_api_worked_example_from_the_docs(tmp_path: Path, monkeypatch: Any) -> None:
    """docs/python-api.md's example runs as written."""
    docs = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
    text = docs.read_text()
    example = text.split("<!-- example -->")[1].split("```python")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(example, str(docs), "exec"), namespace)
    run, evaluation = namespace["run"], namespace["evaluation"]
    assert list(run.table().index) == ["stage1", "stage2", "stage3"]
    assert isinstance(evaluation.metrics(), pd.DataFrame)
    assert set(evaluation.daily()["strategy"]) >= {"agent", "equal_weight_rebalanced"}
    assert (tmp_path / "runs" / "smoke" / "reports" / "stage3" / "validation_daily.csv").exists()


def test_plugin_errors_name_the_distribution() -> None:
    from ploutos_core.pluginmanager.hookcalls import describe_plugin

    pm = get_plugin_manager()
    assert describe_plugin(pm, "ppo").startswith("plugin 'ppo' (ploutos ")
    assert issubclass(PluginError, Exception)
