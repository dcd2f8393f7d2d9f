"""The plugin manager, the registry and ``ploutos plugins``/``ploutos stages`` listings."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ploutos_core import (
    DataRequest,
    DataSource,
    PluginError,
    PluginLoadError,
    Registry,
    StageSpec,
    get_plugin_manager,
    hookimpl,
)
from ploutos_core.pluginmanager import manager as plugins_module
from tests.conftest import make_tiny_stage


class ThrowawayPlugin:
    """Registers one stage and one data source."""

    @hookimpl
    def ploutos_register_stages(self, register):  # type: ignore[no-untyped-def]
        register(make_tiny_stage("throwaway", curriculum="extra"))

    @hookimpl
    def ploutos_register_data_sources(self, register):  # type: ignore[no-untyped-def]
        class Null(DataSource):
            name = "null"
            description = "nothing"

            def fetch(self, request: DataRequest):  # type: ignore[no-untyped-def]
                return {}

        register(Null())


def test_builtins_are_entry_points_of_the_ploutos_distribution(pm) -> None:
    infos = {name: pm.info(name) for name in ("stages", "synthetic", "csv", "yfinance",
                                              "portfolio", "ppo")}
    for name, info in infos.items():
        assert info.origin == "builtin", name
        assert info.distribution == "ploutos", name


def test_throwaway_plugin_shows_in_plugins_list_and_stages_list(run_cli) -> None:
    pm = get_plugin_manager(plugins=[("throwaway-plugin", ThrowawayPlugin())])
    listing = run_cli("plugins", "list", pm=pm)
    assert listing.code == 0, listing
    assert "throwaway-plugin" in listing.out
    assert "stages: throwaway" in listing.out
    assert "data sources: null" in listing.out
    assert "ploutos_register_stages" in listing.out
    stages = run_cli("stages", "list", pm=pm)
    assert stages.code == 0
    line = next(row for row in stages.out.splitlines() if row.startswith("throwaway"))
    assert "extra" in line and "throwaway-plugin" in line


def test_plugins_list_json_marks_builtins(run_cli) -> None:
    result = run_cli("plugins", "list", "--json")
    records = {r["name"]: r for r in json.loads(result.out)}
    assert records["stages"]["origin"] == "builtin"
    assert records["stages"]["registers"] == {"stages": ["stage1", "stage2", "stage3"]}
    assert records["ppo"]["hooks"] == ["ploutos_register_algorithms"]


def test_local_plugin_by_option_and_environment(tmp_path: Path, run_cli, monkeypatch) -> None:
    module = tmp_path / "my_local_plugin.py"
    module.write_text(textwrap.dedent("""
        from ploutos_core import hookimpl
        from tests.conftest import make_tiny_stage

        @hookimpl
        def ploutos_register_stages(register):
            register(make_tiny_stage("from_local", curriculum="local"))
    """))
    by_option = run_cli("--plugin", str(module), "stages", "list")
    assert by_option.code == 0, by_option
    assert "from_local" in by_option.out
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLOUTOS_PLUGINS", "my_local_plugin")
    by_env = run_cli("stages", "list")
    assert "from_local" in by_env.out
    assert "my_local_plugin (local)" in run_cli("plugins", "list").out


def test_missing_local_plugin_is_one_line_error(run_cli) -> None:
    result = run_cli("--plugin", "no_such_module_xyz", "stages", "list")
    assert result.code == 1
    assert result.err.strip().count("\n") == 0
    assert "no_such_module_xyz" in result.err and "failed to import" in result.err


def test_block_plugin_by_option_and_environment(run_cli, monkeypatch) -> None:
    blocked = run_cli("--block-plugin", "yfinance", "data", "sources")
    assert blocked.code == 0
    assert "yfinance" not in blocked.out and "synthetic" in blocked.out
    monkeypatch.setenv("PLOUTOS_BLOCK_PLUGINS", "csv,yfinance")
    assert "csv" not in run_cli("data", "sources").out


def test_duplicate_stage_names_name_both_plugins() -> None:
    class Twin:
        @hookimpl
        def ploutos_register_stages(self, register):  # type: ignore[no-untyped-def]
            register(make_tiny_stage("stage1"))

    registry = Registry(get_plugin_manager(plugins=[("twin", Twin())]))
    assert "stage1" not in [s.name for s in registry.stages()]  # listings leave it out
    for use in (lambda: registry.curriculum("default"), lambda: registry.stage("stage1")):
        with pytest.raises(PluginError, match=r"'stage1' is registered twice, by plugin "
                                              r"'stages' and plugin 'twin'"):
            use()


def test_wrong_type_registration_is_reported_by_plugin() -> None:
    class Wrong:
        @hookimpl
        def ploutos_register_algorithms(self, register):  # type: ignore[no-untyped-def]
            register("ppo-as-a-string")

    registry = Registry(get_plugin_manager(plugins=[("wrong", Wrong())]))
    with pytest.raises(PluginError, match=r"plugin 'wrong' registered str .* expected an "
                                          r"instance of Algorithm"):
        registry.algorithm("ppo")


def test_registry_hook_returning_a_value_is_an_error() -> None:
    class Returns:
        @hookimpl
        def ploutos_register_stages(self, register):  # type: ignore[no-untyped-def]
            return [make_tiny_stage("returned")]

    registry = Registry(get_plugin_manager(plugins=[("returns", Returns())]))
    with pytest.raises(PluginError, match=r"plugin 'returns'.*returned list"):
        registry.stages()


def test_plugin_raising_inside_a_hook_is_named(run_cli) -> None:
    class Broken:
        @hookimpl
        def ploutos_register_stages(self, register):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    pm = get_plugin_manager(plugins=[("broken", Broken())])
    result = run_cli("stages", "list", pm=pm)
    assert result.code == 1
    assert "plugin 'broken' failed in ploutos_register_stages: RuntimeError: boom" in result.err
    assert "Traceback" not in result.err


def test_broken_entry_point_is_reported_not_fatal(monkeypatch, run_cli) -> None:
    import importlib.metadata as md

    real = plugins_module._entry_points()
    broken = md.EntryPoint(name="broken-thing", value="no_such_package_abc.plugin",
                           group="ploutos")
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: [*real, broken])
    pm = get_plugin_manager()
    assert len(pm.load_errors) == 1
    assert "broken-thing" in str(pm.load_errors[0])
    result = run_cli("stages", "list", pm=pm)
    assert result.code == 0
    assert "Warning: plugin 'broken-thing'" in result.err
    assert "stage1" in result.out
    with pytest.raises(PluginLoadError, match="broken-thing"):
        get_plugin_manager(strict=True)


def test_not_installed_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: [])
    with pytest.raises(PluginLoadError, match="pip install -e"):
        get_plugin_manager()


def test_every_manager_is_fresh() -> None:
    first = get_plugin_manager(plugins=[("throwaway", ThrowawayPlugin())])
    second = get_plugin_manager()
    assert first.has_plugin("throwaway")
    assert not second.has_plugin("throwaway")


def test_builtin_stage_values(registry) -> None:
    stages = {s.name: s for s in registry.curriculum("default")}
    assert list(stages) == ["stage1", "stage2", "stage3"]
    expected = {
        "stage1": (("SPY",), 1_000_000, 4, 1e-4, (8e-5, 2e-4), 1.0),
        "stage2": (("SPY", "QQQ", "IWM"), 1_000_000, 8, 5e-5, (3e-5, 1e-4), 1.3),
        "stage3": (("NVDA", "MSFT", "AAPL", "GOOGL", "AMZN"), 16_000_000, 16, 3e-5,
                   (1e-5, 6e-5), 1.5),
    }
    for name, (tickers, steps, envs, lr, lr_range, target) in expected.items():
        stage: StageSpec = stages[name]
        assert stage.tickers == tickers
        assert stage.timesteps == steps
        assert stage.n_envs == envs
        assert stage.hyperparameters.learning_rate == lr
        assert stage.tuning.learning_rate == lr_range
        assert stage.tuning.trials == 15
        # Issue 11: the seed's absolute figure is a reported target; the gate is the benchmark.
        assert stage.gate.target_sharpe == target
        assert stage.gate.min_sharpe_vs_benchmark == 0.0
        assert stage.gate.min_validation_sharpe is None
        assert stage.transaction_cost_bps == 10.0
        assert str(stage.splits.train) == "2005-01-01…2018-12-31"
        assert str(stage.splits.validation) == "2019-01-01…2022-12-31"
        assert str(stage.splits.test) == "2023-01-01…"
