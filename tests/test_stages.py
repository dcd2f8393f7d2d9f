"""Stages as data: TOML loading, validation errors, --stage-file, show/list."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ploutos_core import StageFileError, StageSpec

MINIMAL = """
[stage]
name = "mine"
tickers = ["SPY", "TLT"]
timesteps = 1000
"""


def write(tmp_path: Path, text: str, name: str = "stage.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_minimal_stage_gets_documented_defaults(tmp_path: Path) -> None:
    (stage,) = StageSpec.from_toml(write(tmp_path, MINIMAL))
    assert stage.tickers == ("SPY", "TLT")
    assert stage.transaction_cost_bps == 10.0
    assert stage.transaction_cost == pytest.approx(0.001)
    assert str(stage.splits.train) == "2005-01-01…2018-12-31"
    assert str(stage.splits.validation) == "2019-01-01…2022-12-31"
    assert str(stage.splits.test) == "2023-01-01…"
    assert stage.algorithm == "ppo" and stage.env_builder == "portfolio"


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [stage]
        name = "mine"
        tickers = ["SPY"]
        timesteps = "many"
        colour = "blue"
        [stage.hyperparameters]
        learning_rate = -1.0
        lernrate = 3
        [stage.env]
        reward = "sharpe"
    """)
    with pytest.raises(StageFileError) as caught:
        StageSpec.from_toml(path)
    problems = caught.value.problems
    assert "expected int, got str 'many' @ stage.timesteps" in problems
    assert "extra fields found (colour) @ stage" in problems
    assert "extra fields found (lernrate) @ stage.hyperparameters" in problems
    assert any(p.endswith("@ stage.env.reward") and "log_return" in p for p in problems)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("snippet", "expected"), [
    ('tickers = []', "must list at least one symbol @ stage.tickers"),
    ('tickers = ["SPY", "SPY"]', "must not repeat"),
    ('tickers = ["SPY"]\nn_envs = 0', "must be > 0, got 0 @ stage.n_envs"),
    ('tickers = ["SPY"]\n[stage.splits]\nvalidation = { start = 2018-06-01, end = 2019-01-01 }',
     "must be disjoint and ordered"),
    ('tickers = ["SPY"]\n[stage.tuning]\nlearning_rate = [1e-3, 1e-4]',
     "0 < low < high"),
])
def test_value_errors_point_at_the_field(tmp_path: Path, snippet: str, expected: str) -> None:
    path = write(tmp_path, f'[stage]\nname = "x"\ntimesteps = 10\n{snippet}\n')
    with pytest.raises(StageFileError, match=expected):
        StageSpec.from_toml(path)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StageFileError, match="not valid TOML"):
        StageSpec.from_toml(write(tmp_path, "[stage\nname="))
    with pytest.raises(StageFileError, match="file not found"):
        StageSpec.from_toml(tmp_path / "absent.toml")
    with pytest.raises(StageFileError, match=r"missing \[stage\] table"):
        StageSpec.from_toml(write(tmp_path, "name = 'x'"))


def test_several_stages_in_one_file(tiny_stage_file) -> None:
    stages = StageSpec.from_toml(tiny_stage_file())
    assert [s.name for s in stages] == ["tiny1", "tiny2"]
    assert {s.curriculum for s in stages} == {"tiny"}


def test_stage_file_adds_stages_to_listing(run_cli, tiny_stage_file) -> None:
    result = run_cli("stages", "list", "--stage-file", str(tiny_stage_file()))
    assert result.code == 0, result
    names = [line.split()[0] for line in result.out.splitlines()[1:]]
    assert names[:3] == ["stage1", "stage2", "stage3"]  # the default curriculum first
    assert names.index("tiny1") + 1 == names.index("tiny2")
    assert "stage-file:" in result.out


def test_bad_stage_file_on_cli_is_one_error_per_problem(run_cli, tmp_path: Path) -> None:
    path = write(tmp_path, '[stage]\nname = "x"\ntickers = []\ntimesteps = 0\n')
    result = run_cli("stages", "list", "--stage-file", str(path))
    assert result.code == 1
    assert result.err.startswith("Error: invalid stage file")
    assert "Traceback" not in result.err


def test_show_prints_toml_that_loads_back(run_cli, tmp_path: Path, registry) -> None:
    result = run_cli("stages", "show", "stage3")
    assert result.code == 0
    saved = tmp_path / "copy.toml"
    saved.write_text(result.out)
    (copy,) = StageSpec.from_toml(saved)
    assert copy == registry.stage("stage3")


def test_show_unknown_stage_lists_choices(run_cli) -> None:
    result = run_cli("stages", "show", "stage9")
    assert result.code == 1
    assert "unknown stage 'stage9'; available: " in result.err
    assert "stage1, stage2, stage3" in result.err


def test_duplicate_name_between_file_and_builtin(run_cli, tmp_path: Path) -> None:
    path = write(tmp_path, '[stage]\nname = "stage1"\ntickers = ["SPY"]\ntimesteps = 10\n')
    listed = run_cli("stages", "list", "--stage-file", str(path))
    assert listed.code == 0  # a duplicate breaks only what uses it (issue 13)
    assert "Warning: stage 'stage1' is registered twice" in listed.err
    assert "stage2" in listed.out and "stage1 " not in listed.out
    shown = run_cli("stages", "show", "stage1", "--stage-file", str(path))
    assert shown.code == 1
    assert "'stage1' is registered twice" in shown.err


def test_several_bad_values_in_one_table_are_all_reported(tmp_path: Path) -> None:
    """Issue 14: every bad value, not only the first."""
    path = write(tmp_path, '[stage]\nname = "x"\ntickers = ["SPY"]\ntimesteps = -1\n'
                           '[stage.hyperparameters]\nlearning_rate = -0.1\nn_steps = 0\n'
                           '[stage.env]\nmax_cash = 2.0\n')
    with pytest.raises(StageFileError) as caught:
        StageSpec.from_toml(path)
    problems = caught.value.problems
    for where in ("stage.timesteps", "stage.hyperparameters.learning_rate",
                  "stage.hyperparameters.n_steps", "stage.env.max_cash"):
        assert any(p.endswith(f"@ {where}") for p in problems), (where, problems)


def test_two_stages_of_a_curriculum_may_not_share_an_order(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, '[[stage]]\nname = "a"\ncurriculum = "mine"\norder = 1\n'
                           'tickers = ["SPY"]\ntimesteps = 10\n'
                           '[[stage]]\nname = "b"\ncurriculum = "mine"\norder = 1\n'
                           'tickers = ["QQQ"]\ntimesteps = 10\n')
    with pytest.raises(StageFileError, match="stages 'a' and 'b' both have order 1 in "
                                             "curriculum 'mine'"):
        StageSpec.from_toml(path)


def test_stage_selection_errors_say_what_to_type(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backwards = run_cli("run", "curriculum", "--stages", "3-1", "--source", "synthetic",
                        "--out", str(tmp_path / "x"))
    assert backwards.code == 1 and "a range runs from low to high, e.g. 1-3" in backwards.err
    beyond = run_cli("run", "curriculum", "--stages", "2-5", "--source", "synthetic",
                     "--out", str(tmp_path / "x"))
    assert beyond.code == 1 and "has 3 stages; use positions 1-3" in beyond.err


def test_stages_of_different_widths_are_refused_before_training(run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                tiny_stage_file) -> None:
    path = tiny_stage_file()
    path.write_text(path.read_text().replace("hidden_size = 16", "hidden_size = 8", 1))
    result = run_cli("run", "curriculum", "--curriculum", "tiny", "--stage-file", str(path),
                     "--source", "synthetic", "--out", str(tmp_path / "run"))
    assert result.code == 1
    assert "the stages' hidden_size differ (tiny1=8, tiny2=16)" in result.err
    assert not (tmp_path / "run").exists()
