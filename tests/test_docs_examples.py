"""The plugin-author docs stay true: schema tables, run layout, tutorial excerpts, examples."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from ploutos_core import Registry, StageSpec
from ploutos_core.config.stage import (
    EnvSettings,
    Gate,
    Hyperparameters,
    Splits,
    TransferSettings,
    TuningSpace,
    UniverseSettings,
)
from ploutos_core.data.panel import DateRange
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.testing import check_stage
from ploutos_plugins.ppo import PPOOptions
from tests.conftest import CliResult

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MY_CURRICULUM = DOCS / "examples" / "my-curriculum.toml"

# --- docs/stages.md ---------------------------------------------------------------------

TABLES = {"[stage]": StageSpec, "[stage.hyperparameters]": Hyperparameters,
          "[stage.tuning]": TuningSpace, "[stage.splits]": Splits, "[stage.gate]": Gate,
          "[stage.env]": EnvSettings, "[stage.universe]": UniverseSettings,
          "[stage.transfer]": TransferSettings, "[stage.algorithm_options]": PPOOptions}
NESTED = {Hyperparameters, TuningSpace, Splits, Gate, EnvSettings, UniverseSettings,
          TransferSettings}


def _documented_default(field: attrs.Attribute[Any]) -> str | None:
    """How stages.md writes a field's default; ``None`` for nested tables (not in the table)."""
    default = field.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[attr-defined]
    if type(default) in NESTED:
        return None
    if default is None:
        return "none"
    if isinstance(default, str):
        return f'"{default}"'
    if isinstance(default, DateRange):
        sides = [f"{k} = {v.isoformat()}" for k, v in (("start", default.start),
                                                        ("end", default.end)) if v]
        return "{ " + ", ".join(sides) + " }"
    if isinstance(default, tuple):
        return "[" + ", ".join(repr(v) for v in default) + "]"
    return repr(default)


def _tables(text: str) -> dict[str, dict[str, list[str]]]:
    tables: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### `(\[stage[^\]]*\])`", line)
        if heading:
            current = tables.setdefault(heading.group(1), {})
        elif line.startswith("## "):
            current = None
        elif current is not None and line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            current[cells[0].strip("`")] = cells[1:]
    return tables


def test_stages_md_documents_every_field_with_its_default() -> None:
    tables = _tables((DOCS / "stages.md").read_text(encoding="utf-8"))
    assert set(tables) == set(TABLES)
    for table, cls in TABLES.items():
        expected = {f.name: _documented_default(f) for f in attrs.fields(cls)}
        expected = {name: default for name, default in expected.items() if default is not None}
        assert set(tables[table]) == set(expected), table
        for name, default in expected.items():
            type_, documented, meaning = tables[table][name]
            assert documented.strip("`") == default, f"{table} {name}: {documented} != {default}"
            assert type_ and meaning, f"{table} {name} needs a type and a meaning"


# --- docs/examples/my-curriculum.toml ---------------------------------------------------


def test_my_curriculum_parses_into_an_ordered_curriculum(registry: Registry) -> None:
    stages = StageSpec.from_toml(MY_CURRICULUM)
    assert [(s.name, s.curriculum, s.order) for s in stages] == [
        ("mine-bonds", "mine", 1), ("mine-sectors", "mine", 2),
        ("mine-sectors-sharpe", "mine", 3)]
    assert len({len(s.tickers) for s in stages}) > 1, "the example grows the universe"
    assert stages[2].env.reward == "differential_sharpe"
    assert stages[2].splits.test == DateRange(dt.date(2022, 1, 1), dt.date(2023, 12, 31))
    for stage in stages:
        check_stage(stage, registry)


def test_my_curriculum_runs_as_documented(run_cli: Callable[..., CliResult],
                                          tmp_path: Path) -> None:
    listed = run_cli("stages", "list", "--stage-file", str(MY_CURRICULUM))
    assert listed.code == 0, listed
    assert [line.split()[1] for line in listed.out.splitlines()
            if line.startswith("mine-")] == ["mine"] * 3
    out = tmp_path / "smoke"
    result = run_cli("run", "curriculum", "--curriculum", "mine", "--stage-file",
                     str(MY_CURRICULUM), "--source", "synthetic", "--scale", "0.0001",
                     "--ignore-gates", "--out", str(out), "--no-progress", "--device", "cpu",
                     "--n-envs", "2")
    assert result.code == 0, result
    for name in ("mine-bonds", "mine-sectors", "mine-sectors-sharpe"):
        assert (out / "models" / f"{name}_final.zip").is_file()
    # Two assets, then four: the second stage starts from the first one's weights.
    assert "transferred" in result.out and "mine-bonds_final.zip" in result.out


# --- docs/run-layout.md -----------------------------------------------------------------


def test_run_layout_md_shows_every_path_run_layout_makes() -> None:
    text = (DOCS / "run-layout.md").read_text(encoding="utf-8")
    layout = RunLayout(Path("OUT"))
    paths = [layout.checkpoint("<stage>", "<steps>"),  # type: ignore[arg-type]
             layout.final_model("<stage>"), layout.best_model("<stage>"),
             layout.optimized_params("<stage>"), layout.manifest()]
    dirs = [layout.stage_dir("<stage>"), layout.log_dir("<stage>"),
            layout.report_dir("<stage>"), layout.trading_dir("<stage>"),
            layout.walkforward_dir("<stage>"), layout.production_dir("<stage>")]
    paths.append(layout.ledger("<stage>", "<broker>"))
    for path in paths:
        assert f"`{path.relative_to('OUT')}`" in text, path
    for directory in dirs:
        assert f"`{directory.relative_to('OUT')}/" in text, directory
    public = {name for name in vars(RunLayout) if not name.startswith("_")}
    covered = {"stage_dir", "checkpoint", "checkpoints", "newest_checkpoint", "final_model",
               "best_model", "optimized_params", "log_dir", "report_dir", "manifest",
               "has_outputs", "promote", "stage_outputs", "move_aside", "quarantine",
               "trading_dir", "ledger", "walkforward_dir", "production_dir"}
    assert public <= covered | {"root"}, f"document the new paths: {public - covered}"
    for documented in ("previous/<UTC time>/", ".ploutos.lock", ".zip.corrupt",
                       "validation_daily.csv", "<stage>_ensemble.zip", "_universes.json"):
        assert documented in text, documented


# --- docs/writing-plugins.md ------------------------------------------------------------


def test_tutorial_excerpts_are_verbatim_from_the_example_package() -> None:
    text = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    excerpts = re.findall(r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)
    assert len(excerpts) >= 8
    for path, block in excerpts:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert block in source, f"the tutorial's excerpt of {path} no longer matches the file"


@pytest.mark.parametrize("page", ["writing-plugins.md", "stages.md", "run-layout.md",
                                  "data-sources.md", "brokers.md", "deployment.md",
                                  "walkforward.md", "python-api.md"])
def test_relative_links_resolve(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\((?!https?:|#)([^)#]+)", text):
        assert (DOCS / target).exists(), f"{page} links to missing {target}"


# --- docs/brokers.md, docs/deployment.md (issue 12) -------------------------------------


def test_brokers_md_documents_the_whole_broker_contract() -> None:
    from ploutos_core import Broker, BrokerAccount, BrokerRequest

    text = (DOCS / "brokers.md").read_text(encoding="utf-8")
    methods = [name for cls in (Broker, BrokerAccount) for name in vars(cls)
               if not name.startswith("_") and callable(getattr(cls, name))]
    for name in methods:
        assert f"{name}(" in text, f"brokers.md does not describe {name}"
    for field in attrs.fields(BrokerRequest):
        assert f"`{field.name}`" in text, f"brokers.md does not describe request.{field.name}"


def test_deployment_md_lists_every_exit_code_of_trade() -> None:
    from ploutos_core.cli.trade_cmd import EXIT_CODES

    text = (DOCS / "deployment.md").read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert f"\n| {code} |" in text, f"deployment.md lacks exit code {code}"


# --- docs/data-sources.md ---------------------------------------------------------------


def test_data_sources_md_covers_every_builtin_source_and_data_command(
        registry: Registry) -> None:
    from ploutos_core.cli.data_cmd import data_group

    text = (DOCS / "data-sources.md").read_text(encoding="utf-8")
    builtin = {name for name, entry in registry.all("data_sources").items()
               if entry.plugin in ("csv", "synthetic", "yfinance")}
    for name in builtin:
        assert f"## `{name}`" in text
    mentioned = set(re.findall(r"ploutos data (\w+)", text))
    assert mentioned == set(data_group.commands), mentioned ^ set(data_group.commands)
