"""Build the ``ploutos`` click group from a plugin manager."""

from __future__ import annotations

import os
import sys

import click

from ploutos_core.cli.compare_cmd import compare_command
from ploutos_core.cli.context import AppContext
from ploutos_core.cli.data_cmd import data_group
from ploutos_core.cli.evaluate_cmd import evaluate_command
from ploutos_core.cli.plugins_cmd import plugins_group
from ploutos_core.cli.run_cmd import run_group
from ploutos_core.cli.stages_cmd import stages_group
from ploutos_core.cli.tune_cmd import tune_command
from ploutos_core.errors import PluginError
from ploutos_core.pluginmanager.manager import PloutosPluginManager
from ploutos_core.pluginmanager.registry import call_impl

BUILTIN_COMMANDS = (plugins_group, stages_group, data_group, run_group, tune_command,
                    evaluate_command, compare_command)


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


def build_cli(pm: PloutosPluginManager) -> click.Group:
    """The top-level group with built-in commands and those plugins add.

    :raises PluginError: when a plugin adds a command whose name is taken.
    """

    @click.group(context_settings={"help_option_names": ["-h", "--help"],
                                   "max_content_width": 100})
    @click.version_option(package_name="ploutos", prog_name="ploutos")
    @click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
    @click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
                  help="Load a local plugin module or .py file (repeatable; also "
                       "$PLOUTOS_PLUGINS, comma-separated).")
    @click.option("--block-plugin", "blocked", multiple=True, metavar="NAME",
                  help="Do not load this plugin (repeatable; also $PLOUTOS_BLOCK_PLUGINS).")
    @click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
                  help="CPU threads torch may use; 0 keeps torch's default (one per core). "
                       "One is fastest for Ploutos's small networks (docs/performance.md).")
    @click.pass_context
    def cli(ctx: click.Context, debug: bool, plugins: tuple[str, ...],
            blocked: tuple[str, ...], threads: int) -> None:
        """Ploutos: curriculum reinforcement learning for trading agents.

        Quick start: 'ploutos run curriculum --source synthetic --scale 0.001 --ignore-gates'.
        """
        limit_threads(threads)
        ctx.obj = AppContext(pm, debug=debug)

    for command in BUILTIN_COMMANDS:
        cli.add_command(command)
    for impl in pm.hook.ploutos_register_commands.get_hookimpls():
        before = dict(cli.commands)
        call_impl(impl, "ploutos_register_commands", {"cli": cli})
        replaced = sorted(name for name, command in before.items()
                          if cli.commands.get(name) is not command)
        if replaced:
            raise PluginError(f"plugin {impl.plugin_name!r} replaced the command(s) "
                              f"{', '.join(replaced)}; command names must be unique")
    return cli
