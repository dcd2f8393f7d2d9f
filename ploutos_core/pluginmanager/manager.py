"""Create the plugin manager: specs, built-in and installed plugins, local modules, blocks.

Nothing is loaded at import time. The CLI calls :func:`get_plugin_manager` once
per invocation and passes the manager down; tests make their own.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pluggy

from ploutos_core import hookspecs
from ploutos_core.errors import ConfigError, PluginLoadError

ENTRY_POINT_GROUP = "ploutos"
#: this distribution; its own entry points are the built-in plugins.
DISTRIBUTION = "ploutos"
#: version of the plugin API; a plugin module may declare ``PLOUTOS_API_VERSION``.
PLUGIN_API_VERSION = 1
#: comma-separated plugin names not to load.
BLOCK_ENV = "PLOUTOS_BLOCK_PLUGINS"
#: comma-separated local plugin modules (dotted names or ``.py`` paths) to load.
PLUGINS_ENV = "PLOUTOS_PLUGINS"


@attrs.frozen
class PluginInfo:
    """Where a loaded plugin came from.

    :param name: the plugin's registered name (entry-point name or module name).
    :param distribution: the installed distribution that declares it, if any.
    :param version: that distribution's version.
    :param origin: ``builtin``, ``entry point``, ``local`` or ``runtime``.
    """

    name: str
    distribution: str | None
    version: str | None
    origin: str


class PloutosPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers where plugins came from and what failed to load."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.load_errors: list[PluginLoadError] = []

    def register_plugin(self, plugin: object, name: str, info: PluginInfo) -> None:
        """Register ``plugin`` under ``name``, turning pluggy's validation into ``PluginError``.

        :raises PluginLoadError: bad hook signature, unknown hook or incompatible API.
        """
        _check_api_version(plugin, name)
        try:
            self.register(plugin, name=name)
        except ValueError as exc:  # pluggy: already registered / name taken
            raise PluginLoadError(f"plugin {name!r} could not be registered: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(f"plugin {name!r} implements a hook wrongly: "
                                  f"{_one_line(exc)}") from exc
        try:
            # Every plugin registered before this one passed the same check.
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            self.unregister(plugin)
            raise PluginLoadError(f"plugin {name!r} implements an unknown hook: "
                                  f"{_one_line(exc)}; see 'ploutos plugins hooks'") from exc
        self.infos[name] = info

    def info(self, name: str) -> PluginInfo:
        """Where plugin ``name`` came from (``runtime`` for ones registered by code)."""
        return self.infos.get(name, PluginInfo(name, None, None, "runtime"))

    def loaded(self) -> list[PluginInfo]:
        """Every registered plugin, built-ins first, then by name."""
        names = [name for name, plugin in self.list_name_plugin() if plugin is not None]
        infos = [self.info(name) for name in names]
        return sorted(infos, key=lambda i: (i.origin != "builtin", i.name))


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Where each plugin of ``pm`` came from (``runtime`` for a plain pluggy manager's)."""
    if isinstance(pm, PloutosPluginManager):
        return pm.loaded()
    return [PluginInfo(name, None, None, "runtime") for name, plugin in pm.list_name_plugin()
            if plugin is not None]


def _check_api_version(plugin: object, name: str) -> None:
    declared = getattr(plugin, "PLOUTOS_API_VERSION", None)
    if declared is None:
        return
    if not isinstance(declared, int) or isinstance(declared, bool):
        raise PluginLoadError(f"plugin {name!r} declares PLOUTOS_API_VERSION={declared!r}; "
                              f"it must be an integer")
    if declared != PLUGIN_API_VERSION:
        raise PluginLoadError(
            f"plugin {name!r} was written for plugin API {declared}, this Ploutos "
            f"provides API {PLUGIN_API_VERSION}; upgrade the plugin or Ploutos"
        )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _split_env(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def import_local_plugin(spec: str) -> tuple[str, ModuleType]:
    """Import a local plugin from a dotted module name or a ``.py`` file path.

    :raises PluginLoadError: when it cannot be imported.
    """
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec)
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            name = path.stem
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return name, module
        return spec, importlib.import_module(spec)
    except Exception as exc:
        raise PluginLoadError(f"local plugin {spec!r} failed to import: "
                              f"{type(exc).__name__}: {exc}") from exc


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def get_plugin_manager(
    *,
    local_plugins: Sequence[str] = (),
    blocked: Sequence[str] = (),
    plugins: Sequence[tuple[str, Any]] = (),
    load_entry_points: bool = True,
    strict: bool = False,
) -> PloutosPluginManager:
    """A fresh plugin manager with every available plugin loaded.

    :param local_plugins: extra modules (``--plugin``), added to ``$PLOUTOS_PLUGINS``.
    :param blocked: plugin names not to load, added to ``$PLOUTOS_BLOCK_PLUGINS``.
    :param plugins: ``(name, object)`` pairs to register directly (tests, stage files).
    :param load_entry_points: load the ``ploutos`` entry-point group (built-ins included).
    :param strict: raise the first load error instead of recording it in
        ``pm.load_errors``.
    :raises PluginLoadError: when Ploutos's own entry points are missing (not installed),
        or a local plugin fails (local plugins are explicit requests), or any
        failure with ``strict``.
    """
    pm = PloutosPluginManager()
    blocks = [*blocked, *_split_env(os.environ.get(BLOCK_ENV))]
    for name in blocks:
        pm.set_blocked(name)
    known = set()
    if load_entry_points:
        known |= _load_entry_points(pm, strict=strict)
    for spec in [*local_plugins, *_split_env(os.environ.get(PLUGINS_ENV))]:
        name, module = import_local_plugin(spec)
        known.add(name)
        if not pm.is_blocked(name) and not pm.is_registered(module):
            pm.register_plugin(module, name, PluginInfo(name, None, None, "local"))
    for name, plugin in plugins:
        known.add(name)
        if not pm.is_blocked(name):
            pm.register_plugin(plugin, name, PluginInfo(name, None, None, "runtime"))
    unknown = [name for name in blocks if name not in known]
    if unknown and load_entry_points:
        raise ConfigError(
            f"--block-plugin / ${BLOCK_ENV} names no plugin: {', '.join(map(repr, unknown))}; "
            f"plugins are {', '.join(sorted(known))} ('ploutos plugins list')")
    return pm


def _load_entry_points(pm: PloutosPluginManager, *, strict: bool) -> set[str]:
    """Load every entry point of the group; return every entry-point name (blocked too)."""
    own = 0
    names = set()
    for entry_point in _entry_points():
        names.add(entry_point.name)
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        if dist_name == DISTRIBUTION:
            own += 1
        if pm.is_blocked(entry_point.name) or pm.has_plugin(entry_point.name):
            continue
        origin = "builtin" if dist_name == DISTRIBUTION else "entry point"
        try:
            plugin = entry_point.load()
            pm.register_plugin(plugin, entry_point.name,
                               PluginInfo(entry_point.name, dist_name, version, origin))
        except Exception as exc:
            error = exc if isinstance(exc, PluginLoadError) else PluginLoadError(
                f"plugin {entry_point.name!r} ({entry_point.value}) from "
                f"{dist_name or 'an unknown distribution'} {version or ''} failed to load: "
                f"{type(exc).__name__}: {exc}"
            )
            if strict:
                raise error from exc
            pm.load_errors.append(error)
    if own == 0:
        raise PluginLoadError(
            "Ploutos's built-in plugins are not registered: the 'ploutos' distribution is not "
            "installed in this Python; install it with 'pip install -e .' from the source tree"
        )
    return names
