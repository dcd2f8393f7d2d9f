"""Serve stages from user TOML files (``--stage-file``) through the stages hook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ploutos_core.config.stage import StageSpec
from ploutos_core.hookspecs import hookimpl
from ploutos_core.pluginmanager.registry import Registrar


class StageFilePlugin:
    """A plugin object registering every stage of the given files.

    The files are parsed when the plugin is created, so a bad file is reported
    before anything runs.

    :param paths: TOML stage files.
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.stages = [stage for path in self.paths for stage in StageSpec.from_toml(path)]

    @hookimpl
    def ploutos_register_stages(self, register: Registrar[StageSpec]) -> None:
        """Register the stages read from the files."""
        for stage in self.stages:
            register(stage)


def stage_file_plugins(paths: Sequence[str | Path]) -> list[tuple[str, StageFilePlugin]]:
    """``(name, plugin)`` pairs for :func:`ploutos_core.pluginmanager.manager.get_plugin_manager`.

    Each file becomes its own plugin, named ``stage-file:<path>``, so duplicate
    names between files are reported by file.
    """
    return [(f"stage-file:{path}", StageFilePlugin([path])) for path in paths]
