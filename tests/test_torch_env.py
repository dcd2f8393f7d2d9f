"""The torch backend of the portfolio environment steps exactly like the NumPy env (issue 15).

Both are stepped side by side with the same actions from the same start days (the torch
env's start-day sampler is told the days the NumPy env drew), and must give equal
observations, rewards, dones and infos to float32 tolerance, for several stage settings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
import torch

from ploutos_core import DataRequest, EnvRequest
from ploutos_core.config.stage import EnvSettings
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import Panel
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.env.torch_portfolio import TorchPortfolioVecEnv
from tests.conftest import make_tiny_stage

SETTINGS: dict[str, dict[str, Any]] = {
    "softmax": {},
    "softmax_band_penalty": {"no_trade_band": 0.05, "turnover_penalty": 0.002},
    "tilt_smooth_band_relative": {"action": "tilt", "target_smoothing": 0.8,
                                  "no_trade_band": 0.02, "reward": "relative_log_return",
                                  "tilt_scale": 2.0, "max_cash": 0.5},
    "tilt_risk_aversion_deviation": {"action": "tilt", "risk_aversion": 4.0,
                                     "target_smoothing": 0.5, "deviation_penalty": 0.001},
    "relative_risk_aversion": {"action": "tilt", "reward": "relative_log_return",
                               "risk_aversion": 3.0},
    "differential_sharpe": {"reward": "differential_sharpe", "action_scale": 2.0},
    "volatility_target_relative": {"action": "tilt", "exposure": "volatility_target",
                                   "reward": "relative_log_return", "target_smoothing": 0.5,
                                   "no_trade_band": 0.01, "deviation_penalty": 0.001},
}


@pytest.fixture(scope="module")
def panels() -> dict[int, Panel]:
    from ploutos_core import Registry, get_plugin_manager

    source = Registry(get_plugin_manager()).data_source("synthetic")
    return {n: load_panel(source, DataRequest(tickers=("AAA", "BBB", "CCC")[:n],
                                              start=dt.date(2008, 1, 1),
                                              end=dt.date(2011, 12, 31), seed=3))
            for n in (1, 3)}


def pair(panel: Panel, settings: EnvSettings, mode: str, n_envs: int,
         start_mask: np.ndarray | None = None) -> tuple[PortfolioVecEnv, TorchPortfolioVecEnv]:
    market = MarketArrays.from_panel(panel, settings, 300, panel.n_days - 1, label="test")
    numpy_env = PortfolioVecEnv(market, n_envs, settings, 0.001, mode=mode,  # type: ignore[arg-type]
                                seed=4, start_mask=start_mask)
    torch_env = TorchPortfolioVecEnv.from_numpy(numpy_env, "cpu", seed=4)
    # Resets start where the NumPy env's sampler sent the same environments.
    torch_env.sample_start_days = lambda: torch.as_tensor(numpy_env._day)  # type: ignore[method-assign]
    return numpy_env, torch_env


def compare_infos(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    assert len(expected) == len(got)
    for a, b in zip(expected, got, strict=True):
        assert set(a) == set(b)
        for key in a:
            if key == "episode":
                assert a[key]["l"] == b[key]["l"]
                np.testing.assert_allclose(b[key]["r"], a[key]["r"], rtol=1e-9, atol=1e-12)
            elif key in ("weights", "target", "terminal_observation"):
                np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-7)
            elif isinstance(a[key], float):
                np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-12)
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("assets", [1, 3])
@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("mode", ["train", "backtest"])
def test_torch_env_steps_like_the_numpy_env(panels: dict[int, Panel], name: str, assets: int,
                                            mode: str) -> None:
    settings = EnvSettings(episode_length=15, window=3, **SETTINGS[name])
    n_envs = 5 if mode == "train" else 1
    numpy_env, torch_env = pair(panels[assets], settings, mode, n_envs)
    np.testing.assert_array_equal(torch_env.observation().numpy(), numpy_env._observe())
    rng = np.random.default_rng(11)
    steps = 70 if mode == "train" else numpy_env.episode_length + 5  # past one backtest end
    finished = 0
    for _ in range(steps):
        actions = rng.uniform(-1.3, 1.3, (n_envs, assets + 1)).astype(np.float32)
        obs_a, rew_a, done_a, info_a = numpy_env.step(actions)
        obs_b, rew_b, done_b, info_b = torch_env.step(actions)
        np.testing.assert_array_equal(done_b, done_a)
        np.testing.assert_allclose(obs_b, obs_a, rtol=1e-6, atol=1e-7)
        assert rew_b.dtype == rew_a.dtype == np.float32
        np.testing.assert_allclose(rew_b, rew_a, rtol=1e-5, atol=1e-7)
        compare_infos(info_a, info_b)
        finished += int(done_a.sum())
    assert finished >= n_envs  # automatic resets were compared too
    np.testing.assert_allclose(torch_env.value.numpy(), numpy_env._value, rtol=1e-9)


def test_device_step_needs_no_host_and_matches_the_vecenv_step(panels: dict[int, Panel]) -> None:
    settings = EnvSettings(episode_length=10, window=3, action="tilt", target_smoothing=0.3)
    numpy_env, torch_env = pair(panels[3], settings, "train", 4)
    actions = torch.linspace(-1, 1, 16, dtype=torch.float32).reshape(4, 4)
    before_day, before_weights = torch_env.day.clone(), torch_env.weights.clone()
    step = torch_env.step_tensors(actions)
    _, rewards, dones, _ = numpy_env.step(actions.numpy())
    np.testing.assert_allclose(step.reward.numpy(), rewards, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(step.day.numpy(), before_day.numpy())
    # The observation after the step is rebuilt from (day + 1, next weights).
    rebuilt = torch_env.observe(step.day + 1, step.next_weights)
    np.testing.assert_allclose(rebuilt.numpy(), numpy_env._observe(), rtol=1e-6, atol=1e-7)
    # observe() of stored (day, weights) pairs equals observation() of that state.
    np.testing.assert_array_equal(
        torch_env.observe(before_day, before_weights.float())[0].numpy(),
        torch_env.observe(before_day[:1], before_weights[:1])[0].numpy())
    assert not dones.any()


def test_own_sampler_honours_the_start_mask_and_the_seed(panels: dict[int, Panel]) -> None:
    settings = EnvSettings(episode_length=5, window=3)
    panel = panels[1]
    mask = np.zeros(panel.n_days, dtype=bool)
    mask[[400, 410, 420]] = True
    market = MarketArrays.from_panel(panel, settings, 300, panel.n_days - 1, label="test")
    runs = []
    for _ in range(2):
        env = TorchPortfolioVecEnv(market, 64, settings, 0.001, seed=7, start_mask=mask)
        days = [env.day.clone()]
        for _ in range(12):
            env.step_tensors(torch.zeros(64, 2))
            days.append(env.day.clone())
        runs.append(torch.stack(days))
    assert torch.equal(runs[0], runs[1])  # same seed, same starts
    starts = runs[0][[0, 5, 10]]  # every episode restarted at steps 5 and 10
    assert set(starts.unique().tolist()) == {400, 410, 420}


def test_state_dict_round_trip_continues_exactly(panels: dict[int, Panel]) -> None:
    settings = EnvSettings(episode_length=7, window=3, reward="differential_sharpe")
    market = MarketArrays.from_panel(panels[3], settings, 300, panels[3].n_days - 1,
                                     label="test")
    env = TorchPortfolioVecEnv(market, 8, settings, 0.001, seed=1)
    actions = torch.rand(20, 8, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for t in range(5):
        env.step_tensors(actions[t])
    saved = env.state_dict()
    first = [env.step_tensors(actions[t]).reward for t in range(5, 20)]
    other = TorchPortfolioVecEnv(market, 8, settings, 0.001, seed=99)
    assert other.load_state_dict(saved)
    second = [other.step_tensors(actions[t]).reward for t in range(5, 20)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not TorchPortfolioVecEnv(market, 3, settings, 0.001).load_state_dict(saved)


def test_builder_builds_the_torch_env_and_takes_universes(registry: Any) -> None:
    from ploutos_core.data.stage_data import DataOptions, load_stage_panel

    stage = make_tiny_stage()
    panel = load_stage_panel(registry.data_source("synthetic"), stage,
                             DataOptions(source="synthetic"))
    builder = registry.env_builder("torch_portfolio")
    assert builder.supports_universe is True
    env = builder.build(EnvRequest(panel=panel, stage=stage, n_envs=3))
    reference = registry.env_builder("portfolio").build(EnvRequest(panel=panel, stage=stage,
                                                                   n_envs=3))
    assert isinstance(env, TorchPortfolioVecEnv)
    assert env.observation_space == reference.observation_space
    assert env.action_space == reference.action_space
    assert env.reset().shape == (3, *reference.observation_space.shape)

