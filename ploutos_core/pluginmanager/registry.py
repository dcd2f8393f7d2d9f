"""Collect what plugins register, remembering which plugin registered each name.

There is no registry beside pluggy: a :class:`Registry` is only the answer of
one plugin manager's ``ploutos_register_*`` hooks, computed on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import attrs
import pluggy

from ploutos_core.agents.contract import Algorithm
from ploutos_core.data.source import DataSource
from ploutos_core.env.day_filters import DayFilter
from ploutos_core.env.base import EnvBuilder
from ploutos_core.errors import PloutosError, PluginError, UnknownNameError
from ploutos_core.tracking.contract import LoggerFactory
from ploutos_core.config.stage import StageSpec
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
}


@attrs.frozen
class Registered(Generic[T]):
    """A registered object and the plugin that registered it."""

    item: T
    plugin: str


class Registrar(Generic[T]):
    """The ``register`` callable handed to one plugin's registry hook.

    Call it with each object to register. It checks the type and the name and
    refuses duplicates, naming both plugins.
    """

    def __init__(self, kind: Kind, plugin: str, sink: dict[str, Registered[Any]]) -> None:
        self._kind = kind
        self._plugin = plugin
        self._sink = sink

    def __call__(self, item: T) -> None:
        """Register ``item``.

        :raises PluginError: wrong type, missing name, or a name taken already.
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
        if name in self._sink:
            first = self._sink[name].plugin
            raise PluginError(
                f"{kind.label} {name!r} is registered twice, by plugin {first!r} and by plugin "
                f"{self._plugin!r}; uninstall or block one (--block-plugin / PLOUTOS_BLOCK_PLUGINS)"
            )
        self._sink[name] = Registered(item, self._plugin)


class Registry:
    """Everything the plugins of one manager registered, by kind and name.

    :param pm: a plugin manager from :func:`ploutos_core.pluginmanager.manager.get_plugin_manager`.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._cache: dict[str, dict[str, Registered[Any]]] = {}

    def all(self, kind: str) -> dict[str, Registered[Any]]:
        """Every object of ``kind`` (a key of :data:`KINDS`), by name, in registration order."""
        if kind not in self._cache:
            self._cache[kind] = self._collect(KINDS[kind])
        return self._cache[kind]

    def get(self, kind: str, name: str) -> Any:
        """The object of ``kind`` called ``name``.

        :raises UnknownNameError: listing the names that exist.
        """
        found = self.all(kind)
        if name not in found:
            raise UnknownNameError(KINDS[kind].label, name, list(found))
        return found[name].item

    def plugin_of(self, kind: str, name: str) -> str:
        """The plugin that registered ``name``."""
        self.get(kind, name)
        return self.all(kind)[name].plugin

    def _collect(self, kind: Kind) -> dict[str, Registered[Any]]:
        sink: dict[str, Registered[Any]] = {}
        caller = getattr(self._pm.hook, kind.hook)
        # Registration order: pluggy lists implementations oldest first, so built-ins
        # come before third-party plugins and list output is stable.
        for impl in caller.get_hookimpls():
            registrar: Registrar[Any] = Registrar(kind, impl.plugin_name, sink)
            call_impl(impl, kind.hook, {"register": registrar})
        return sink

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

    def stages(self) -> list[StageSpec]:
        """Every stage, by curriculum, then order, then name."""
        found = [cast(StageSpec, r.item) for r in self.all("stages").values()]
        return sorted(found, key=lambda s: (s.curriculum != "default", s.curriculum, s.order,
                                            s.name))

    def curriculum(self, name: str = "default") -> list[StageSpec]:
        """The stages of curriculum ``name`` in order.

        :raises UnknownNameError: when no stage belongs to it.
        """
        stages = [s for s in self.stages() if s.curriculum == name]
        if not stages:
            known = sorted({s.curriculum for s in self.stages()})
            raise UnknownNameError("curriculum", name, known)
        return stages


def call_impl(impl: pluggy.HookImpl, hook: str, available: dict[str, Any]) -> Any:
    """Call one hook implementation with the arguments it names, attributing failures.

    :raises PluginError: naming the plugin, when the implementation raises or a
        registry hook returns a value.
    """
    kwargs = {name: available[name] for name in impl.argnames if name in available}
    function = cast(Callable[..., Any], impl.function)
    try:
        result = function(**kwargs)
    except PluginError:
        raise  # a Registrar refusal already names the plugin
    except Exception as exc:
        detail = str(exc) if isinstance(exc, PloutosError) else f"{type(exc).__name__}: {exc}"
        raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook}: {detail}") from exc
    if hook.startswith("ploutos_register_") and result is not None:
        raise PluginError(
            f"plugin {impl.plugin_name!r}: {hook} returned {type(result).__name__}; "
            f"registry hooks must call register(...) and return None"
        )
    return result
