"""The ``ploutos`` click group: global options parsed by click, plugins loaded from them."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ploutos_core.cli.compare_cmd import compare_command
from ploutos_core.cli.context import AppContext
from ploutos_core.cli.data_cmd import data_group
from ploutos_core.cli.ensemble_cmd import ensemble_group
from ploutos_core.cli.evaluate_cmd import evaluate_command
from ploutos_core.cli.plugins_cmd import plugins_group
from ploutos_core.cli.run_cmd import run_group
from ploutos_core.cli.signal_cmd import signal_command
from ploutos_core.cli.stages_cmd import stages_group
from ploutos_core.cli.trade_cmd import trade_group
from ploutos_core.cli.tune_cmd import tune_command
from ploutos_core.cli.walkforward_cmd import retrain_command, walkforward_command
from ploutos_core.errors import PluginError
from ploutos_core.pluginmanager.hookcalls import call_per_plugin
from ploutos_core.pluginmanager.manager import get_plugin_manager

BUILTIN_COMMANDS = (plugins_group, stages_group, data_group, run_group, tune_command,
                    evaluate_command, compare_command, ensemble_group, signal_command,
                    trade_group, walkforward_command, retrain_command)


def limit_threads(threads: int) -> None:
    """Let torch use ``threads`` CPU threads (0: torch's default), without importing it.

    Torch reads ``OMP_NUM_THREADS`` when it is imported; when it already is (tests
    call the CLI in-process), the pool is resized directly.
    """
    if not threads:
        return
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


class PloutosGroup(click.Group):
    """The top-level group. Plugins may add commands, so the plugin manager is made
    from the global options (``--plugin``, ``--block-plugin``) once click has parsed
    them, the first time a command is looked up or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Built-in and plugin commands."""
        self._load_plugins(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in or plugin command."""
        self._load_plugins(ctx)
        return super().get_command(ctx, cmd_name)

    def _load_plugins(self, ctx: click.Context) -> None:
        app = ctx.find_object(AppContext)
        if app is None or app.commands_added:
            return
        app.commands_added = True
        if not app.has_pm:
            app.pm = get_plugin_manager(local_plugins=ctx.params.get("plugins", ()),
                                        blocked=ctx.params.get("blocked", ()))
        for error in app.pm.load_errors:
            click.echo(f"Warning: {error} (skipped)", err=True)
        staging: dict[str, click.Group] = {}

        def arguments(plugin: str) -> dict[str, Any]:
            staging[plugin] = click.Group(plugin)
            return {"cli": staging[plugin]}

        call_per_plugin(app.pm, "ploutos_register_commands", arguments)
        for plugin, group in staging.items():
            for name, command in group.commands.items():
                if name in self.commands:
                    raise PluginError(f"plugin {plugin!r} adds the command {name!r}, which "
                                      f"exists already; command names must be unique")
                self.add_command(command, name)


def _remember_debug(ctx: click.Context, _: click.Parameter, value: bool) -> bool:
    app = ctx.find_object(AppContext)
    if app is not None:
        app.debug = app.debug or value
    return value


def build_cli() -> click.Group:
    """The top-level group with the built-in commands (plugins add theirs on first use)."""

    @click.group(cls=PloutosGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                     "max_content_width": 100})
    @click.version_option(package_name="ploutos", prog_name="ploutos")
    @click.option("--debug", is_flag=True, is_eager=True, callback=_remember_debug,
                  help="Show tracebacks of errors.")
    @click.option("--plugin", "plugins", multiple=True, metavar="MODULE", is_eager=True,
                  help="Load a local plugin module or .py file (repeatable; also "
                       "$PLOUTOS_PLUGINS, comma-separated).")
    @click.option("--block-plugin", "blocked", multiple=True, metavar="NAME", is_eager=True,
                  help="Do not load this plugin (repeatable; also $PLOUTOS_BLOCK_PLUGINS).")
    @click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
                  help="CPU threads torch may use; 0 keeps torch's default (one per core). "
                       "One is fastest for Ploutos's small networks (docs/performance.md).")
    def cli(debug: bool, plugins: tuple[str, ...], blocked: tuple[str, ...],
            threads: int) -> None:
        """Ploutos: curriculum reinforcement learning for trading agents.

        Quick start: 'ploutos run curriculum --source synthetic --scale 0.001 --ignore-gates'.
        """
        limit_threads(threads)

    for command in BUILTIN_COMMANDS:
        cli.add_command(command)
    return cli
