"""``ploutos stages``: list and show stage definitions."""

from __future__ import annotations

import json

import click

from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import stage_file_option
from ploutos_core.config.stage import stage_to_dict, stage_to_toml
from ploutos_core.evaluation.tables import text_table
from ploutos_core.pluginmanager.registry import Registry


@click.group("stages")
def stages_group() -> None:
    """List and show curriculum stages (built-in, from plugins, or --stage-file)."""


@stages_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@stage_file_option
@pass_app
def list_stages(app: AppContext, as_json: bool, stage_files: tuple[str, ...]) -> None:
    """List stages by curriculum and order, with the plugin that supplies each."""
    registry = app.registry(stage_files)
    stages = registry.stages()
    if as_json:
        click.echo(json.dumps([{**stage_to_dict(s), "plugin": registry.plugin_of("stages", s.name)}
                               for s in stages], indent=2))
        return
    header = ("name", "curriculum", "#", "tickers", "timesteps", "n_envs", "batch", "lr",
              "gate", "plugin")
    rows = [header] + [(
        s.name, s.curriculum, str(s.order), ",".join(s.tickers), f"{s.timesteps:,}",
        str(s.n_envs), str(s.environments()), f"{s.hyperparameters.learning_rate:g}",
        s.gate.describe(), registry.plugin_of("stages", s.name),
    ) for s in stages]
    for line in text_table(rows, numeric=False, rule=False):
        click.echo(line)
    warn_duplicates(registry)


def warn_duplicates(registry: Registry) -> None:
    """One warning line per stage name that several plugins registered (left out above)."""
    for name, plugins in registry.duplicates("stages").items():
        click.echo(f"Warning: stage {name!r} is registered twice, by "
                   f"{' and '.join(map(repr, plugins))}; it is left out until one is "
                   f"uninstalled or blocked (--block-plugin)", err=True)


@stages_group.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default="toml",
              show_default=True, help="TOML can be saved and edited as a --stage-file.")
@stage_file_option
@pass_app
def show_stage(app: AppContext, name: str, fmt: str, stage_files: tuple[str, ...]) -> None:
    """Show every setting of stage NAME."""
    registry = app.registry(stage_files)
    stage = registry.stage(name)
    data = stage_to_dict(stage)
    if fmt == "json":
        click.echo(json.dumps({**data, "plugin": registry.plugin_of("stages", name)}, indent=2))
        return
    click.echo(f"# stage {name!r}, supplied by plugin {registry.plugin_of('stages', name)!r}")
    click.echo(stage_to_toml(stage), nl=False)
