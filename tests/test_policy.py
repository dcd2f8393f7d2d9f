"""The asset-set policy: no asset-count-shaped parameter, equivariance, exact transfer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch

from ploutos_core import DataRequest, EnvRequest, ModelError, TrainingSetup
from ploutos_core.config.stage import Hyperparameters
from ploutos_core.data.loading import load_panel
from tests.conftest import make_tiny_stage, rewrite_member

HP = Hyperparameters(n_steps=16, batch_size=32, n_epochs=1, hidden_size=16)


def build_agent(registry, tickers: tuple[str, ...], window: int = 4, hidden: int = 16,  # type: ignore[no-untyped-def]
                seed: int = 0):
    import attrs

    stage = make_tiny_stage(tickers=tickers)
    stage = attrs.evolve(stage, env=attrs.evolve(stage.env, window=window))
    panel = load_panel(registry.data_source("synthetic"),
                       DataRequest(tickers=tickers, start=dt.date(2008, 1, 1),
                                   end=dt.date(2013, 12, 31)))
    env = registry.env_builder("portfolio").build(EnvRequest(panel=panel, stage=stage, n_envs=2))
    setup = TrainingSetup(hyperparameters=attrs.evolve(HP, hidden_size=hidden), seed=seed)
    return registry.algorithm("ppo").build(env, setup), env


def test_no_parameter_shape_depends_on_the_asset_count(registry) -> None:
    one, _ = build_agent(registry, ("AAA",))
    five, _ = build_agent(registry, ("AAA", "BBB", "CCC", "DDD", "EEE"))
    shapes_one = {k: tuple(v.shape) for k, v in one.model.policy.state_dict().items()}
    shapes_five = {k: tuple(v.shape) for k, v in five.model.policy.state_dict().items()}
    assert shapes_one == shapes_five


def test_permuting_assets_permutes_the_action(registry) -> None:
    agent, env = build_agent(registry, ("AAA", "BBB", "CCC"))
    policy = agent.model.policy
    observation = torch.as_tensor(env.reset())
    permutation = [2, 0, 1]
    with torch.no_grad():
        means, values = policy._heads(observation)
        permuted_means, permuted_values = policy._heads(observation[:, permutation])
    torch.testing.assert_close(permuted_means[:, :3], means[:, permutation])
    torch.testing.assert_close(permuted_means[:, 3], means[:, 3])  # cash score
    torch.testing.assert_close(permuted_values, values)


def test_transfer_copies_every_tensor_across_asset_counts(registry, tmp_path: Path) -> None:
    source, _ = build_agent(registry, ("AAA",), seed=1)
    path = tmp_path / "stage1_final.zip"
    source.save(path, {"stage": "s1"})
    target, _ = build_agent(registry, ("AAA", "BBB", "CCC", "DDD", "EEE"), seed=2)
    report = target.transfer_from(tmp_path / "stage1_final")  # without .zip, as users type it
    total = len(target.model.policy.state_dict())
    assert (report.copied, report.total) == (total, total)
    assert str(report) == f"transferred {total}/{total} tensors from {path}"
    for key, tensor in source.model.policy.state_dict().items():
        torch.testing.assert_close(target.model.policy.state_dict()[key], tensor)


def test_transfer_never_unpickles(registry, tmp_path: Path) -> None:
    source, _ = build_agent(registry, ("AAA",))
    path = tmp_path / "model.zip"
    source.save(path, {})
    poisoned = rewrite_member(path, tmp_path / "poisoned.zip", "data", lambda data:
                              b'{"policy_class": {":type:": "<class>", '
                              b'":serialized:": "not-a-pickle"}}')
    target, _ = build_agent(registry, ("AAA", "BBB"))
    assert target.transfer_from(poisoned).copied > 0


def test_incompatible_models_are_clear_errors(registry, tmp_path: Path) -> None:
    source, _ = build_agent(registry, ("AAA",), window=4)
    path = tmp_path / "w4.zip"
    source.save(path, {})
    other_window, _ = build_agent(registry, ("AAA",), window=6)
    with pytest.raises(ModelError, match=r"tensor encoder.0.weight has shape \(16, 42\) there "
                                         r"but \(16, 62\) here"):
        other_window.transfer_from(path)
    wider, _ = build_agent(registry, ("AAA",), window=4, hidden=32)
    with pytest.raises(ModelError, match="network size"):
        wider.transfer_from(path)
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    with pytest.raises(ModelError, match="not a model file"):
        wider.transfer_from(not_zip)
    with pytest.raises(ModelError, match=r"no model file at .*missing \(also tried .*missing.zip"):
        wider.transfer_from(tmp_path / "missing")


def test_checkpoint_round_trip_restores_steps_and_optimizer(registry, tmp_path: Path) -> None:
    from ploutos_core.agents.contract import TrainingMonitor

    class Quiet(TrainingMonitor):
        def on_step(self, num_timesteps, infos):  # type: ignore[no-untyped-def]
            return True

    agent, env = build_agent(registry, ("AAA", "BBB"))
    agent.learn(64, Quiet())
    path = tmp_path / "ckpt.zip"
    agent.save(path, {"stage": "x"})
    restored = registry.algorithm("ppo").load(path, env, TrainingSetup(hyperparameters=HP))
    assert restored.num_timesteps == agent.num_timesteps == 64
    saved_optimizer = agent.model.policy.optimizer.state_dict()["state"]
    loaded_optimizer = restored.model.policy.optimizer.state_dict()["state"]
    torch.testing.assert_close(loaded_optimizer[0]["exp_avg"], saved_optimizer[0]["exp_avg"])
    observation = env.reset()
    np.testing.assert_array_equal(agent.predict(observation), restored.predict(observation))


def test_partial_transfer_copies_only_the_named_tensors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 11: [stage.transfer] parameters = ["encoder", "context"] keeps the rest fresh."""
    import torch

    from ploutos_core import get_plugin_manager
    from ploutos_core.agents.contract import TrainingSetup
    from ploutos_core.errors import ModelError
    from ploutos_core.pluginmanager.registry import Registry
    from ploutos_core.testing import _env, _market_stage

    registry = Registry(get_plugin_manager())
    ppo = registry.algorithm("ppo")
    stage, panel = _market_stage(("AAA", "BBB"))
    setup = TrainingSetup(hyperparameters=stage.hyperparameters, seed=0)
    source = ppo.build(_env(stage, panel, "train", 2), setup)
    path = tmp_path / "source.zip"
    source.save(path, {"stage": "check"})
    receiver = ppo.build(_env(stage, panel, "train", 2), TrainingSetup(
        hyperparameters=stage.hyperparameters, seed=1))
    fresh = {k: v.clone() for k, v in receiver.model.policy.state_dict().items()}
    report = receiver.transfer_from(path, only=("encoder", "context"))
    copied = {k for k in fresh if k.startswith(("encoder.", "context."))}
    assert report.copied == len(copied) and report.total == len(fresh)
    theirs = source.model.policy.state_dict()
    for key, value in receiver.model.policy.state_dict().items():
        expected = theirs[key] if key in copied else fresh[key]
        assert torch.equal(value, expected), key
    with pytest.raises(ModelError, match="match no tensor"):
        receiver.transfer_from(path, only=("decoder",))


def test_frozen_transfer_keeps_the_copied_tensors_for_its_share_of_the_steps(
        run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """[stage.transfer] freeze_fraction: a stage that starts from another stage's model
    trains its fresh tensors on top of the copied ones, which stay fixed for that share of
    its steps (all of them at 1.0, none after at 0.5's second half); a model of the same
    stage is continued whole and nothing is frozen."""
    from ploutos_core.agents.sb3_agent import read_state_dict
    from ploutos_core.config.stage import TransferSettings, stage_to_toml
    from tests.conftest import make_tiny_stage

    def weights(run: str, stage: str) -> dict[str, torch.Tensor]:
        return read_state_dict(tmp_path / run / "models" / f"{stage}_final.zip")

    first = make_tiny_stage("first", order=1)
    files = ["--stage-file", str(tmp_path / "first.toml")]
    (tmp_path / "first.toml").write_text(stage_to_toml(first))
    for fraction in (1.0, 0.5):
        transfer = TransferSettings(parameters=("encoder", "context"), freeze_fraction=fraction)
        second = make_tiny_stage(f"second{int(fraction * 10)}", order=1 + len(files) // 2,
                                 transfer=transfer)
        (tmp_path / f"{second.name}.toml").write_text(stage_to_toml(second))
        files += ["--stage-file", str(tmp_path / f"{second.name}.toml")]
    common = [*files, "--source", "synthetic", "--no-progress", "--ignore-gates"]
    assert run_cli("run", "stage", "first", "--out", str(tmp_path / "a"), *common).code == 0
    start = weights("a", "first")
    copied = [k for k in start if k.startswith(("encoder.", "context."))]
    for stage, kept in (("second10", True), ("second5", False)):
        result = run_cli("run", "stage", stage, "--load-model",
                         str(tmp_path / "a" / "models" / "first_final"),
                         "--out", str(tmp_path / stage), *common)
        assert result.code == 0, result.err
        assert f"{stage}: the transferred encoder, context stay fixed for the first" in result.out
        after = weights(stage, stage)
        assert all(torch.equal(after[k], start[k]) == kept for k in copied
                   if k.endswith("weight")), stage
    result = run_cli("run", "stage", "second10", "--load-model",
                     str(tmp_path / "second10" / "models" / "second10_final"),
                     "--out", str(tmp_path / "again"), *common)
    assert result.code == 0, result.err
    assert "stay fixed" not in result.out
    continued, before = weights("again", "second10"), weights("second10", "second10")
    assert not all(torch.equal(continued[k], before[k]) for k in copied)


def test_freeze_fraction_needs_the_tensors_it_freezes() -> None:
    from ploutos_core.config.stage import FieldValueError, TransferSettings

    assert TransferSettings(parameters=("encoder",), freeze_fraction=0.25).freeze_fraction == 0.25
    with pytest.raises(FieldValueError, match="needs parameters"):
        TransferSettings(freeze_fraction=0.25)
    with pytest.raises(FieldValueError, match=r"must be in \[0, 1\]"):
        TransferSettings(parameters=("encoder",), freeze_fraction=1.5)


def test_partial_transfer_applies_between_stages_and_a_stage_continues_its_own_model(
        run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """[stage.transfer] decides what passes from another stage's model; a model of the same
    stage (fine-tuning, walk-forward folds, retrain) is continued whole."""
    from ploutos_core.config.stage import TransferSettings, stage_to_toml
    from tests.conftest import make_tiny_stage

    partial = TransferSettings(parameters=("encoder", "context"))
    first = make_tiny_stage("first", order=1)
    second = make_tiny_stage("second", order=2, transfer=partial)
    files = []
    for stage in (first, second):
        files += ["--stage-file", str(tmp_path / f"{stage.name}.toml")]
        (tmp_path / f"{stage.name}.toml").write_text(stage_to_toml(stage))
    common = [*files, "--source", "synthetic", "--no-progress", "--ignore-gates"]
    result = run_cli("run", "stage", "first", "--out", str(tmp_path / "a"), *common)
    assert result.code == 0, result.err
    result = run_cli("run", "stage", "second", "--load-model",
                     str(tmp_path / "a" / "models" / "first_final"),
                     "--out", str(tmp_path / "b"), *common)
    assert result.code == 0, result.err
    copied = [line for line in result.out.splitlines() if line.startswith("transferred ")]
    assert len(copied) == 1 and not copied[0].startswith("transferred 18/18"), copied
    result = run_cli("run", "stage", "second", "--load-model",
                     str(tmp_path / "b" / "models" / "second_final"),
                     "--out", str(tmp_path / "c"), *common)
    assert result.code == 0, result.err
    copied = [line for line in result.out.splitlines() if line.startswith("transferred ")]
    total = copied[0].split()[1].split("/")[1]
    assert copied == [f"transferred {total}/{total} tensors from "
                      f"{tmp_path / 'b' / 'models' / 'second_final.zip'}"], copied


@pytest.mark.parametrize(("resumed_at", "expected"), [
    (0, [("fixed", 500), ("trained", 1000)]),
    (300, [("fixed", 500), ("trained", 1000)]),  # killed mid-freeze: fixed again to 500
    (700, [("trained", 1000)]),  # killed after it: nothing is fixed again
])
def test_a_resumed_stage_freezes_exactly_the_steps_it_had_left_to_freeze(
        tmp_path, resumed_at: int, expected: list[tuple[str, int]]) -> None:  # type: ignore[no-untyped-def]
    """The freeze's end is a step count, not a share of what is left, so a stage resumed
    from a checkpoint keeps the copied tensors fixed up to the same step as an
    uninterrupted one, and leaves them trainable at the end."""
    import json
    import zipfile
    from types import SimpleNamespace

    from ploutos_core.config.stage import TransferSettings
    from ploutos_core.training.loop import Phases, learn_in_phases
    from tests.conftest import make_tiny_stage

    source = tmp_path / "first_final.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("ploutos.json", json.dumps({"stage": "first"}))
    stage = make_tiny_stage("second", transfer=TransferSettings(
        parameters=("encoder", "context"), freeze_fraction=0.5))
    lines: list[str] = []
    ctx = SimpleNamespace(stage=stage, universe=None,
                          run=SimpleNamespace(echo=lines.append))
    run = SimpleNamespace(start_from=source, timesteps=1000)

    class Agent:
        def __init__(self) -> None:
            self.num_timesteps, self.fixed = resumed_at, False
            self.learned: list[tuple[str, int]] = []

        def set_trainable(self, prefixes, trainable):  # type: ignore[no-untyped-def]
            assert prefixes == ("encoder", "context")
            self.fixed = not trainable
            return 2

        def learn(self, total, monitor):  # type: ignore[no-untyped-def]
            self.learned.append(("fixed" if self.fixed else "trained", total))
            self.num_timesteps = total

    agent = Agent()
    learn_in_phases(ctx, agent, Phases.of_stage(ctx, run), monitor=None,  # type: ignore[arg-type]
                    stopped=lambda: False, env=None)
    assert agent.learned == expected
    assert not agent.fixed
    assert any("stay fixed for the first 500 steps" in line for line in lines) == \
        (resumed_at < 500)
