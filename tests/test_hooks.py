"""Every hook: documented with its exact signature, and exercised by a throwaway plugin."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ploutos_core import (
    Algorithm,
    Broker,
    BrokerAccount,
    BrokerError,
    BrokerRequest,
    CycleOutcome,
    CycleRecord,
    DataRequest,
    DataSource,
    DayFilter,
    EnvBuilder,
    Fill,
    Holdings,
    LoggerFactory,
    MetricLogger,
    Registry,
    Tuner,
    get_plugin_manager,
    hookimpl,
)
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.pluginmanager.hookdocs import hook_functions, render, signature_of
from ploutos_core.testing.null import NullPlugin
from ploutos_core.training.runner import CurriculumRunner, RunOptions
from ploutos_plugins.synthetic_source import SyntheticSource
from tests.conftest import make_tiny_stage

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def run_stages(plugin: object, stages: list[Any], tmp_path: Path, **options: Any) -> Any:
    # Training is not what these tests check: the torch-free null algorithm runs it.
    pm = get_plugin_manager(plugins=[("throwaway", plugin), ("null", NullPlugin())])
    registry = Registry(pm)
    run_options = RunOptions(out_dir=tmp_path, data=DataOptions(source="synthetic"),
                             progress=False, **options)
    runner = CurriculumRunner(registry, run_options, echo=lambda line: None)
    return runner.run(stages)


def test_hook_reference_is_generated_from_the_specs() -> None:
    assert DOCS.read_text() == render(), \
        "run: python -m ploutos_core.pluginmanager.hookdocs > docs/hooks.md"


def test_every_hook_is_documented_and_tested() -> None:
    text = DOCS.read_text()
    for name, function in hook_functions():
        assert f"```python\n{signature_of(function)}\n```" in text
        assert inspect.getdoc(function), f"{name} has no docstring"
        assert callable(globals().get(f"test_hook_{name}")), f"write test_hook_{name}"


def test_hook_ploutos_register_data_sources(run_cli) -> None:
    class Renamed(SyntheticSource):
        name = "renamed"

    class Plugin:
        @hookimpl
        def ploutos_register_data_sources(self, register):  # type: ignore[no-untyped-def]
            register(Renamed())

    pm = get_plugin_manager(plugins=[("p", Plugin())])
    result = run_cli("data", "fetch", "--source", "renamed", "--tickers", "X", "--start",
                     "2010-01-01", "--end", "2010-01-31", pm=pm)
    assert result.code == 0 and "from renamed" in result.out


def test_hook_ploutos_register_env_builders(tmp_path: Path) -> None:
    built = []

    class Counting(EnvBuilder):
        name = "counting"

        def build(self, request):  # type: ignore[no-untyped-def]
            built.append((request.split, request.mode))
            from ploutos_plugins.portfolio_env import PortfolioEnvBuilder

            return PortfolioEnvBuilder().build(request)

    class Plugin:
        @hookimpl
        def ploutos_register_env_builders(self, register):  # type: ignore[no-untyped-def]
            register(Counting())

    run_stages(Plugin(), [make_tiny_stage(env_builder="counting")], tmp_path)
    assert ("train", "train") in built and ("validation", "backtest") in built


def test_hook_ploutos_register_algorithms(tmp_path: Path) -> None:
    from ploutos_plugins.ppo import PPOAlgorithm

    used = []

    class Traced(PPOAlgorithm):
        name = "traced"

        def build(self, env, setup):  # type: ignore[no-untyped-def]
            used.append(setup.hyperparameters.hidden_size)
            return super().build(env, setup)

    class Plugin:
        @hookimpl
        def ploutos_register_algorithms(self, register):  # type: ignore[no-untyped-def]
            register(Traced())

    (result,) = run_stages(Plugin(), [make_tiny_stage()], tmp_path, algorithm="traced")
    assert used == [16] and result.num_timesteps >= 512



def test_plugins_that_cannot_sample_sub_universes_are_refused_before_training(
        tmp_path: Path) -> None:
    """An algorithm or env builder declaring ``supports_universe = False`` gets a
    one-line refusal for a universe stage, before anything trains or is written."""
    from ploutos_core import ConfigError
    from ploutos_core.config.stage import UniverseSettings
    from ploutos_plugins.portfolio_env import PortfolioEnvBuilder
    from ploutos_plugins.ppo import PPOAlgorithm

    class SetBound(PPOAlgorithm):
        name = "set_bound"
        supports_universe = False

    class FixedEnv(PortfolioEnvBuilder):
        name = "fixed"
        supports_universe = False

    class Plugin:
        @hookimpl
        def ploutos_register_algorithms(self, register):  # type: ignore[no-untyped-def]
            register(SetBound())

        @hookimpl
        def ploutos_register_env_builders(self, register):  # type: ignore[no-untyped-def]
            register(FixedEnv())

    universe = UniverseSettings(tickers=("P1", "P2", "P3"), fraction=0.5)
    with pytest.raises(ConfigError, match=r"algorithm 'set_bound' cannot train on a "
                                          r"\[stage.universe\]"):
        run_stages(Plugin(), [make_tiny_stage(universe=universe)], tmp_path,
                   algorithm="set_bound")
    with pytest.raises(ConfigError, match=r"env builder 'fixed' cannot train on a "
                                          r"\[stage.universe\]"):
        run_stages(Plugin(), [make_tiny_stage(env_builder="fixed", universe=universe)],
                   tmp_path)
    assert not (tmp_path / "models").exists()

def test_an_algorithm_that_cannot_freeze_is_refused_before_training(tmp_path: Path) -> None:
    """``supports_freeze = False`` (the null algorithm's): a stage with a freeze_fraction
    that starts from the stage before is refused before anything trains or is written; a
    first stage, which transfers nothing, trains."""
    from ploutos_core import ConfigError
    from ploutos_core.config.stage import TransferSettings

    class NoPlugin:
        pass

    transfer = TransferSettings(parameters=("encoder",), freeze_fraction=0.5)
    first = make_tiny_stage("first", order=1)
    second = make_tiny_stage("second", order=2, transfer=transfer)
    with pytest.raises(ConfigError, match=r"^second: algorithm 'null' cannot keep the "
                                          r"transferred tensors fixed, which \[stage.transfer\] "
                                          r"freeze_fraction needs; set it to 0 or use "
                                          r"--algorithm ppo$"):
        run_stages(NoPlugin(), [first, second], tmp_path, algorithm="null")
    assert not (tmp_path / "models").exists()
    (result,) = run_stages(NoPlugin(), [second], tmp_path / "alone", algorithm="null")
    assert result.final_model is not None


def test_hook_ploutos_register_tuners(tmp_path: Path) -> None:
    from ploutos_core import TuningResult

    class Fixed(Tuner):
        name = "fixed"

        def tune(self, problem):  # type: ignore[no-untyped-def]
            return TuningResult(best_params={"learning_rate": 5e-4, "n_steps": 16,
                                             "ent_coef": 0.003},
                                best_value=1.0, trials_completed=1, trials_pruned=0,
                                study_name=problem.study_name, storage=problem.storage)

    class Plugin:
        @hookimpl
        def ploutos_register_tuners(self, register):  # type: ignore[no-untyped-def]
            register(Fixed())

    run_stages(Plugin(), [make_tiny_stage()], tmp_path, auto_optimize=True, tuner="fixed")
    from ploutos_core.agents.model_files import read_metadata

    hp = read_metadata(tmp_path / "models" / "tiny_final.zip")["hyperparameters"]
    assert (hp["learning_rate"], hp["n_steps"], hp["ent_coef"]) == (5e-4, 16, 0.003)


def test_hook_ploutos_register_loggers(tmp_path: Path) -> None:
    records: list[tuple[int, dict[str, float]]] = []

    class Memory(MetricLogger):
        def write(self, metrics, step):  # type: ignore[no-untyped-def]
            records.append((step, dict(metrics)))

    class MemoryFactory(LoggerFactory):
        name = "memory"
        default_enabled = True

        def open(self, run):  # type: ignore[no-untyped-def]
            return Memory()

    class Plugin:
        @hookimpl
        def ploutos_register_loggers(self, register):  # type: ignore[no-untyped-def]
            register(MemoryFactory())

    run_stages(Plugin(), [make_tiny_stage()], tmp_path)
    keys = set().union(*(metrics for _, metrics in records))
    assert any(key.startswith("train/") for key in keys)
    assert [step for step, _ in records] == sorted(step for step, _ in records)


def test_hook_ploutos_register_stages(run_cli) -> None:
    class Plugin:
        @hookimpl
        def ploutos_register_stages(self, register):  # type: ignore[no-untyped-def]
            register(make_tiny_stage("hooked"))

    result = run_cli("stages", "show", "hooked", pm=get_plugin_manager(plugins=[("p", Plugin())]))
    assert result.code == 0 and 'name = "hooked"' in result.out


def test_hook_ploutos_register_day_filters(tmp_path: Path) -> None:
    seen = {}

    class EveryFifth(DayFilter):
        name = "every_fifth"

        def select(self, context):  # type: ignore[no-untyped-def]
            seen["spy"] = context.load_close("SPY").shape
            seen["days"] = context.panel.n_days
            mask = np.zeros(context.panel.n_days, dtype=bool)
            mask[::5] = True
            return mask

    class Plugin:
        @hookimpl
        def ploutos_register_day_filters(self, register):  # type: ignore[no-untyped-def]
            register(EveryFifth())

    import attrs

    stage = make_tiny_stage()
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, day_filter="every_fifth"))
    run_stages(Plugin(), [stage], tmp_path)
    assert seen["spy"] == (seen["days"],)


class MemoryAccount(BrokerAccount):
    """A broker account held in memory: the contract needs no SQLite. A cycle works on a
    copy of the state and replaces the state only when it completes."""

    def __init__(self, request: BrokerRequest) -> None:
        self.request = request
        self.state: dict[str, Any] = {"cash": request.initial_cash, "positions": {},
                                      "cycles": []}

    def holdings(self) -> Holdings:
        return Holdings(cash=self.state["cash"], positions=self.state["positions"],
                        day=self.state["cycles"][-1].day if self.state["cycles"] else None)

    def run_cycle(self, day, market, plan, details):  # type: ignore[no-untyped-def]
        import copy

        cycles = self.state["cycles"]
        done = [c for c in cycles if c.day == day]
        if done:
            return CycleOutcome(record=done[0], already_recorded=True)
        if cycles and cycles[-1].day > day:
            raise BrokerError(f"{cycles[-1].day} is recorded, after {day}")
        work = copy.deepcopy(self.state)
        fills = []
        if cycles:
            row = market.first_after(cycles[-1].day)
            for order in cycles[-1].orders:
                price = float(market.close[row, market.tickers.index(order.ticker)])
                cost = abs(order.shares) * price * self.request.cost_rate
                work["cash"] -= order.shares * price + cost
                work["positions"][order.ticker] = work["positions"].get(order.ticker, 0.0) \
                    + order.shares
                fills.append(Fill(order_day=cycles[-1].day, filled_on=market.date(row),
                                  ticker=order.ticker, shares=order.shares, price=price,
                                  cost=cost))
        holdings = Holdings(cash=work["cash"], positions=work["positions"], day=day)
        orders = tuple(plan(holdings))
        prices = market.prices(market.row(day))
        record = CycleRecord(day=day, recorded_at="now", holdings=holdings,
                             equity=holdings.value(prices), orders=orders, fills=tuple(fills),
                             details=dict(details))
        work["cycles"].append(record)
        self.state = work
        return CycleOutcome(record=record)

    def history(self):  # type: ignore[no-untyped-def]
        return list(self.state["cycles"])


class MemoryBroker(Broker):
    name = "memory"
    description = "in memory, for one test"

    def __init__(self) -> None:
        self.accounts: dict[Path | None, MemoryAccount] = {}

    def open(self, request: BrokerRequest) -> MemoryAccount:
        return self.accounts.setdefault(request.location, MemoryAccount(request))


def test_hook_ploutos_register_brokers(run_cli, tmp_path: Path) -> None:
    from ploutos_core.testing import check_broker
    from tests.trading_helpers import TradingPlugin, save_probe_model, trading_stage

    broker = MemoryBroker()

    class Plugin:
        @hookimpl
        def ploutos_register_brokers(self, register):  # type: ignore[no-untyped-def]
            register(broker)

    check_broker(MemoryBroker())  # the contract holds for an implementation without SQLite
    stage = trading_stage()
    pm = get_plugin_manager(plugins=[("p", Plugin()), ("trading", TradingPlugin(stage))])
    listed = json.loads(run_cli("plugins", "list", "--json", pm=pm).out)
    assert next(p for p in listed if p["name"] == "p")["registers"] == {"brokers": ["memory"]}
    model = save_probe_model(Registry(pm), stage, tmp_path / "m.zip")
    for day in ("2013-06-27", "2013-06-28", "2013-06-28"):
        result = run_cli("trade", "--broker", "memory", "--model", str(model), "--as-of", day,
                         "--source", "synthetic", "--out", str(tmp_path), pm=pm)
        assert result.code == 0, result
    assert "already recorded" in result.out
    (account,) = broker.accounts.values()
    assert [c.day.isoformat() for c in account.history()] == ["2013-06-27", "2013-06-28"]
    assert account.history()[1].fills  # the first day's orders filled at the next close


def test_hook_ploutos_register_commands(run_cli) -> None:
    import click

    class Plugin:
        @hookimpl
        def ploutos_register_commands(self, cli):  # type: ignore[no-untyped-def]
            @cli.command("hello")
            def hello() -> None:
                """Say hello."""
                click.echo("hello from a plugin")

    pm = get_plugin_manager(plugins=[("p", Plugin())])
    assert run_cli("hello", pm=pm).out == "hello from a plugin\n"
    assert "hello" in run_cli("--help", pm=pm).out


class Recorder:
    """Records every event hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def ploutos_before_stage(self, run):  # type: ignore[no-untyped-def]
        self.calls.append(("before", run.stage.name))

    @hookimpl
    def ploutos_on_checkpoint(self, run, checkpoint):  # type: ignore[no-untyped-def]
        assert checkpoint.path.is_file()
        self.calls.append(("checkpoint", f"{run.stage.name}@{checkpoint.num_timesteps}"))

    @hookimpl
    def ploutos_after_stage(self, run, result):  # type: ignore[no-untyped-def]
        assert result.validation is not None and result.final_model.is_file()
        self.calls.append(("after", run.stage.name))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    recorder = Recorder()
    stages = [make_tiny_stage("one", ("AAA",), order=1),
              make_tiny_stage("two", ("AAA", "BBB"), order=2)]
    run_stages(recorder, stages, tmp_path_factory.mktemp("events"), checkpoint_freq=256,
               algorithm="null")
    return recorder.calls


def test_hook_ploutos_before_stage(recorded) -> None:  # type: ignore[no-untyped-def]
    assert [c for c in recorded if c[0] == "before"] == [("before", "one"), ("before", "two")]


def test_hook_ploutos_on_checkpoint(recorded) -> None:  # type: ignore[no-untyped-def]
    assert ("checkpoint", "one@256") in recorded and ("checkpoint", "two@512") in recorded


def test_hook_ploutos_after_stage(recorded) -> None:  # type: ignore[no-untyped-def]
    assert [c for c in recorded if c[0] == "after"] == [("after", "one"), ("after", "two")]


def test_event_hooks_fire_in_the_documented_order(recorded) -> None:  # type: ignore[no-untyped-def]
    kinds = [kind for kind, _ in recorded]
    assert kinds == ["before", "checkpoint", "checkpoint", "after",
                     "before", "checkpoint", "checkpoint", "after"]


def test_data_source_contract_is_checked(registry: Registry) -> None:
    class Lying(DataSource):
        name = "lying"

        def fetch(self, request: DataRequest):  # type: ignore[no-untyped-def]
            return ["not", "a", "mapping"]

    from ploutos_core import PluginError
    from ploutos_core.data.loading import load_panel

    with pytest.raises(PluginError, match="data source 'lying' returned list"):
        load_panel(Lying(), DataRequest(tickers=("A",)))
    assert isinstance(registry.algorithm("ppo"), Algorithm)
