"""Collect what plugins register, remembering which plugin registered each name.

There is no registry beside pluggy: a :class:`Registry` is only the answer of
one plugin manager's ``ploutos_register_*`` hooks, computed on first use.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

import attrs
import pluggy

from ploutos_core.agents.contract import Algorithm
from ploutos_core.config.stage import StageSpec, duplicate_orders
from ploutos_core.data.source import DataSource
from ploutos_core.env.base import EnvBuilder
from ploutos_core.env.day_filters import DayFilter
from ploutos_core.errors import ConfigError, PluginError, UnknownNameError
from ploutos_core.pluginmanager.hookcalls import call_per_plugin
from ploutos_core.tracking.contract import LoggerFactory
from ploutos_core.trading.contract import Broker
from ploutos_core.tuning.contract import Tuner

T = TypeVar("T")


@attrs.frozen
class Kind:
    """One family of registered objects.

    :param hook: the registry hook's name.
    :param label: how messages name one object of the kind.
    :param type: the class every registered object must be an instance of.
    """

    hook: str
    label: str
    type: type


KINDS: dict[str, Kind] = {
    "data_sources": Kind("ploutos_register_data_sources", "data source", DataSource),
    "env_builders": Kind("ploutos_register_env_builders", "env builder", EnvBuilder),
    "algorithms": Kind("ploutos_register_algorithms", "algorithm", Algorithm),
    "tuners": Kind("ploutos_register_tuners", "tuner", Tuner),
    "loggers": Kind("ploutos_register_loggers", "logger", LoggerFactory),
    "stages": Kind("ploutos_register_stages", "stage", StageSpec),
    "day_filters": Kind("ploutos_register_day_filters", "day filter", DayFilter),
    "brokers": Kind("ploutos_register_brokers", "broker", Broker),
}


@attrs.frozen
class Registered(Generic[T]):
    """A registered object and the plugin that registered it."""

    item: T
    plugin: str


@attrs.frozen
class Collected:
    """What one registry hook produced.

    :param items: every registered object by name; a duplicated name keeps the first.
    :param duplicates: names registered more than once, with every registration.
    """

    items: dict[str, Registered[Any]]
    duplicates: dict[str, list[Registered[Any]]]

    def duplicate_error(self, kind: Kind, name: str) -> PluginError:
        """The error for a name registered twice, naming every plugin."""
        plugins = " and ".join(f"plugin {r.plugin!r}" for r in self.duplicates[name])
        return PluginError(
            f"{kind.label} {name!r} is registered twice, by {plugins}; uninstall or block one "
            f"(--block-plugin / PLOUTOS_BLOCK_PLUGINS)"
        )


class Registrar(Generic[T]):
    """The ``register`` callable handed to one plugin's registry hook.

    Call it with each object to register. It checks the type and the name; a name
    registered twice is recorded, and asking for it later is an error naming both
    plugins (listings and commands that do not use it still work).
    """

    def __init__(self, kind: Kind, plugin: str, collected: Collected) -> None:
        self._kind = kind
        self._plugin = plugin
        self._collected = collected

    def __call__(self, item: T) -> None:
        """Register ``item``.

        :raises PluginError: wrong type or missing name.
        """
        kind = self._kind
        if not isinstance(item, kind.type):
            raise PluginError(
                f"plugin {self._plugin!r} registered {type(item).__name__} through "
                f"{kind.hook}; expected an instance of {kind.type.__name__}"
            )
        name = getattr(item, "name", "")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {self._plugin!r} registered a {kind.label} without a name")
        entry = Registered(item, self._plugin)
        items, duplicates = self._collected.items, self._collected.duplicates
        if name in items:
            duplicates.setdefault(name, [items[name]]).append(entry)
        else:
            items[name] = entry


class Registry:
    """Everything the plugins of one manager registered, by kind and name.

    :param pm: a plugin manager from :func:`ploutos_core.pluginmanager.manager.get_plugin_manager`.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._cache: dict[str, Collected] = {}

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager whose hooks this registry answers (events are called on it)."""
        return self._pm

    def collected(self, kind: str) -> Collected:
        """What the plugins registered for ``kind``, duplicates included."""
        if kind not in self._cache:
            self._cache[kind] = self._collect(KINDS[kind])
        return self._cache[kind]

    def all(self, kind: str) -> dict[str, Registered[Any]]:
        """Every object of ``kind`` (a key of :data:`KINDS`), by name, in registration order;
        a duplicated name appears once (:meth:`duplicates` lists them)."""
        return self.collected(kind).items

    def duplicates(self, kind: str) -> dict[str, list[str]]:
        """Names of ``kind`` registered more than once, with the plugins that did."""
        return {name: [r.plugin for r in entries]
                for name, entries in self.collected(kind).duplicates.items()}

    def get(self, kind: str, name: str) -> Any:
        """The object of ``kind`` called ``name``.

        :raises UnknownNameError: listing the names that exist.
        :raises PluginError: when two plugins registered the name.
        """
        collected = self.collected(kind)
        if name in collected.duplicates:
            raise collected.duplicate_error(KINDS[kind], name)
        if name not in collected.items:
            raise UnknownNameError(KINDS[kind].label, name, list(collected.items))
        return collected.items[name].item

    def plugin_of(self, kind: str, name: str) -> str:
        """The plugin that registered ``name``."""
        self.get(kind, name)
        return self.all(kind)[name].plugin

    def _collect(self, kind: Kind) -> Collected:
        collected = Collected({}, {})
        # Oldest plugin first: built-ins come before third-party plugins, so listings
        # are stable.
        call_per_plugin(self._pm, kind.hook,
                        lambda plugin: {"register": Registrar(kind, plugin, collected)})
        return collected

    # Typed shortcuts used across the core.
    def data_source(self, name: str) -> DataSource:
        """The data source called ``name``."""
        return cast(DataSource, self.get("data_sources", name))

    def env_builder(self, name: str) -> EnvBuilder:
        """The env builder called ``name``."""
        return cast(EnvBuilder, self.get("env_builders", name))

    def algorithm(self, name: str) -> Algorithm:
        """The algorithm called ``name``."""
        return cast(Algorithm, self.get("algorithms", name))

    def tuner(self, name: str) -> Tuner:
        """The tuner called ``name``."""
        return cast(Tuner, self.get("tuners", name))

    def logger(self, name: str) -> LoggerFactory:
        """The logger factory called ``name``."""
        return cast(LoggerFactory, self.get("loggers", name))

    def stage(self, name: str) -> StageSpec:
        """The stage called ``name``."""
        return cast(StageSpec, self.get("stages", name))

    def day_filter(self, name: str) -> DayFilter:
        """The day filter called ``name``."""
        return cast(DayFilter, self.get("day_filters", name))

    def broker(self, name: str) -> Broker:
        """The broker called ``name``."""
        return cast(Broker, self.get("brokers", name))

    def stages(self) -> list[StageSpec]:
        """Every stage registered once, by curriculum, then order, then name."""
        duplicates = self.collected("stages").duplicates
        found = [cast(StageSpec, r.item) for name, r in self.all("stages").items()
                 if name not in duplicates]
        return sorted(found, key=lambda s: (s.curriculum != "default", s.curriculum, s.order,
                                            s.name))

    def curriculum(self, name: str = "default") -> list[StageSpec]:
        """The stages of curriculum ``name`` in order.

        :raises UnknownNameError: when no stage belongs to it.
        """
        stages = [s for s in self.stages() if s.curriculum == name]
        collected = self.collected("stages")
        for duplicate, entries in collected.duplicates.items():
            if any(cast(StageSpec, r.item).curriculum == name for r in entries):
                raise collected.duplicate_error(KINDS["stages"], duplicate)
        if not stages:
            known = sorted({s.curriculum for s in self.stages()})
            raise UnknownNameError("curriculum", name, known)
        clashes = duplicate_orders(stages)
        if clashes:
            raise ConfigError(clashes[0].removesuffix(" @ stage"))
        return stages
