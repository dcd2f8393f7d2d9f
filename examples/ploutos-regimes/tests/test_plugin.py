"""The installed plugin: discovered through its entry point, its stages and filters work.

These tests need the package installed (``pip install -e examples/ploutos-regimes``):
discovery through the ``ploutos`` entry point is what they check.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ploutos_core import PLUGIN_API_VERSION, EnvRequest, Registry, get_plugin_manager
from ploutos_core.testing import check_stage

from ploutos_regimes import REGIMES, classify
from ploutos_regimes import plugin as regimes_plugin

STAGES = ("bull", "sideways", "bear")


@pytest.fixture(scope="module")
def pm() -> Any:
    manager = get_plugin_manager()
    if not manager.has_plugin("regimes"):
        pytest.fail("the 'regimes' plugin is not registered: install the package first "
                    "(pip install -e examples/ploutos-regimes)")
    return manager


@pytest.fixture(scope="module")
def registry(pm: Any) -> Registry:
    return Registry(pm)


def test_found_through_the_ploutos_entry_point(pm: Any) -> None:
    (entry_point,) = importlib.metadata.entry_points(group="ploutos", name="regimes")
    assert entry_point.value == "ploutos_regimes.plugin"
    info = pm.info("regimes")
    assert (info.distribution, info.origin) == ("ploutos-regimes", "entry point")
    assert regimes_plugin.PLOUTOS_API_VERSION == PLUGIN_API_VERSION
    assert not pm.load_errors


def test_registers_three_filters_and_the_regimes_curriculum(registry: Registry) -> None:
    assert [s.name for s in registry.curriculum("regimes")] == list(STAGES)
    for name in REGIMES:
        assert registry.plugin_of("day_filters", name) == "regimes"
        assert registry.plugin_of("stages", name) == "regimes"
        assert registry.stage(name).env.day_filter == name


@pytest.mark.parametrize("name", STAGES)
def test_stage_passes_the_contract_check_and_selects_its_regime(registry: Registry,
                                                                name: str) -> None:
    checked = check_stage(registry.stage(name), registry, source="synthetic")
    assert checked.panel is not None and checked.start_mask is not None
    spy = checked.panel.close[:, checked.panel.tickers.index("SPY")]
    np.testing.assert_array_equal(checked.start_mask, classify(spy).labels == name)
    first, last = checked.panel.index_range(registry.stage(name).splits.train)
    allowed = checked.start_mask[first:last + 1]
    assert 0.05 < allowed.mean() < 0.95, "the filter must restrict, not allow all or nothing"


def _day_of(observation: np.ndarray, market_observations: np.ndarray) -> set[int]:
    """Which panel days an observation's features belong to (read off the features)."""
    features = observation[:, :-2]  # the last two columns are the asset and cash weights
    return set(np.flatnonzero((market_observations == features).all(axis=(1, 2))).tolist())


@pytest.mark.parametrize("name", STAGES)
def test_training_episodes_start_only_on_allowed_days(registry: Registry, name: str) -> None:
    stage = registry.stage(name)
    checked = check_stage(stage, registry, source="synthetic")
    assert checked.panel is not None and checked.start_mask is not None
    env = registry.env_builder(stage.env_builder).build(EnvRequest(
        panel=checked.panel, stage=stage, split="train", n_envs=32, seed=1,
        start_mask=checked.start_mask))
    market = env.market.observations
    rng = np.random.default_rng(0)
    starts: set[int] = set()
    observations = env.reset()
    for observation in observations:
        starts |= _day_of(observation, market)
    for _ in range(3 * stage.env.episode_length):
        actions = rng.uniform(-1, 1, (env.num_envs, *env.action_space.shape))
        observations, _, dones, _ = env.step(actions)
        for index in np.flatnonzero(dones):
            found = _day_of(observations[index], market)
            assert found, "a reset observation must match a day of the market"
            starts |= found
    assert len(starts) > 20
    assert checked.start_mask[sorted(starts)].all(), \
        f"episodes started on days the {name} filter excludes"


def test_run_stage_bull_from_the_cli(tmp_path: Path, ploutos_run_cli: Any) -> None:
    # ploutos_run_cli: a fixture Ploutos ships as a pytest plugin
    result = ploutos_run_cli("run", "stage", "bull", "--source", "synthetic", "--scale",
                             "0.0001", "--ignore-gates", "--no-progress", "--out", str(tmp_path))
    assert result.code == 0, result
    assert (tmp_path / "models" / "bull_final.zip").is_file()
    assert "bull: training" in result.out
