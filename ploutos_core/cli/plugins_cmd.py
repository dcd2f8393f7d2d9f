"""``ploutos plugins``: what is installed, what each plugin implements and registers."""

from __future__ import annotations

import inspect
import json
from typing import Any

import click

from ploutos_core.cli.context import AppContext, pass_app
from ploutos_core.cli.options import stage_file_option
from ploutos_core.cli.plugin_template import new_plugin
from ploutos_core.pluginmanager.hookdocs import hook_functions, signature_of
from ploutos_core.pluginmanager.registry import KINDS


def describe_plugins(app: AppContext, stage_files: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One record per plugin: name, origin, distribution, version, hooks, registrations."""
    registry = app.registry(stage_files)
    registered: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for registered_name, entry in registry.all(kind).items():
            registered.setdefault(entry.plugin, {}).setdefault(kind, []).append(registered_name)
    records = []
    for plugin in app.pm.get_plugins():
        plugin_name = app.pm.get_name(plugin)
        if plugin_name is None:
            continue
        name: str = plugin_name
        info = app.pm.info(name)
        hooks = sorted(caller.name for caller in app.pm.get_hookcallers(plugin) or [])
        records.append({
            "name": name, "origin": info.origin, "distribution": info.distribution,
            "version": info.version, "hooks": hooks, "registers": registered.get(name, {}),
        })
    records.sort(key=lambda r: (r["origin"] != "builtin", r["name"]))
    for error in app.pm.load_errors:
        records.append({"name": None, "origin": "failed", "error": str(error)})
    for kind, family in KINDS.items():
        for duplicate, plugins in registry.duplicates(kind).items():
            records.append({"name": None, "origin": "conflict",
                            "error": f"{family.label} {duplicate!r} is registered by "
                                     f"{' and '.join(map(repr, plugins))}; commands that use "
                                     f"it fail until one is uninstalled or blocked"})
    return records


@click.group("plugins")
def plugins_group() -> None:
    """Inspect installed plugins and the hooks they can implement."""


plugins_group.add_command(new_plugin)


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@stage_file_option
@pass_app
def list_plugins(app: AppContext, as_json: bool, stage_files: tuple[str, ...]) -> None:
    """List every plugin (built-in and third-party), its hooks and what it registers."""
    records = describe_plugins(app, stage_files)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for record in records:
        if record["origin"] in ("failed", "conflict"):
            click.echo(f"{record['origin'].upper()}  {record['error']}")
            continue
        source = record["distribution"] or "-"
        version = f" {record['version']}" if record["version"] else ""
        marker = " (built-in)" if record["origin"] == "builtin" else f" ({record['origin']})"
        click.echo(f"{record['name']}{marker}  [{source}{version}]")
        click.echo(f"    hooks: {', '.join(record['hooks']) or '-'}")
        for kind, names in record["registers"].items():
            click.echo(f"    {kind.replace('_', ' ')}: {', '.join(names)}")


@plugins_group.command("hooks")
def list_hooks() -> None:
    """List the hook specifications a plugin may implement."""
    for _, function in hook_functions():
        summary = (inspect.getdoc(function) or "").splitlines()[0]
        click.echo(f"{signature_of(function)}\n    {summary}")
