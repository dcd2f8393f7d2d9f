"""CUDA checks, run by ``tox -e gpu`` on a machine with a GPU (skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ploutos_core import TrainingMonitor
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.agents.sb3_agent import read_state_dict

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_auto_picks_cuda_and_trains(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file",
                     str(tiny_stage_file()), "--source", "synthetic", "--out", str(tmp_path),
                     "--no-progress", "--device", "auto")
    assert result.code == 0, result
    assert "(4 envs, cuda)" in result.out
    assert "transferred 18/18 tensors" in result.out
    final = tmp_path / "models" / "tiny2_final.zip"
    assert read_metadata(final)["num_timesteps"] >= 256
    # Saved weights load on a CPU-only machine.
    assert all(t.device.type == "cpu" for t in read_state_dict(final).values())


def test_cuda_model_evaluates_on_cpu(run_cli, tiny_stage_file, tmp_path: Path) -> None:
    stage_file = str(tiny_stage_file())
    assert run_cli("run", "stage", "tiny1", "--stage-file", stage_file, "--source", "synthetic",
                   "--out", str(tmp_path), "--no-progress", "--device", "cuda").code == 0
    result = run_cli("evaluate", str(tmp_path / "models" / "tiny1_final"), "--stage", "tiny1",
                     "--stage-file", stage_file, "--source", "synthetic", "--device", "cpu",
                     "--out", str(tmp_path / "eval"))
    assert result.code == 0, result


# --- cuda_ppo and the torch environment on the GPU (issue 15) ----------------------------

def _cuda_ppo_parts(registry, n_envs: int, builder: str = "torch_portfolio", **hp):  # type: ignore[no-untyped-def]
    import attrs

    from ploutos_core import EnvRequest, TrainingSetup
    from ploutos_core.data.stage_data import DataOptions, load_stage_panel
    from tests.conftest import make_tiny_stage

    stage = make_tiny_stage(tickers=("AAA", "BBB", "CCC"))
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, episode_length=16))
    panel = load_stage_panel(registry.data_source("synthetic"), stage,
                             DataOptions(source="synthetic"))
    env = registry.env_builder(builder).build(EnvRequest(panel=panel, stage=stage,
                                                         n_envs=n_envs, seed=1, device="cuda"))
    setup = TrainingSetup(hyperparameters=attrs.evolve(stage.hyperparameters, **hp), seed=1,
                          device="cuda")
    return stage, panel, env, setup


class _Stopper(TrainingMonitor):
    """A monitor that stops training at ``stop_at`` steps."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at

    def on_step(self, num_timesteps: int, infos: list[dict[str, Any]]) -> bool:
        return self.stop_at is None or num_timesteps < self.stop_at


def test_cuda_ppo_rollout_never_synchronises_with_the_host(registry) -> None:  # type: ignore[no-untyped-def]
    _, _, env, setup = _cuda_ppo_parts(registry, 1024, n_steps=16)
    agent = registry.algorithm("cuda_ppo").build(env, setup)
    device_env = agent.device_env()
    assert device_env is env and env.features.is_cuda and env.weights.is_cuda
    agent.learn(16 * 1024, _Stopper())  # warm-up: allocations, cuBLAS handles
    torch.cuda.synchronize()
    # Every step of a rollout but the last (which bootstraps and reports episodes) runs
    # with CUDA's sync debugger set to raise on any synchronising call or host copy.
    torch.cuda.set_sync_debug_mode("error")
    try:
        assert agent._collect(device_env, _Stopper(stop_at=agent.num_timesteps + 15 * 1024)) \
            is None
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert agent._rollout is not None and agent._rollout.actions.is_cuda


def test_cuda_env_steps_like_the_cpu_env(registry) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from ploutos_core.torch import TorchPortfolioVecEnv

    _, _, numpy_env, _ = _cuda_ppo_parts(registry, 64, builder="portfolio")
    cpu = TorchPortfolioVecEnv.from_numpy(numpy_env, "cpu")
    cuda = TorchPortfolioVecEnv.from_numpy(numpy_env, "cuda")
    for env in (cpu, cuda):  # both restart where the NumPy env does
        env.sample_start_days = lambda: torch.as_tensor(numpy_env._day)  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.uniform(-1, 1, (64, 4)).astype(np.float32)
        numpy_env.step(actions)
        a, b = cpu.step_tensors(torch.as_tensor(actions)), \
            cuda.step_tensors(torch.as_tensor(actions, device="cuda"))
        torch.testing.assert_close(b.reward.cpu(), a.reward, rtol=1e-5, atol=1e-7)
        assert torch.equal(b.done.cpu(), a.done)
        torch.testing.assert_close(cuda.observation().cpu(), cpu.observation(), rtol=1e-6,
                                   atol=1e-7)


def test_cuda_ppo_same_seed_same_weights_and_cpu_evaluation(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    runs = []
    for _ in range(2):
        _, _, env, setup = _cuda_ppo_parts(registry, 256, n_steps=16)
        agent = registry.algorithm("cuda_ppo").build(env, setup)
        agent.learn(2 * 16 * 256, _Stopper())
        runs.append(agent)
    for key, tensor in runs[0].policy.state_dict().items():
        assert torch.equal(tensor, runs[1].policy.state_dict()[key]), key
    path = tmp_path / "cuda_ppo.zip"
    runs[0].save(path, {"stage": "tiny"})
    stage, panel, _, setup = _cuda_ppo_parts(registry, 2)
    from ploutos_core.evaluation.evaluate import build_backtest_env

    backtest = build_backtest_env(registry, stage, panel, "validation")  # NumPy, CPU
    import attrs

    on_cpu = registry.algorithm("cuda_ppo").load(path, backtest, attrs.evolve(setup,
                                                                              device="cpu"))
    observation = backtest.reset()
    np.testing.assert_allclose(on_cpu.predict(observation), runs[0].predict(observation),
                               rtol=1e-5, atol=1e-6)


def test_cuda_ppo_refuses_what_would_not_fit_in_gpu_memory(registry) -> None:  # type: ignore[no-untyped-def]
    from ploutos_core import DeviceError

    _, _, env, setup = _cuda_ppo_parts(registry, 4096, n_steps=10**7, batch_size=1024)
    before = torch.cuda.memory_allocated()
    with pytest.raises(DeviceError, match=r"4,096 environments need about .* GiB of GPU "
                                          r"memory .* use --n-envs \d"):
        registry.algorithm("cuda_ppo").build(env, setup)
    assert torch.cuda.memory_allocated() - before < 2**20


def test_cuda_ppo_bfloat16_trains_on_cuda(registry) -> None:  # type: ignore[no-untyped-def]
    import attrs

    _, _, env, setup = _cuda_ppo_parts(registry, 512, n_steps=16)
    algorithm = registry.algorithm("cuda_ppo")
    setup = attrs.evolve(setup, options=algorithm.parse_options({"precision": "bfloat16"}))
    agent = algorithm.build(env, setup)
    agent.learn(2 * 16 * 512, _Stopper())
    assert all(torch.isfinite(t).all() for t in agent.policy.state_dict().values())


def test_cuda_ppo_trains_on_cuda_and_evaluates_on_cpu(run_cli, tiny_stage_file,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    stage_file = str(tiny_stage_file())
    trained = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file", stage_file,
                      "--source", "synthetic", "--out", str(tmp_path), "--no-progress",
                      "--device", "cuda", "--algorithm", "cuda_ppo", "--n-envs", "1024")
    assert trained.code == 0, trained
    assert "with cuda_ppo (1024 envs, cuda)" in trained.out
    result = run_cli("evaluate", str(tmp_path / "models" / "tiny2_final"), "--stage", "tiny2",
                     "--stage-file", stage_file, "--source", "synthetic", "--device", "cpu",
                     "--out", str(tmp_path / "eval"))
    assert result.code == 0, result
