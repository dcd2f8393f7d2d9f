"""The batched portfolio environment: causality, accounting, VecEnv and gymnasium contracts."""

from __future__ import annotations

import datetime as dt

import attrs
import gymnasium as gym
import numpy as np
import pytest

from ploutos_core import DataRequest, EnvRequest
from ploutos_core.config.stage import EnvSettings
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import FIELDS
from ploutos_core.env.accounting import rebalance_and_hold, softmax
from ploutos_core.env.features import compute_features
from ploutos_core.env.market import MarketArrays
from ploutos_core.env.portfolio import PortfolioVecEnv


@pytest.fixture
def panel(registry):  # type: ignore[no-untyped-def]
    return load_panel(registry.data_source("synthetic"),
                      DataRequest(tickers=("AAA", "BBB", "CCC"), start=dt.date(2008, 1, 1),
                                  end=dt.date(2013, 12, 31), seed=5))


def perturb_after(panel, day: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """A copy of ``panel`` with every price and volume after row ``day`` changed."""
    rng = np.random.default_rng(seed)
    factor = np.exp(rng.normal(0, 0.05, panel.close.shape))
    factor[: day + 1] = 1.0
    changed = {name: getattr(panel, name) * factor for name in FIELDS}
    return attrs.evolve(panel, **changed)


def make_env(panel, mode: str = "backtest", n_envs: int = 1, first: int = 300,  # type: ignore[no-untyped-def]
             last: int | None = None, reward: str = "log_return", cost: float = 0.001,
             start_mask=None) -> PortfolioVecEnv:  # type: ignore[no-untyped-def]
    settings = EnvSettings(episode_length=40, window=5, reward=reward)  # type: ignore[arg-type]
    market = MarketArrays.from_panel(panel, settings, first, last or panel.n_days - 1,
                                     label="test")
    return PortfolioVecEnv(market, n_envs, settings, cost, mode=mode, seed=0,  # type: ignore[arg-type]
                           start_mask=start_mask)


@pytest.mark.parametrize("day", [300, 555, 900])
def test_features_at_t_ignore_every_later_price(panel, day: int) -> None:
    original = compute_features(panel).values[: day + 1]
    changed = compute_features(perturb_after(panel, day)).values[: day + 1]
    np.testing.assert_array_equal(original, changed)


@pytest.mark.parametrize("reward", ["log_return", "differential_sharpe"])
def test_env_observations_and_rewards_never_look_ahead(panel, reward: str) -> None:
    cut = 700  # prices after this row differ between the two markets
    actions = np.random.default_rng(1).uniform(-1, 1, (500, 4)).astype(np.float32)

    def trajectory(market_panel):  # type: ignore[no-untyped-def]
        env = make_env(market_panel, reward=reward)
        observations = [env.reset()]
        rewards, days = [], []
        for action in actions:
            observation, step_reward, done, info = env.step(action[None])
            observations.append(observation)
            rewards.append(step_reward[0])
            days.append(info[0]["day"])
            if done[0]:
                break
        return np.array(observations), np.array(rewards), np.array(days)

    obs_a, rew_a, days = trajectory(panel)
    obs_b, rew_b, _ = trajectory(perturb_after(panel, cut))
    seen = int(np.searchsorted(days, cut))  # steps whose decision day is < cut
    # Observation k is seen at day days[0] + k: identical up to and including day `cut`.
    np.testing.assert_array_equal(obs_a[: seen + 1], obs_b[: seen + 1])
    # The reward of a decision at t uses prices up to t + 1 only.
    np.testing.assert_array_equal(rew_a[:seen], rew_b[:seen])
    assert not np.array_equal(rew_a[seen + 1:], rew_b[seen + 1:])


def test_action_at_t_earns_the_return_from_t_to_t_plus_1(panel) -> None:
    env = make_env(panel, cost=0.0)
    env.reset()
    all_in_first = np.array([[1.0, -1.0, -1.0, -1.0]], dtype=np.float32)
    _, reward, _, info = env.step(all_in_first)
    day = info[0]["day"]
    weights = info[0]["weights"]
    growth = panel.close[day + 1] / panel.close[day]
    expected = np.log(weights[:3] @ growth + weights[3])
    assert reward[0] == pytest.approx(expected, rel=1e-6)
    assert weights[0] > 0.99


def test_costs_are_charged_on_turnover() -> None:
    drifted = np.array([[0.0, 0.0, 1.0]])
    target = np.array([[0.5, 0.5, 0.0]])
    flat = np.ones((1, 2))
    outcome = rebalance_and_hold(drifted, target, flat, cost_rate=0.001)
    assert outcome.turnover[0] == pytest.approx(1.0)
    assert outcome.cost[0] == pytest.approx(0.001)
    assert outcome.net_growth[0] == pytest.approx(0.999)
    grown = rebalance_and_hold(drifted, target, np.array([[1.1, 0.9]]), cost_rate=0.0)
    assert grown.net_growth[0] == pytest.approx(1.0)
    np.testing.assert_allclose(grown.weights[0], [0.55, 0.45, 0.0])
    np.testing.assert_allclose(softmax(np.array([[0.0, 0.0]])), [[0.5, 0.5]])


def test_training_episodes_start_inside_the_split_and_reset(panel) -> None:
    env = make_env(panel, mode="train", n_envs=64, first=400, last=800)
    env.reset()
    assert env.start_days.min() >= 400 and env.start_days.max() <= 800 - 40
    finished = 0
    for _ in range(45):
        observations, _, dones, infos = env.step(np.zeros((64, 4), dtype=np.float32))
        for i in np.flatnonzero(dones):
            finished += 1
            info = infos[i]
            assert info["TimeLimit.truncated"] is True
            assert info["episode"]["l"] == 40
            assert info["terminal_observation"].shape == observations[i].shape
            assert "portfolio_value" in info and "is_success" in info
            np.testing.assert_array_equal(observations[i][:, -1], 1.0)  # reset to cash
    assert finished == 64
    assert np.all((env._day >= 400) & (env._day <= 800))


def test_start_mask_restricts_episode_starts(panel) -> None:
    mask = np.zeros(panel.n_days, dtype=bool)
    mask[[450, 600]] = True
    env = make_env(panel, mode="train", n_envs=32, start_mask=mask)
    np.testing.assert_array_equal(env.start_days, [450, 600])
    env.reset()
    assert set(env._day.tolist()) <= {450, 600}
    from ploutos_core import DataError

    with pytest.raises(DataError, match="excludes every day"):
        make_env(panel, mode="train", start_mask=np.zeros(panel.n_days, dtype=bool))


def test_backtest_runs_the_whole_split_once_from_cash(panel) -> None:
    env = make_env(panel, first=400, last=500)
    observation = env.reset()
    np.testing.assert_array_equal(observation[0][:, -1], 1.0)
    steps = 0
    while True:
        _, _, dones, info = env.step(np.zeros((1, 4), dtype=np.float32))
        steps += 1
        if dones[0]:
            break
    assert steps == 100 and info[0]["day"] == 499


def test_same_seed_same_episodes(panel) -> None:
    def starts(seed: int) -> list[int]:
        env = make_env(panel, mode="train", n_envs=8)
        env.seed(seed)
        env.reset()
        return env._day.tolist()

    assert starts(3) == starts(3)
    assert starts(3) != starts(4)


def test_vecenv_passes_sb3_checks_through_the_gymnasium_view() -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    import ploutos_core.env.gym_env  # noqa: F401 - registers the id

    env = gym.make("Ploutos/Portfolio-v0", stage="stage2", source="synthetic")
    check_env(env.unwrapped)
    with pytest.warns(UserWarning, match="unconventional shape"):
        sb3_check_env(env.unwrapped)
    observation, _ = env.reset(seed=1)
    assert observation.shape == (3, 10 * 10 + 2)  # window 10 × 10 features + weights


def test_builder_uses_the_stage(registry, tiny_stage) -> None:
    panel = load_panel(registry.data_source("synthetic"),
                       DataRequest(tickers=tiny_stage.tickers, start=dt.date(2008, 1, 1),
                                   end=dt.date(2013, 12, 31)))
    env = registry.env_builder("portfolio").build(EnvRequest(panel=panel, stage=tiny_stage,
                                                             n_envs=3))
    assert env.num_envs == 3
    assert env.cost_rate == pytest.approx(tiny_stage.transaction_cost)
    assert env.observation_space.shape == (2, 4 * 10 + 2)
    assert env.action_space.shape == (3,)
