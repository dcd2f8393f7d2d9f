"""The ``cuda_ppo`` algorithm (issue 15), on the CPU: the contract, SB3's arithmetic, exact
determinism and resume, models shared with ``ppo``, the runner's features, memory refusal."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import torch

from ploutos_core import (
    Agent,
    ConfigError,
    DataRequest,
    DeviceError,
    EnvRequest,
    Registry,
    TrainingMonitor,
    TrainingSetup,
)
from ploutos_core.agents.device import check_device_memory, rollout_memory_bytes
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.agents.torch_ppo import TorchPPOAgent, gaussian_log_prob
from ploutos_core.config.stage import EnvSettings, Hyperparameters
from ploutos_core.data.loading import load_panel
from ploutos_core.env.portfolio import PortfolioVecEnv
from ploutos_core.env.torch_portfolio import TorchPortfolioVecEnv
from ploutos_core.errors import ModelError
from tests.conftest import CliResult, make_tiny_stage, rewrite_member

HP = Hyperparameters(learning_rate=1e-3, n_steps=8, batch_size=16, n_epochs=2, hidden_size=8,
                     ent_coef=0.01)
ROLLOUT = 8 * 4  # n_steps × n_envs


class Recorder(TrainingMonitor):
    """Records what the agent reports; stops at ``stop_at`` steps."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.steps: list[int] = []
        self.iterations: list[int] = []
        self.metrics: list[dict[str, float]] = []
        self.episodes: list[dict[str, Any]] = []
        self.started = self.ended = 0

    def on_training_start(self, agent: Agent) -> None:
        self.started += 1

    def on_step(self, num_timesteps: int, infos: list[dict[str, Any]]) -> bool:
        self.steps.append(num_timesteps)
        self.episodes.extend(info for info in infos if "episode" in info)
        return self.stop_at is None or num_timesteps < self.stop_at

    def on_iteration(self, num_timesteps: int) -> None:
        self.iterations.append(num_timesteps)

    def on_metrics(self, metrics: Mapping[str, float], num_timesteps: int) -> None:
        self.metrics.append(dict(metrics))

    def on_training_end(self) -> None:
        self.ended += 1


@pytest.fixture(scope="module")
def panel(registry_module: Registry) -> Any:
    return load_panel(registry_module.data_source("synthetic"),
                      DataRequest(tickers=("AAA", "BBB", "CCC"), start=dt.date(2008, 1, 1),
                                  end=dt.date(2013, 12, 31), seed=2))


@pytest.fixture(scope="module")
def registry_module() -> Registry:
    from ploutos_core import get_plugin_manager

    return Registry(get_plugin_manager())


def make_env(panel: Any, tickers: tuple[str, ...] = ("AAA", "BBB"), n_envs: int = 4,
             builder: str = "portfolio", registry: Registry | None = None, **env: Any) -> Any:
    from ploutos_core import get_plugin_manager

    stage = make_tiny_stage(tickers=tickers)
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, episode_length=12, **env))
    columns = [panel.tickers.index(t) for t in tickers]
    sub = attrs.evolve(panel, tickers=tickers, **{f: getattr(panel, f)[:, columns] for f in
                                                  ("open", "high", "low", "close", "volume")})
    registry = registry or Registry(get_plugin_manager())
    return registry.env_builder(builder).build(EnvRequest(panel=sub, stage=stage,
                                                          n_envs=n_envs, seed=5))


def make_agent(env: Any, seed: int = 0, hp: Hyperparameters = HP) -> TorchPPOAgent:
    return TorchPPOAgent(env, TrainingSetup(hyperparameters=hp, seed=seed))


def weights_of(agent: TorchPPOAgent) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in agent.policy.state_dict().items()}


def assert_same_weights(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different


def test_registered_and_passes_the_plugin_author_checker(registry: Registry) -> None:
    from ploutos_core.testing import check_algorithm

    assert registry.plugin_of("algorithms", "cuda_ppo") == "cuda_ppo"
    assert registry.algorithm("cuda_ppo").supports_transfer is True
    assert check_algorithm(registry.algorithm("cuda_ppo")).transfers is True


def test_learn_reports_every_step_update_and_metric(panel: Any) -> None:
    agent = make_agent(make_env(panel))
    monitor = Recorder()
    agent.learn(3 * ROLLOUT, monitor)
    assert agent.num_timesteps == 3 * ROLLOUT
    assert monitor.steps == list(range(4, 3 * ROLLOUT + 1, 4))  # every batched step
    assert monitor.iterations == [ROLLOUT, 2 * ROLLOUT]  # after updates another rollout follows
    assert (monitor.started, monitor.ended, len(monitor.metrics)) == (1, 1, 3)
    for metrics in monitor.metrics:
        for key in ("train/policy_loss", "train/value_loss", "train/entropy",
                    "train/approx_kl", "train/clip_fraction"):
            assert np.isfinite(metrics[key]), key
    # Episodes of 12 days: each of 4 environments finished 2 in 3 rollouts of 8 steps.
    assert len(monitor.episodes) == 4 * 2
    assert {e["episode"]["l"] for e in monitor.episodes} == {12}
    assert all(0 < e["portfolio_value"] < 2 for e in monitor.episodes)
    assert "rollout/ep_rew_mean" in monitor.metrics[-1]


def test_a_stop_inside_a_rollout_keeps_the_steps_learned_from(panel: Any) -> None:
    agent = make_agent(make_env(panel))
    monitor = Recorder(stop_at=ROLLOUT + 12)
    agent.learn(4 * ROLLOUT, monitor)
    assert agent.num_timesteps == ROLLOUT
    assert monitor.ended == 1 and len(monitor.metrics) == 1


def test_same_seed_same_device_same_weights(panel: Any) -> None:
    runs = []
    for seed in (3, 3, 4):
        agent = make_agent(make_env(panel), seed=seed)
        agent.learn(2 * ROLLOUT, Recorder())
        runs.append(weights_of(agent))
    assert_same_weights(runs[0], runs[1])
    assert not torch.equal(runs[0]["encoder.0.weight"], runs[2]["encoder.0.weight"])


@pytest.mark.parametrize("stop_inside_a_rollout", [False, True])
def test_resume_continues_exactly(panel: Any, tmp_path: Path,
                                  stop_inside_a_rollout: bool) -> None:
    straight = make_agent(make_env(panel), seed=1)
    straight.learn(4 * ROLLOUT, Recorder())

    first = make_agent(make_env(panel), seed=1)
    if stop_inside_a_rollout:
        first.learn(4 * ROLLOUT, Recorder(stop_at=2 * ROLLOUT + 8))
    else:
        first.learn(2 * ROLLOUT, Recorder())
    assert first.num_timesteps == 2 * ROLLOUT
    path = tmp_path / "models" / "checkpoint.zip"
    first.save(path, {"stage": "tiny"})

    # As the runner resumes: a fresh environment from the stage's seed, then the file.
    resumed = make_agent(make_env(panel), seed=1)
    resumed.restore(path)
    assert resumed.num_timesteps == 2 * ROLLOUT
    resumed.learn(4 * ROLLOUT, Recorder())
    assert_same_weights(weights_of(resumed), weights_of(straight))
    assert torch.equal(resumed.device_env().value, straight.device_env().value)


def test_model_file_holds_weights_optimizer_state_and_metadata(panel: Any,
                                                               tmp_path: Path) -> None:
    import zipfile

    agent = make_agent(make_env(panel))
    agent.learn(ROLLOUT, Recorder())
    path = tmp_path / "m.zip"
    agent.save(path, {"stage": "tiny", "seed": 0})
    with zipfile.ZipFile(path) as archive:
        assert set(archive.namelist()) == {"policy.pth", "policy.optimizer.pth",
                                           "training_state.pth", "ploutos.json"}
    metadata = read_metadata(path)
    assert metadata["algorithm"] == "cuda_ppo" and metadata["num_timesteps"] == ROLLOUT
    assert metadata["hyperparameters"] == attrs.asdict(HP)
    assert metadata["observation_shape"] == [2, 4 * 10 + 2]
    # A file of another algorithm is refused for a resume.
    other = rewrite_member(path, tmp_path / "other.zip", "ploutos.json", lambda data: json.dumps(
        {**json.loads(data), "algorithm": "ppo"}).encode())
    from ploutos_core import ModelError

    with pytest.raises(ModelError, match="pass --algorithm ppo"):
        make_agent(make_env(panel)).restore(other)


@pytest.mark.parametrize("direction", ["cuda_ppo_to_ppo", "ppo_to_cuda_ppo"])
def test_models_move_exactly_between_cuda_ppo_and_ppo(panel: Any, registry: Registry,
                                                      tmp_path: Path, direction: str) -> None:
    setup = TrainingSetup(hyperparameters=HP, seed=2)
    names = ("cuda_ppo", "ppo") if direction == "cuda_ppo_to_ppo" else ("ppo", "cuda_ppo")
    source = registry.algorithm(names[0]).build(make_env(panel), setup)
    source.learn(ROLLOUT, Recorder())
    path = tmp_path / "source.zip"
    source.save(path, {"stage": "tiny"})
    # Into two assets and into three: every tensor, the same actions.
    for tickers in (("AAA", "BBB"), ("AAA", "BBB", "CCC")):
        env = make_env(panel, tickers=tickers)
        target = registry.algorithm(names[1]).build(env, attrs.evolve(setup, seed=9))
        report = target.transfer_from(path)
        assert report.copied == report.total == 18
        observation = env.reset()
        if len(tickers) == 2:
            np.testing.assert_array_equal(target.predict(observation),
                                          source.predict(observation))
        twin = registry.algorithm(names[0]).build(env, setup)
        twin.transfer_from(path)
        np.testing.assert_array_equal(target.predict(observation), twin.predict(observation))


def test_log_prob_entropy_and_gae_are_stable_baselines3s(panel: Any) -> None:
    from stable_baselines3.common.buffers import RolloutBuffer
    from stable_baselines3.common.distributions import DiagGaussianDistribution

    generator = torch.Generator().manual_seed(0)
    means, actions = torch.randn(6, 4, generator=generator), torch.randn(6, 4,
                                                                         generator=generator)
    log_std = torch.tensor([-0.5, -0.5, -0.5, -0.2])
    reference = DiagGaussianDistribution(4).proba_distribution(means, log_std)
    torch.testing.assert_close(gaussian_log_prob(actions, means, log_std),
                               reference.log_prob(actions))
    from ploutos_core.agents.torch_ppo import _LOG_SQRT_2PI

    torch.testing.assert_close((0.5 + _LOG_SQRT_2PI + log_std).sum().expand(6),
                               reference.entropy())

    env = make_env(panel)
    agent = make_agent(env)
    n_steps, n_envs = 8, 4
    buffers = agent._buffers(n_steps, n_envs, 2)
    buffers.rewards.copy_(torch.randn(n_steps, n_envs, generator=generator))
    buffers.values.copy_(torch.randn(n_steps, n_envs, generator=generator))
    buffers.dones.copy_(torch.rand(n_steps, n_envs, generator=generator) < 0.2)
    last_values = torch.randn(n_envs, generator=generator)
    agent._advantages(buffers, last_values)

    sb3 = RolloutBuffer(n_steps, env.observation_space, env.action_space, n_envs=n_envs,
                        gamma=HP.gamma, gae_lambda=HP.gae_lambda)
    starts = np.vstack([np.ones((1, n_envs)), buffers.dones[:-1].numpy()])
    for t in range(n_steps):
        sb3.add(np.zeros((n_envs, *env.observation_space.shape), np.float32),
                np.zeros((n_envs, 3), np.float32), buffers.rewards[t].numpy(), starts[t],
                buffers.values[t], torch.zeros(n_envs))
    sb3.compute_returns_and_advantage(last_values, buffers.dones[-1].numpy())
    np.testing.assert_allclose(buffers.advantages.numpy(), sb3.advantages, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(buffers.returns.numpy(), sb3.returns, rtol=1e-5, atol=1e-6)


def test_truncated_episodes_bootstrap_the_last_observations_value(panel: Any) -> None:
    agent = make_agent(make_env(panel))
    env = agent.device_env()
    rewards_seen: list[torch.Tensor] = []
    original = env.step_tensors

    def spy(actions: torch.Tensor) -> Any:
        step = original(actions)
        rewards_seen.append(step.reward.clone())
        return step

    env.step_tensors = spy  # type: ignore[method-assign]
    rollout = agent._collect(env, Recorder())
    assert rollout is not None
    raw = torch.stack(rewards_seen)
    changed = rollout.rewards != raw
    assert torch.equal(changed, rollout.dones)  # exactly the truncated steps
    rows, cols = rollout.dones.nonzero(as_tuple=True)
    terminal = env.observe(rollout.day[rows, cols] + 1, rollout.next_weights[rows, cols])
    with torch.no_grad():
        values = agent.policy.predict_values(terminal).flatten()
    torch.testing.assert_close(rollout.rewards[rows, cols], raw[rows, cols] + HP.gamma * values)


def test_rollout_stores_observations_as_day_and_weights(panel: Any) -> None:
    agent = make_agent(make_env(panel))
    env = agent.device_env()
    first = env.observation().clone()
    rollout = agent._collect(env, Recorder())
    assert rollout is not None
    torch.testing.assert_close(env.observe(rollout.day[0], rollout.weights[0]), first)


def test_trains_on_the_torch_env_builder_and_refuses_other_envs(panel: Any) -> None:
    env = make_env(panel, builder="torch_portfolio", action="tilt", no_trade_band=0.02)
    assert isinstance(env, TorchPortfolioVecEnv)
    agent = make_agent(env)
    agent.learn(ROLLOUT, Recorder())
    assert agent.device_env() is env

    class Other:
        num_envs = 4
        observation_space = env.observation_space
        action_space = env.action_space

    with pytest.raises(ConfigError, match="env_builder"):
        make_agent(Other()).learn(ROLLOUT, Recorder())  # type: ignore[arg-type]


def test_trains_on_sub_universes_storing_each_transitions_assets(panel: Any) -> None:
    env = make_env(panel)
    agent = make_agent(env)
    universe = PortfolioVecEnv(env.market, 4, env.settings, 0.001, assets=1)
    agent.set_environment(universe)
    device_env = agent.device_env()
    assert device_env.sampling and device_env.n_assets == 1
    agent.learn(3 * ROLLOUT, Recorder())
    rollout = agent._rollout
    assert rollout is not None and rollout.assets is not None
    assert rollout.assets.shape == (*rollout.shape, 1)
    # Every stored observation is rebuilt from the assets that environment traded.
    first = device_env.observe(rollout.day[-1], rollout.weights[-1], rollout.assets[-1])
    assert first.shape == (4, 1, env.observation_space.shape[1])
    assert agent.num_timesteps >= 3 * ROLLOUT


def test_memory_estimate_and_refusal() -> None:
    def estimate(n_envs: int) -> int:
        return rollout_memory_bytes(n_envs, 64, 5, 102, batch_size=65536, hidden_size=32,
                                    n_days=5000)

    # Linear in the environments once a minibatch is full; the rollout stores no
    # observation, so an environment costs a fraction of its observations' size.
    per_env = estimate(2001) - estimate(2000)
    assert per_env == estimate(100_001) - estimate(100_000)
    assert per_env < 64 * 5 * 102 * 4 / 5
    gib = 2**30
    assert check_device_memory("cpu", estimate, 10**9, what="x") == estimate(10**9)
    assert check_device_memory("cuda", estimate, 65536, what="x",
                               free_and_total=(100 * gib, 140 * gib)) == estimate(65536)
    with pytest.raises(DeviceError) as refused:
        check_device_memory("cuda", estimate, 2**24, what="cuda_ppo with n_steps=64",
                            free_and_total=(100 * gib, 140 * gib))
    message = str(refused.value)
    assert message.startswith("cuda_ppo with n_steps=64: 16,777,216 environments need about")
    fits = int(message.split("use --n-envs ")[1].split(" or fewer")[0].replace(",", ""))
    assert 65536 < fits < 2**24
    check_device_memory("cuda", estimate, fits, what="x", free_and_total=(100 * gib, 140 * gib))
    # Sampling 5 of a 100-ticker universe: the market tables and each transition's
    # stored assets add to the estimate.
    universe = rollout_memory_bytes(2000, 64, 5, 102, batch_size=65536, hidden_size=32,
                                    n_days=5000, pool=100)
    assert universe - estimate(2000) >= 2000 * 64 * 5 * 8 + 5000 * 95 * 4 * 102


def test_algorithm_options_are_ppos_plus_precision(panel: Any, registry: Registry) -> None:
    algorithm = registry.algorithm("cuda_ppo")
    options = algorithm.parse_options({"log_std_init": -1.0, "target_kl": 1e-9,
                                       "precision": "bfloat16"})
    with pytest.raises(ConfigError, match=r"precision"):
        algorithm.parse_options({"precision": "float16"})
    with pytest.raises(ConfigError, match=r"extra fields found \(tau\) @ algorithm_options"):
        algorithm.parse_options({"tau": 0.005})
    env = make_env(panel)
    agent = algorithm.build(env, TrainingSetup(hyperparameters=HP, options=options))
    assert isinstance(agent, TorchPPOAgent)
    assert agent.policy.action_log_std(2).tolist() == [-1.0, -1.0, -1.0]
    monitor = Recorder()
    agent.learn(ROLLOUT, monitor)  # bfloat16 autocasts on CUDA only: a CPU runs float32
    # The KL of the first step's minibatch exceeds the tiny target: one epoch, cut short.
    assert monitor.metrics[0]["train/n_updates"] == 1
    assert agent.metadata()["algorithm_options"] == attrs.asdict(options)
    with pytest.raises(ConfigError, match="unknown precision 'float16'"):
        TorchPPOAgent(env, TrainingSetup(hyperparameters=HP), precision="float16")


# --- through the CLI: run, evaluate, resume, curriculum transfer, tuning ----------------


def test_cli_trains_evaluates_and_resumes(tiny_stage_file: Callable[..., Path],
                                          run_cli: Callable[..., CliResult],
                                          tmp_path: Path) -> None:
    stage_file = str(tiny_stage_file())
    out = tmp_path / "run"
    common = ("--stage-file", stage_file, "--source", "synthetic", "--out", str(out),
              "--no-progress", "--device", "cpu")
    trained = run_cli("run", "curriculum", "--curriculum", "tiny", "--algorithm", "cuda_ppo",
                      "--eval-freq", "128", *common)
    assert trained.code == 0, trained
    assert "with cuda_ppo (4 envs, cpu)" in trained.out
    assert "transferred 18/18 tensors" in trained.out  # tiny1 (1 asset) → tiny2 (3 assets)
    final = out / "models" / "tiny2_final.zip"
    assert read_metadata(final)["algorithm"] == "cuda_ppo"
    assert (out / "models" / "tiny1" / "best.zip").exists()

    evaluated = run_cli("evaluate", str(final), "--stage", "tiny2", "--stage-file", stage_file,
                        "--source", "synthetic", "--out", str(tmp_path / "eval"),
                        "--device", "cpu")
    assert evaluated.code == 0, evaluated
    report = json.loads((tmp_path / "eval" / "reports" / "tiny2" / "validation.json")
                        .read_text())
    assert report["agent"]["n_days"] > 200

    # A cuda_ppo model starts an SB3 ppo stage (weights only), and the other way round.
    into_ppo = run_cli("run", "stage", "tiny2", "--load-model", str(final), "--out",
                       str(tmp_path / "ppo"), *common[:4], "--no-progress")
    assert into_ppo.code == 0, into_ppo
    assert "transferred 18/18 tensors" in into_ppo.out
    back = run_cli("run", "stage", "tiny2", "--algorithm", "cuda_ppo", "--load-model",
                   str(tmp_path / "ppo" / "models" / "tiny2_final.zip"), "--out",
                   str(tmp_path / "back"), *common[:4], "--no-progress")
    assert back.code == 0, back
    assert "transferred 18/18 tensors" in back.out


def test_cli_resume_continues_from_the_newest_checkpoint(tiny_stage_file: Callable[..., Path],
                                                         run_cli: Callable[..., CliResult],
                                                         tmp_path: Path) -> None:
    stage_file = str(tiny_stage_file())
    out = tmp_path / "run"
    args = ("run", "stage", "tiny1", "--stage-file", stage_file, "--source", "synthetic",
            "--algorithm", "cuda_ppo", "--out", str(out), "--no-progress", "--device", "cpu",
            "--checkpoint-freq", "128")
    assert run_cli(*args).code == 0
    final = read_metadata(out / "models" / "tiny1_final.zip")
    checkpoint = out / "models" / "tiny1" / "ploutos_tiny1_128_steps.zip"
    assert checkpoint.exists()
    (out / "models" / "tiny1_final.zip").unlink()
    for later in (out / "models" / "tiny1").glob("ploutos_tiny1_*_steps.zip"):
        if later != checkpoint:
            later.unlink()
    resumed = run_cli(*args, "--resume")
    assert resumed.code == 0, resumed
    assert "resuming from" in resumed.out and "at step 128" in resumed.out
    again = read_metadata(out / "models" / "tiny1_final.zip")
    assert again["num_timesteps"] == final["num_timesteps"]


def test_cli_tunes_a_cuda_ppo_stage(tiny_stage_file: Callable[..., Path],
                                    run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli("run", "stage", "tiny1", "--stage-file", str(tiny_stage_file()),
                     "--source", "synthetic", "--algorithm", "cuda_ppo", "--out", str(out),
                     "--no-progress", "--device", "cpu", "--auto-optimize", "--trials", "2")
    assert result.code == 0, result
    saved = json.loads((out / "models" / "tiny1" / "optimized_params.json").read_text())
    assert saved["trials_completed"] + saved["trials_pruned"] == 2
    used = read_metadata(out / "models" / "tiny1_final.zip")
    assert used["algorithm"] == "cuda_ppo"
    assert used["hyperparameters"]["learning_rate"] == saved["params"]["learning_rate"]


def test_same_seed_starts_from_the_same_weights_as_ppo(panel: Any, registry: Registry) -> None:
    """At equal seeds the two algorithms differ only in how they train (learning parity)."""
    env = make_env(panel)
    setup = TrainingSetup(hyperparameters=HP, seed=7)
    ppo = registry.algorithm("ppo").build(env, setup)
    cuda = registry.algorithm("cuda_ppo").build(env, setup)
    assert_same_weights(cuda.policy.state_dict(), ppo.model.policy.state_dict())


def test_a_universe_stage_trains_with_cuda_ppo(run_cli: Callable[..., CliResult],
                                               tmp_path: Path) -> None:
    from ploutos_core.config.stage import UniverseSettings, stage_to_toml

    # The built-in stages' kind of environment: tilt actions, the relative reward, the
    # turnover rule and the volatility-targeted exposure (per sampled sub-universe).
    env = EnvSettings(episode_length=64, window=4, action="tilt",
                      reward="relative_log_return", target_smoothing=0.9, no_trade_band=0.02,
                      exposure="volatility_target")
    stage = make_tiny_stage("wide", ("AAA", "BBB"), env=env, universe=UniverseSettings(
        tickers=("P1", "P2", "P3"), fraction=0.5))
    path = tmp_path / "wide.toml"
    path.write_text(stage_to_toml(stage))
    result = run_cli("run", "stage", "wide", "--stage-file", str(path), "--source",
                     "synthetic", "--algorithm", "cuda_ppo", "--out", str(tmp_path / "run"),
                     "--no-progress")
    assert result.code == 0, result.err
    assert "on sub-universes of 3 tickers, then" in result.out
    assert read_metadata(tmp_path / "run" / "models" / "wide_final.zip")["algorithm"] == \
        "cuda_ppo"


def test_frozen_tensors_stay_fixed_while_the_rest_learns(panel: Any) -> None:
    """[stage.transfer] freeze_fraction: the named tensors keep their values (Adam skips a
    tensor without a gradient), the others train, and unfreezing trains them again."""
    agent = make_agent(make_env(panel))
    before = weights_of(agent)
    frozen = [k for k in before if k.startswith(("encoder.", "context."))]
    assert agent.set_trainable(("encoder", "context"), False) == len(frozen) > 0
    agent.learn(2 * ROLLOUT, Recorder())
    during = weights_of(agent)
    assert all(torch.equal(during[k], before[k]) for k in frozen)
    assert any(not torch.equal(during[k], before[k]) for k in before if k not in frozen)
    agent.set_trainable(("encoder", "context"), True)
    agent.learn(4 * ROLLOUT, Recorder())
    assert all(not torch.equal(weights_of(agent)[k], before[k]) for k in frozen
               if k.endswith("weight"))
    with pytest.raises(ModelError, match="match no tensor"):
        agent.set_trainable(("decoder",), False)
