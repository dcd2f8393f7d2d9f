"""The plugin contract enforced: bad plugins are refused by name, installed ones are discovered.

Complements ``test_plugins.py`` (listing, blocking, local plugins, stage
duplicates) and ``test_hooks.py`` (one test per hook): here, pluggy's signature
validation, unknown hooks, the plugin API version, registry misuse for every
kind, discovery of fake installed distributions, and the day-filter path from
a stage's ``day_filter`` to the environment's episode starts.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from ploutos_core import (
    PLUGIN_API_VERSION,
    DataError,
    DayFilter,
    DayFilterContext,
    PluginError,
    PluginLoadError,
    Registry,
    get_plugin_manager,
    hookimpl,
)
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.pluginmanager.registry import KINDS
from ploutos_core.training.builder import prepare_stage
from ploutos_core.training.context import RunContext
from ploutos_core.training.runner import CurriculumRunner, RunOptions
from tests.conftest import CliResult, make_tiny_stage

# --- pluggy validation at registration ------------------------------------------------


def test_hook_with_an_argument_the_spec_lacks_is_refused_naming_plugin_and_argument() -> None:
    class ExtraArgument:
        @hookimpl
        def ploutos_register_stages(self, register, curriculum):  # type: ignore[no-untyped-def]
            """``curriculum`` is not an argument of the spec."""

    with pytest.raises(PluginLoadError) as caught:
        get_plugin_manager(plugins=[("extra-arg", ExtraArgument())])
    message = str(caught.value)
    assert "plugin 'extra-arg' implements a hook wrongly" in message
    assert "ploutos_register_stages" in message
    assert "curriculum" in message


def test_hook_with_fewer_arguments_than_the_spec_is_accepted() -> None:
    """Pluggy passes only the arguments an implementation names; specs only grow."""

    class Fewer:
        @hookimpl
        def ploutos_after_stage(self, result):  # type: ignore[no-untyped-def]
            """Takes ``result`` but not ``run``."""

    assert get_plugin_manager(plugins=[("fewer", Fewer())]).has_plugin("fewer")


def test_unknown_ploutos_hook_is_reported_by_plugin_name(run_cli: Callable[..., CliResult],
                                                          tmp_path: Path) -> None:
    class Misspelt:
        @hookimpl
        def ploutos_register_stage(self, register):  # type: ignore[no-untyped-def]
            """Singular: no such hook."""

    with pytest.raises(PluginError, match=r"plugin 'misspelt' implements an unknown hook.*"
                                          r"ploutos_register_stage\b"):
        get_plugin_manager(plugins=[("misspelt", Misspelt())])
    module = tmp_path / "misspelt_local.py"
    module.write_text("from ploutos_core import hookimpl\n\n@hookimpl\n"
                      "def ploutos_register_widgets(register):\n    pass\n")
    result = run_cli("--plugin", str(module), "stages", "list")
    assert result.code == 1
    assert "plugin 'misspelt_local' implements an unknown hook" in result.err
    assert "ploutos_register_widgets" in result.err
    assert "Traceback" not in result.err


# --- the plugin API version -----------------------------------------------------------


@pytest.mark.parametrize("declared", [PLUGIN_API_VERSION + 1, 0])
def test_incompatible_api_version_is_refused_with_what_to_do(declared: int) -> None:
    class Versioned:
        PLOUTOS_API_VERSION = declared

    with pytest.raises(PluginLoadError) as caught:
        get_plugin_manager(plugins=[("versioned", Versioned())])
    assert str(caught.value) == (
        f"plugin 'versioned' was written for plugin API {declared}, this Ploutos provides "
        f"API {PLUGIN_API_VERSION}; upgrade the plugin or Ploutos")


@pytest.mark.parametrize("declared", ["1", 1.0, True])
def test_api_version_must_be_an_integer(declared: object) -> None:
    class Odd:
        PLOUTOS_API_VERSION = declared

    with pytest.raises(PluginLoadError, match=r"plugin 'odd' declares PLOUTOS_API_VERSION="
                                              r".*it must be an integer"):
        get_plugin_manager(plugins=[("odd", Odd())])


def test_current_api_version_loads() -> None:
    class Current:
        PLOUTOS_API_VERSION = PLUGIN_API_VERSION

    assert get_plugin_manager(plugins=[("current", Current())]).has_plugin("current")


# --- registry hooks, every kind -------------------------------------------------------


def _instance_of(kind: str) -> Any:
    """A valid object of ``kind`` taken from the built-ins (or a minimal day filter)."""
    if kind == "day_filters":
        class Everyday(DayFilter):
            name = "everyday"

            def select(self, context: DayFilterContext) -> Any:
                return np.ones(context.panel.n_days, dtype=bool)

        return Everyday()
    if kind == "tuners":
        from ploutos_core import Tuner

        class Dummy(Tuner):
            name = "dummy"

            def tune(self, problem: Any) -> Any:  # pragma: no cover - never called
                raise NotImplementedError

        return Dummy()
    if kind == "stages":
        return make_tiny_stage("solo")
    registry = Registry(get_plugin_manager())
    return next(iter(registry.all(kind).values())).item


def _plugin_for(kind: str, behaviour: Callable[[Any], Any]) -> object:
    hook = KINDS[kind].hook

    def implementation(register):  # type: ignore[no-untyped-def]
        return behaviour(register)

    implementation.__name__ = hook
    namespace = type("Plugin", (), {hook: staticmethod(hookimpl(implementation))})
    return namespace()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_registering_the_wrong_type_names_plugin_and_expected_type(kind: str) -> None:
    plugin = _plugin_for(kind, lambda register: register(object()))
    registry = Registry(get_plugin_manager(plugins=[("wrong-type", plugin)]))
    with pytest.raises(PluginError, match=rf"plugin 'wrong-type' registered object through "
                                          rf"{KINDS[kind].hook}; expected an instance of "
                                          rf"{KINDS[kind].type.__name__}"):
        registry.all(kind)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_duplicate_names_name_both_plugins(kind: str) -> None:
    item = _instance_of(kind)
    first = _plugin_for(kind, lambda register: register(item))
    second = _plugin_for(kind, lambda register: register(item))
    pm = get_plugin_manager(plugins=[("first-plugin", first), ("second-plugin", second)],
                            load_entry_points=kind in ("day_filters", "tuners", "stages"))
    registry = Registry(pm)
    # Listing still works (issue 13): only asking for the duplicated name fails.
    assert item.name in registry.all(kind)
    assert registry.duplicates(kind)[item.name] == ["first-plugin", "second-plugin"]
    with pytest.raises(PluginError) as caught:
        registry.get(kind, item.name)
    message = str(caught.value)
    assert f"{KINDS[kind].label} {item.name!r} is registered twice" in message
    assert "'first-plugin'" in message and "'second-plugin'" in message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_registry_hook_returning_a_value_names_the_plugin(kind: str) -> None:
    plugin = _plugin_for(kind, lambda register: [_instance_of(kind)])
    registry = Registry(get_plugin_manager(plugins=[("returner", plugin)]))
    with pytest.raises(PluginError, match=rf"plugin 'returner': {KINDS[kind].hook} returned "
                                          rf"list; registry hooks must call register"):
        registry.all(kind)


# --- discovery of installed distributions, without installing -------------------------

_counter = itertools.count()


@attrs.frozen
class FakeDistribution:
    """A ``*.dist-info`` and its plugin module on a temporary ``sys.path`` entry."""

    name: str
    version: str
    plugin: str
    module: str


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> Iterator[Callable[[str], FakeDistribution]]:
    """``make(source)``: install a distribution whose entry point loads ``source``."""
    modules: list[str] = []

    def make(source: str) -> FakeDistribution:
        number = next(_counter)
        fake = FakeDistribution(name=f"ploutos-fake{number}", version=f"3.{number}.1",
                                plugin=f"fake{number}", module=f"ploutos_fake_plugin_{number}")
        root = tmp_path / f"site{number}"
        dist_info = root / f"ploutos_fake{number}-{fake.version}.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {fake.name}\nVersion: {fake.version}\n")
        (dist_info / "entry_points.txt").write_text(
            f"[ploutos]\n{fake.plugin} = {fake.module}\n")
        (root / f"{fake.module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(root))
        modules.append(fake.module)
        return fake

    yield make
    for module in modules:
        sys.modules.pop(module, None)


GOOD_PLUGIN = """
    from ploutos_core import hookimpl
    from tests.conftest import make_tiny_stage

    PLOUTOS_API_VERSION = 1

    @hookimpl
    def ploutos_register_stages(register):
        register(make_tiny_stage("fake_stage", curriculum="fake"))
"""


def test_an_installed_distribution_is_discovered_and_listed(
        fake_distribution: Callable[[str], FakeDistribution],
        run_cli: Callable[..., CliResult]) -> None:
    fake = fake_distribution(GOOD_PLUGIN)
    listing = run_cli("plugins", "list")
    assert listing.code == 0, listing
    assert f"{fake.plugin} (entry point)  [{fake.name} {fake.version}]" in listing.out
    block = listing.out.split(f"{fake.plugin} (entry point)")[1]
    assert "hooks: ploutos_register_stages" in block
    assert "stages: fake_stage" in block
    stages = run_cli("stages", "list")
    row = next(line for line in stages.out.splitlines() if line.startswith("fake_stage"))
    assert row.split()[1] == "fake" and row.split()[-1] == fake.plugin
    blocked = run_cli("--block-plugin", fake.plugin, "stages", "list")
    assert "fake_stage" not in blocked.out


def test_a_distribution_that_fails_to_import_is_reported_by_name(
        fake_distribution: Callable[[str], FakeDistribution],
        run_cli: Callable[..., CliResult]) -> None:
    fake = fake_distribution("raise ImportError('needs the frobnicate package')\n")
    listing = run_cli("plugins", "list")
    assert listing.code == 0, listing
    failed = next(line for line in listing.out.splitlines() if line.startswith("FAILED"))
    assert f"plugin {fake.plugin!r}" in failed
    assert f"from {fake.name} {fake.version}" in failed
    assert "ImportError: needs the frobnicate package" in failed
    assert f"Warning: plugin {fake.plugin!r}" in listing.err
    assert "stages (built-in)" in listing.out  # everything else still loads
    stages = run_cli("stages", "list")
    assert stages.code == 0 and "stage1" in stages.out


def test_a_distribution_for_another_api_version_is_skipped_with_a_reason(
        fake_distribution: Callable[[str], FakeDistribution],
        run_cli: Callable[..., CliResult]) -> None:
    fake = fake_distribution(GOOD_PLUGIN.replace("PLOUTOS_API_VERSION = 1",
                                                 "PLOUTOS_API_VERSION = 99"))
    listing = run_cli("plugins", "list")
    assert listing.code == 0, listing
    assert (f"FAILED  plugin {fake.plugin!r} was written for plugin API 99, this Ploutos "
            f"provides API {PLUGIN_API_VERSION}") in listing.out
    assert "fake_stage" not in run_cli("stages", "list").out


def test_a_distribution_with_a_wrong_hook_signature_is_skipped_with_a_reason(
        fake_distribution: Callable[[str], FakeDistribution],
        run_cli: Callable[..., CliResult]) -> None:
    fake = fake_distribution(GOOD_PLUGIN.replace("ploutos_register_stages(register)",
                                                 "ploutos_register_stages(register, tickers)"))
    pm = get_plugin_manager()
    (error,) = pm.load_errors
    assert f"plugin {fake.plugin!r} implements a hook wrongly" in str(error)
    assert "tickers" in str(error)
    assert run_cli("stages", "list", pm=pm).code == 0


# --- day filters: from [stage.env] day_filter to the environment's episode starts -----


class RecordingBuilder:
    """Wraps the built-in portfolio builder and keeps every environment it builds."""

    def __init__(self) -> None:
        from ploutos_plugins.portfolio_env import PortfolioEnvBuilder

        class Recording(PortfolioEnvBuilder):
            name = "recording"

            def build(inner, request):  # type: ignore[no-untyped-def]
                env = super().build(request)
                self.built.append((request, env))
                return env

        self.builder = Recording()
        self.built: list[tuple[Any, Any]] = []

    @hookimpl
    def ploutos_register_env_builders(self, register):  # type: ignore[no-untyped-def]
        register(self.builder)


class IndexUpDays(DayFilter):
    """Days on which an index the stage does not trade closed higher than the day before."""

    name = "index_up_days"

    def select(self, context: DayFilterContext) -> Any:
        close = context.load_close("IDX")
        return np.concatenate([[False], close[1:] > close[:-1]])


class FilterPlugin:
    def __init__(self, day_filter: DayFilter) -> None:
        self.day_filter = day_filter

    @hookimpl
    def ploutos_register_day_filters(self, register):  # type: ignore[no-untyped-def]
        register(self.day_filter)


def _days_of(observations: np.ndarray, market: np.ndarray) -> set[int]:
    days: set[int] = set()
    for observation in observations:
        match = np.flatnonzero((market == observation[:, :-2]).all(axis=(1, 2)))
        assert match.size, "an observation must match a day of the market"
        days |= set(match.tolist())
    return days


def test_day_filter_restricts_training_starts_end_to_end(tmp_path: Path) -> None:
    recorder = RecordingBuilder()
    stage = make_tiny_stage(env_builder="recording")
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, day_filter="index_up_days"))
    pm = get_plugin_manager(plugins=[("recorder", recorder),
                                     ("filters", FilterPlugin(IndexUpDays()))])
    registry = Registry(pm)
    lines: list[str] = []
    options = RunOptions(out_dir=tmp_path, data=DataOptions(source="synthetic"),
                         progress=False, device="cpu")
    CurriculumRunner(registry, options, echo=lines.append).run([stage])

    (train_request, train_env), *backtests = recorder.built
    assert train_request.split == "train" and train_request.mode == "train"
    # The mask is the filter's answer on the index's real closes, on the stage's calendar.
    panel = train_request.panel
    index = load_stage_panel(registry.data_source("synthetic"),
                             attrs.evolve(stage, tickers=("IDX",)), options.data)
    closes = dict(zip(index.dates.tolist(), index.close[:, 0], strict=True))
    idx = np.array([closes[day] for day in panel.dates.tolist()])
    expected = np.concatenate([[False], idx[1:] > idx[:-1]])
    np.testing.assert_array_equal(train_request.start_mask, expected)
    first, last = panel.index_range(stage.splits.train)
    assert any(f"allows episode starts on {expected[first:last + 1].sum():,} of "
               f"{last - first + 1:,} training days" in line for line in lines)
    # Backtests are not filtered: they cover the whole split.
    assert all(request.start_mask is None for request, _ in backtests)

    # Every episode the training environment starts begins on an allowed day.
    env = train_env
    market = env.market.observations
    starts = _days_of(env.reset(), market)
    rng = np.random.default_rng(0)
    for _ in range(4 * stage.env.episode_length):
        observations, _, dones, _ = env.step(rng.uniform(-1, 1, (env.num_envs, 3)))
        if dones.any():
            starts |= _days_of(observations[dones], market)
    assert len(starts) > 10
    assert expected[sorted(starts)].all()
    assert not expected[first:last + 1].all(), "the filter must exclude some days"


def _start_mask(tmp_path: Path, day_filter: DayFilter, stage: StageSpec) -> Any:
    """The stage's episode-start mask, computed as every training path computes it."""
    registry = Registry(get_plugin_manager(plugins=[("filters", FilterPlugin(day_filter))]))
    options = RunOptions(out_dir=tmp_path, data=DataOptions(source="synthetic"),
                         progress=False, device="cpu")
    run = RunContext(registry=registry, options=options, echo=lambda _: None)
    return prepare_stage(run, stage).start_mask


@pytest.mark.parametrize(("answer", "problem"), [
    (lambda n: np.ones(n - 1, dtype=bool), r"shape \(\d+,\)"),
    (lambda n: np.ones(n), "float64"),
    (lambda n: [True] * n, None),  # a list of booleans is accepted
])
def test_a_malformed_day_mask_is_reported_naming_filter_and_plugin(
        tmp_path: Path, answer: Callable[[int], Any], problem: str | None) -> None:
    class Odd(DayFilter):
        name = "odd"

        def select(self, context: DayFilterContext) -> Any:
            return answer(context.panel.n_days)

    stage = make_tiny_stage()
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, day_filter="odd"))
    if problem is None:
        assert _start_mask(tmp_path, Odd(), stage).all()
        return
    with pytest.raises(PluginError, match=rf"day filter 'odd' of plugin 'filters' returned "
                                          rf"an array of .*{problem}.*one per panel day"):
        _start_mask(tmp_path, Odd(), stage)


def test_a_failing_day_filter_is_named(tmp_path: Path) -> None:
    class Crashing(DayFilter):
        name = "crashing"

        def select(self, context: DayFilterContext) -> Any:
            raise ZeroDivisionError("oops")

    stage = make_tiny_stage()
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, day_filter="crashing"))
    with pytest.raises(PluginError, match="day filter 'crashing' of plugin 'filters' failed: "
                                          "ZeroDivisionError: oops"):
        _start_mask(tmp_path, Crashing(), stage)


def test_a_filter_excluding_every_day_stops_before_training(
        tiny_stage_file: Callable[..., Path], run_cli: Callable[..., CliResult],
        tmp_path: Path) -> None:
    class Never(DayFilter):
        name = "never"

        def select(self, context: DayFilterContext) -> Any:
            return np.zeros(context.panel.n_days, dtype=bool)

    path = tiny_stage_file()
    path.write_text(path.read_text().replace("window = 4\n", 'window = 4\nday_filter = "never"\n',
                                             1))
    pm = get_plugin_manager(plugins=[("filters", FilterPlugin(Never()))])
    result = run_cli("run", "stage", "tiny1", "--stage-file", str(path), "--source", "synthetic",
                     "--out", str(tmp_path / "out"), "--no-progress", pm=pm)
    assert result.code == 1
    assert "no allowed episode start between" in result.err
    assert "day filter excludes every day" in result.err
    assert not (tmp_path / "out" / "models").exists()


def test_an_unknown_day_filter_is_refused_before_training(
        tiny_stage_file: Callable[..., Path], run_cli: Callable[..., CliResult],
        tmp_path: Path) -> None:
    path = tiny_stage_file()
    path.write_text(path.read_text().replace("window = 4\n", 'window = 4\nday_filter = "bull"\n',
                                             1))
    import importlib.util

    # Where the regimes example is installed, block it so that 'bull' is unknown.
    block = ["--block-plugin", "regimes"] if importlib.util.find_spec("ploutos_regimes") else []
    result = run_cli(*block, "run", "stage", "tiny1", "--stage-file",
                     str(path), "--source", "synthetic", "--out", str(tmp_path / "out"),
                     "--no-progress")
    assert result.code == 1
    assert "unknown day filter 'bull'" in result.err
    assert not (tmp_path / "out").exists()


def test_load_close_of_a_missing_day_is_a_data_error(tmp_path: Path) -> None:
    """An index with holes on the stage's calendar cannot be classified silently."""
    from ploutos_plugins.synthetic_source import SyntheticSource

    class Holey(SyntheticSource):
        name = "holey"

        def fetch(self, request: Any) -> Any:
            frames = dict(super().fetch(request))
            if "IDX" in frames:
                frames["IDX"] = frames["IDX"].drop(frames["IDX"].index[300])
            return frames

    class Sources:
        @hookimpl
        def ploutos_register_data_sources(self, register):  # type: ignore[no-untyped-def]
            register(Holey())

    stage = make_tiny_stage()
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, day_filter="index_up_days"))
    registry = Registry(get_plugin_manager(plugins=[("filters", FilterPlugin(IndexUpDays())),
                                                    ("sources", Sources())]))
    options = RunOptions(out_dir=tmp_path, data=DataOptions(source="holey"), device="cpu")
    run = RunContext(registry=registry, options=options, echo=lambda _: None)
    with pytest.raises(DataError, match=r"IDX: no price on \d{4}-\d\d-\d\d, a trading day of "
                                        r"AAA,BBB; the day filter 'index_up_days' needs it"):
        prepare_stage(run, stage)


def test_installed_plugin_with_unknown_hook_is_skipped_not_fatal(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.metadata as md
    import types

    from ploutos_core.pluginmanager import manager as plugins_module

    module = types.ModuleType("misspelt_installed")
    exec("from ploutos_core import hookimpl\n@hookimpl\ndef ploutos_register_stage(register):\n"
         "    pass\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "misspelt_installed", module)
    real = plugins_module._entry_points()
    extra = md.EntryPoint(name="misspelt", value="misspelt_installed", group="ploutos")
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: [*real, extra])
    pm = get_plugin_manager()
    assert not pm.has_plugin("misspelt")
    (error,) = pm.load_errors
    assert "plugin 'misspelt' implements an unknown hook" in str(error)
    assert "\n" not in str(error)
    assert "stage1" in Registry(pm).all("stages")
