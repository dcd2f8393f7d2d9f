"""``ploutos_core.testing``: the checkers pass good plugins and name what is wrong with bad ones."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest

from ploutos_core import Agent, DataRequest, DataSource, Registry, StageSpec, TrainingSetup
from ploutos_core.data.panel import DateRange
from ploutos_core.testing import ContractError, check_algorithm, check_data_source, check_stage
from tests.conftest import make_tiny_stage

# --- check_data_source ------------------------------------------------------------------


def test_builtin_synthetic_source_passes(registry: Registry) -> None:
    panel = check_data_source(registry.data_source("synthetic"), tickers=("AAA", "BBB"))
    assert panel.tickers == ("AAA", "BBB")
    assert panel.date(0) >= dt.date(2015, 1, 1) and panel.date(panel.n_days - 1) <= \
        dt.date(2016, 12, 31)


def test_builtin_csv_source_passes_and_refuses_unknown_tickers(registry: Registry,
                                                               tmp_path: Path) -> None:
    dates = pd.bdate_range("2015-01-01", "2016-12-30")
    close = np.linspace(100, 120, len(dates))
    pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Open": close, "High": close + 1,
                  "Low": close - 1, "Close": close, "Adj Close": close, "Volume": 1000}
                 ).to_csv(tmp_path / "SPY.csv", index=False)
    panel = check_data_source(registry.data_source("csv"), tickers=("SPY",), data_dir=tmp_path,
                              unknown_ticker="NOPE")
    assert panel.n_days == len(dates)


class _Frames(DataSource):
    """A source answering with whatever ``answer(request)`` returns."""

    name = "scripted"

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def fetch(self, request: DataRequest) -> Mapping[str, pd.DataFrame]:
        return self.answer(request)  # type: ignore[no-any-return]


def _frame(request: DataRequest, seed: int = 0, close_on_day_3: float | None = None
           ) -> pd.DataFrame:
    dates = pd.bdate_range(request.start, request.end)
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(len(dates))))
    if close_on_day_3 is not None:
        close[3] = close_on_day_3
    return pd.DataFrame({"open": close, "high": np.abs(close) * 1.01,
                         "low": np.abs(close) * 0.99, "close": close, "volume": 1.0},
                        index=dates)


@pytest.mark.parametrize(("answer", "message"), [
    (lambda r: [_frame(r)], "returned list; fetch must return a mapping"),
    (lambda r: {}, "returned no frame for 'SPY'"),
    (lambda r: {"SPY": _frame(r).to_numpy()}, "returned ndarray for 'SPY'; expected a "
                                              "pandas.DataFrame"),
    (lambda r: {"SPY": _frame(r, close_on_day_3=-5.0)},
     r"returned data the core refuses: SPY: open price -5.0 on 2015-01-06"),
    (lambda r: {"SPY": _frame(r, seed=int(np.random.default_rng().integers(1 << 30)))},
     "returned different prices for the same request"),
    (lambda r: {}["SPY"], "raised KeyError"),
])
def test_bad_sources_are_named_with_the_problem(answer: Any, message: str) -> None:
    with pytest.raises(ContractError, match=rf"data source 'scripted' {message}"):
        check_data_source(_Frames(answer))


def test_a_silently_empty_answer_for_an_unknown_ticker_is_refused() -> None:
    def answer(request: DataRequest) -> Mapping[str, pd.DataFrame]:
        return {t: _frame(request) for t in request.tickers if t == "SPY"}

    with pytest.raises(ContractError, match="answered the unknown ticker 'XYZ' without raising "
                                            "DataError"):
        check_data_source(_Frames(answer), unknown_ticker="XYZ")


def test_a_source_without_a_name_is_refused() -> None:
    class Nameless(_Frames):
        name = ""

    with pytest.raises(ContractError, match="needs a non-empty string class attribute 'name'"):
        check_data_source(Nameless(lambda r: {}))


# --- check_stage ------------------------------------------------------------------------


def test_builtin_stages_pass(registry: Registry) -> None:
    for stage in registry.curriculum("default"):
        assert check_stage(stage, registry).panel is None


def test_with_a_source_the_stage_is_built(registry: Registry) -> None:
    checked = check_stage(make_tiny_stage(), registry, source="synthetic")
    assert checked.panel is not None and checked.panel.tickers == ("AAA", "BBB")
    assert checked.start_mask is None
    assert checked.env.observation_space.shape[0] == 2


@pytest.mark.parametrize(("change", "message"), [
    ({"algorithm": "nope"}, r"algorithm = 'nope' is not registered \(available: (\w+, )*ppo, "),
    ({"env_builder": "gym"}, "env_builder = 'gym' is not registered"),
    ({"env": attrs.evolve(make_tiny_stage().env, day_filter="full_moon")},
     "env.day_filter = 'full_moon' is not registered"),
])
def test_stage_naming_something_unregistered_is_refused(registry: Registry,
                                                        change: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ContractError, match=rf"stage 'tiny': {message}"):
        check_stage(make_tiny_stage(**change), registry)


def test_stage_whose_data_the_source_cannot_supply_is_refused(registry: Registry) -> None:
    stage = make_tiny_stage(splits=attrs.evolve(
        make_tiny_stage().splits, train=DateRange(dt.date(1980, 1, 1), dt.date(1982, 12, 31))))
    with pytest.raises(ContractError, match="stage 'tiny' cannot be set up with source "
                                            "'synthetic': the train split"):
        check_stage(stage, registry, source="synthetic")


def test_not_a_stage_is_refused() -> None:
    with pytest.raises(ContractError, match=r"expected a ploutos_core.StageSpec, got dict"):
        check_stage({"name": "x"})  # type: ignore[arg-type]


def test_a_stage_that_does_not_survive_a_stage_file_is_refused(registry: Registry) -> None:
    """A hand-built stage with a value TOML cannot hold (here: a name with a capital)."""
    stage = attrs.evolve(make_tiny_stage(), description="tab\there")
    assert check_stage(stage, registry)  # control: escapes survive
    odd = StageSpec.__new__(StageSpec)
    for field in attrs.fields(StageSpec):
        object.__setattr__(odd, field.name, getattr(stage, field.name))
    object.__setattr__(odd, "name", "Tiny")  # bypasses the validator, as buggy code might
    with pytest.raises(ContractError, match="cannot be written as a stage file and read back"):
        check_stage(odd, registry)


# --- check_algorithm --------------------------------------------------------------------


def test_builtin_ppo_passes(registry: Registry) -> None:
    result = check_algorithm(registry.algorithm("ppo"))
    assert result.num_timesteps >= 64 and result.steps_seen > 0 and result.transfers


def test_an_algorithm_that_loads_nothing_is_refused(registry: Registry) -> None:
    ppo = registry.algorithm("ppo")

    class Forgetful(type(ppo)):  # type: ignore[misc]
        name = "forgetful"

        def load(self, path: Path, env: Any, setup: TrainingSetup) -> Agent:
            return self.build(env, attrs.evolve(setup, seed=setup.seed + 1))

    with pytest.raises(ContractError, match="algorithm 'forgetful': load restored 0 steps"):
        check_algorithm(Forgetful())


def test_wrong_supports_transfer_flags_are_refused(registry: Registry) -> None:
    class Claims(type(registry.algorithm("recurrent_ppo"))):  # type: ignore[misc]
        name = "claims"
        supports_transfer = True

    with pytest.raises(ContractError, match="declares supports_transfer=True but a 2-asset "
                                            "model does not load into a 3-asset environment"):
        check_algorithm(Claims())

    class Modest(type(registry.algorithm("a2c"))):  # type: ignore[misc]
        name = "modest"
        supports_transfer = False

    with pytest.raises(ContractError, match="declares supports_transfer=False but a 2-asset "
                                            "model loaded"):
        check_algorithm(Modest())


def test_wrong_supports_freeze_flags_are_refused(registry: Registry) -> None:
    ppo = registry.algorithm("ppo")

    class Unclaimed(type(ppo)):  # type: ignore[misc]
        name = "unclaimed"
        supports_freeze = False

    with pytest.raises(ContractError, match="its agent implements set_trainable but the "
                                            "algorithm declares supports_freeze=False"):
        check_algorithm(Unclaimed())

    class Overclaimed(type(ppo)):  # type: ignore[misc]
        name = "overclaimed"

        def build(self, env: Any, setup: TrainingSetup) -> Agent:
            agent = super().build(env, setup)
            agent.set_trainable = Agent.set_trainable.__get__(agent)  # type: ignore[method-assign]
            return agent

    with pytest.raises(ContractError, match="declares supports_freeze=True but its agent's "
                                            "set_trainable is not implemented"):
        check_algorithm(Overclaimed())


def test_a_noisy_deterministic_predict_is_refused(registry: Registry) -> None:
    ppo = registry.algorithm("ppo")

    class Jittery(type(ppo)):  # type: ignore[misc]
        name = "jittery"

        def build(self, env: Any, setup: TrainingSetup) -> Agent:
            agent = super().build(env, setup)
            predict = agent.predict

            def noisy(observation: Any, deterministic: bool = True) -> Any:
                return predict(observation, deterministic) + np.random.normal(0, 0.1)

            agent.predict = noisy  # type: ignore[method-assign]
            return agent

    with pytest.raises(ContractError, match="algorithm 'jittery': two deterministic backtests "
                                            "differ"):
        check_algorithm(Jittery())


def test_a_save_that_does_not_create_its_folder_is_refused(registry: Registry) -> None:
    """Issue 13: runs save checkpoints into folders that do not exist yet."""
    ppo = registry.algorithm("ppo")

    class Careless(type(ppo)):  # type: ignore[misc]
        name = "careless"

        def build(self, env: Any, setup: TrainingSetup) -> Agent:
            agent = super().build(env, setup)

            def save(path: Path, metadata: Any) -> None:
                with open(path, "wb") as handle:  # no mkdir: fails in a new folder
                    handle.write(b"")

            agent.save = save  # type: ignore[method-assign]
            return agent

    with pytest.raises(ContractError, match=r"algorithm 'careless': save\(.*\) failed .*create "
                                            r"the folders"):
        check_algorithm(Careless())


def test_a_model_file_evaluate_would_misread_is_refused(registry: Registry) -> None:
    """Issue 13: ``ploutos evaluate`` picks the algorithm the file names."""
    ppo = registry.algorithm("ppo")

    class Impostor(type(ppo)):  # type: ignore[misc]
        name = "impostor"

        def build(self, env: Any, setup: TrainingSetup) -> Agent:
            agent = super().build(env, setup)
            agent.algorithm = "ppo"  # writes the wrong name into ploutos.json
            return agent

    with pytest.raises(ContractError, match="records algorithm 'ppo'; 'ploutos evaluate' loads"):
        check_algorithm(Impostor())


def test_the_null_algorithm_keeps_the_contract() -> None:
    """The torch-free test algorithm shipped for plugin authors is a valid algorithm."""
    from ploutos_core.testing.null import NullAlgorithm

    result = check_algorithm(NullAlgorithm())
    assert result.num_timesteps >= 64 and result.transfers
