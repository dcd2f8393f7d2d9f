"""The object every command receives: the plugin manager and the run-wide flags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ploutos_core.pluginmanager.manager import PloutosPluginManager
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.pluginmanager.stage_files import stage_file_plugins


class AppContext:
    """Shared state of one CLI invocation.

    :param pm: a ready plugin manager (tests), or ``None``: the group makes one from the
        global options before the first command is looked up.
    :param debug: show tracebacks.
    """

    def __init__(self, pm: PloutosPluginManager | None = None, debug: bool = False) -> None:
        self._pm = pm
        self.debug = debug
        self.commands_added = False
        self._registry: Registry | None = None
        self._stage_files: list[Path] = []

    @property
    def pm(self) -> PloutosPluginManager:
        """The plugin manager of this invocation."""
        if self._pm is None:
            raise RuntimeError("the plugin manager is made when a command is looked up")
        return self._pm

    @pm.setter
    def pm(self, value: PloutosPluginManager) -> None:
        self._pm = value

    @property
    def has_pm(self) -> bool:
        """Whether the plugin manager exists yet."""
        return self._pm is not None

    def registry(self, stage_files: Sequence[str | Path] = ()) -> Registry:
        """The registry, with the stages of ``stage_files`` registered as plugins."""
        new = [Path(p) for p in stage_files if Path(p) not in self._stage_files]
        for name, plugin in stage_file_plugins(new):
            self.pm.register_plugin(plugin, name, self.pm.info(name))
            self._registry = None
        self._stage_files.extend(new)
        if self._registry is None:
            self._registry = Registry(self.pm)
        return self._registry


pass_app = click.make_pass_decorator(AppContext)
