"""The ``sb3`` algorithms plugin: A2C and RecurrentPPO from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ploutos_core import Registry, TrainingSetup
from ploutos_core.agents.contract import Agent
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.agents.sb3_agent import RecurrentSB3Agent
from ploutos_core.env.base import EnvRequest
from ploutos_core.evaluation.backtest import run_agent_backtest
from tests.conftest import CliResult, make_tiny_stage


def test_the_plugin_registers_a2c_and_recurrent_ppo(registry: Registry) -> None:
    assert registry.plugin_of("algorithms", "a2c") == "sb3"
    assert registry.plugin_of("algorithms", "recurrent_ppo") == "sb3"
    assert registry.algorithm("a2c").supports_transfer is True
    assert registry.algorithm("recurrent_ppo").supports_transfer is False


@pytest.mark.parametrize("algorithm", ["a2c", "recurrent_ppo"])
def test_train_a_stage_and_evaluate_it_from_the_cli(
        algorithm: str, tiny_stage_file: Callable[..., Path],
        run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    stage_file = str(tiny_stage_file())
    out = tmp_path / "run"
    trained = run_cli("run", "stage", "tiny1", "--stage-file", stage_file, "--source",
                      "synthetic", "--algorithm", algorithm, "--out", str(out), "--no-progress",
                      "--device", "cpu")
    assert trained.code == 0, trained
    assert f"with {algorithm} (4 envs, cpu)" in trained.out
    final = out / "models" / "tiny1_final.zip"
    metadata = read_metadata(final)
    assert metadata["algorithm"] == algorithm
    assert metadata["num_timesteps"] >= 256

    # The model file names its algorithm, so evaluate needs no --algorithm.
    evaluated = run_cli("evaluate", str(final), "--stage", "tiny1", "--stage-file", stage_file,
                        "--source", "synthetic", "--out", str(out), "--device", "cpu")
    assert evaluated.code == 0, evaluated
    report = json.loads((out / "reports" / "tiny1" / "validation.json").read_text())
    assert report["model"] == str(final)
    assert report["agent"]["n_days"] > 200

    wrong = run_cli("evaluate", str(final), "--stage", "tiny1", "--stage-file", stage_file,
                    "--source", "synthetic", "--algorithm", "ppo", "--out", str(out))
    assert wrong.code == 1
    assert f"was trained with {algorithm!r}, not 'ppo'" in wrong.err


def test_recurrent_ppo_curriculum_is_refused_in_one_line_before_training(
        tiny_stage_file: Callable[..., Path], run_cli: Callable[..., CliResult],
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file",
                     str(tiny_stage_file()), "--source", "synthetic", "--algorithm",
                     "recurrent_ppo", "--out", str(out), "--no-progress")
    assert result.code == 1
    assert result.err.count("\n") == 1, result.err  # one line
    assert result.err.startswith("Error: algorithm 'recurrent_ppo' cannot transfer weights "
                                 "between stages")
    assert "training" not in result.out
    assert not out.exists()


def test_a_single_recurrent_stage_may_not_start_from_another_model(
        tiny_stage_file: Callable[..., Path], run_cli: Callable[..., CliResult],
        tmp_path: Path) -> None:
    """--load-model is a transfer too, refused the same way."""
    result = run_cli("run", "stage", "tiny2", "--stage-file", str(tiny_stage_file()),
                     "--source", "synthetic", "--algorithm", "recurrent_ppo", "--load-model",
                     str(tmp_path / "whatever.zip"), "--out", str(tmp_path / "run"))
    assert result.code == 1
    assert "cannot transfer weights" in result.err


@pytest.fixture
def recurrent(registry: Registry) -> tuple[Agent, Registry]:
    stage = make_tiny_stage()
    from ploutos_core.data.stage_data import DataOptions, load_stage_panel

    panel = load_stage_panel(registry.data_source("synthetic"), stage,
                             DataOptions(source="synthetic"))
    env = registry.env_builder("portfolio").build(EnvRequest(panel=panel, stage=stage,
                                                             n_envs=2))
    agent = registry.algorithm("recurrent_ppo").build(
        env, TrainingSetup(hyperparameters=stage.hyperparameters, seed=3))
    return agent, registry


def _backtest_env(registry: Registry) -> object:
    from ploutos_core.data.stage_data import DataOptions, load_stage_panel
    from ploutos_core.evaluation.evaluate import build_backtest_env

    stage = make_tiny_stage()
    panel = load_stage_panel(registry.data_source("synthetic"), stage,
                             DataOptions(source="synthetic"))
    return build_backtest_env(registry, stage, panel, "validation")


def test_recurrent_agent_carries_its_state_through_an_episode(
        recurrent: tuple[Agent, Registry]) -> None:
    agent, registry = recurrent
    assert isinstance(agent, RecurrentSB3Agent)
    env: object = _backtest_env(registry)
    observation = env.reset()  # type: ignore[attr-defined]
    # The same observation three times: a stateless policy answers alike, an LSTM does not.
    first, second, third = (agent.predict(observation) for _ in range(3))
    assert not np.allclose(first, second) and not np.allclose(second, third)
    stateless = agent.model.predict(observation, deterministic=True)[0]  # fresh zero state
    np.testing.assert_allclose(first, stateless, rtol=1e-6)
    agent.reset_state()
    np.testing.assert_allclose(agent.predict(observation), first, rtol=1e-6)
    # Told that the episode restarted, the agent starts from a zero state too.
    agent.predict(observation)
    restarted = agent.predict(observation, episode_start=np.array([True]))
    np.testing.assert_allclose(restarted, first, rtol=1e-6)


def test_recurrent_backtests_start_from_a_fresh_state_every_time(
        recurrent: tuple[Agent, Registry]) -> None:
    agent, registry = recurrent
    env = _backtest_env(registry)
    once = run_agent_backtest(agent, env)
    agent.predict(env.reset())  # type: ignore[attr-defined]  # leave state behind
    twice = run_agent_backtest(agent, env)
    np.testing.assert_array_equal(once.returns, twice.returns)
    assert once.returns.std() > 0


def test_both_algorithms_pass_the_plugin_author_checker(registry: Registry) -> None:
    from ploutos_core.testing import check_algorithm

    assert check_algorithm(registry.algorithm("a2c")).transfers is True
    assert check_algorithm(registry.algorithm("recurrent_ppo")).transfers is False


def test_algorithm_options_belong_to_the_algorithm(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: each algorithm declares and validates its own settings."""
    import zipfile

    from tests.conftest import TINY_TOML

    good = tmp_path / "good.toml"
    good.write_text(TINY_TOML.format(gate1=-100.0).replace(
        "[stage.hyperparameters]",
        "[stage.algorithm_options]\nlog_std_init = -1.5\ntarget_kl = 0.05\n\n"
        "[stage.hyperparameters]", 1))
    result = run_cli("run", "stage", "tiny1", "--stage-file", str(good), "--source",
                     "synthetic", "--out", str(tmp_path / "run"), "--no-progress")
    assert result.code == 0, result
    with zipfile.ZipFile(tmp_path / "run" / "models" / "tiny1_final.zip") as archive:
        meta = json.loads(archive.read("ploutos.json"))
    assert meta["algorithm_options"] == {"log_std_init": -1.5, "target_kl": 0.05,
                                         "normalize_advantage": True}
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("target_kl = 0.05", "tau = 0.01", 1))
    refused = run_cli("run", "stage", "tiny1", "--stage-file", str(bad), "--source",
                      "synthetic", "--out", str(tmp_path / "never"))
    assert refused.code == 1
    assert "tiny1: algorithm 'ppo': extra fields found (tau) @ algorithm_options" in refused.err
    assert not (tmp_path / "never").exists()
    other = run_cli("run", "stage", "tiny1", "--stage-file", str(good), "--source",
                    "synthetic", "--algorithm", "a2c", "--out", str(tmp_path / "never"))
    assert other.code == 1 and "algorithm 'a2c' takes no [stage.algorithm_options]" in other.err
