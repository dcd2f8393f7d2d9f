"""Call hooks through pluggy's hook relay and say which plugin did what.

Every hook is called as ``pm.hook.<name>(...)``, so wrappers, ``firstresult``,
tracing and call history work as pluggy documents them (issue 13). Two things
the relay does not tell are recovered from the call stack:

* which plugin an exception escaped from: the innermost implementation frame
  in the traceback (:func:`call_hook`);
* which plugin registered what: registry hooks are called once per plugin
  (:func:`call_per_plugin`), each call with a registrar of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

import pluggy

from ploutos_core.errors import PloutosError, PluginError


def describe_plugin(pm: pluggy.PluginManager, name: str) -> str:
    """``plugin 'csv' (ploutos 0.1.0)``: the plugin and the distribution it came from."""
    info = getattr(pm, "infos", {}).get(name)
    if info is not None and info.distribution:
        return f"plugin {name!r} ({info.distribution} {info.version or ''})".replace(" )", ")")
    return f"plugin {name!r}"


def implementation_codes(pm: pluggy.PluginManager, hook: str) -> dict[CodeType, str]:
    """The code object of every implementation of ``hook``, with its plugin's name."""
    caller = getattr(pm.hook, hook)
    codes: dict[CodeType, str] = {}
    for impl in caller.get_hookimpls():
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    return codes


def plugin_in_traceback(codes: dict[CodeType, str], tb: TracebackType | None) -> str | None:
    """The plugin whose implementation is innermost in ``tb``."""
    found = None
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def call_hook(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Any:
    """``pm.hook.<hook>(**kwargs)``, with a failing implementation named.

    :raises PluginError: naming the plugin and its distribution when an implementation
        raises (a :class:`PluginError` that already names one passes through).
    """
    try:
        return getattr(pm.hook, hook)(**kwargs)
    except PluginError:
        raise
    except Exception as exc:
        codes = implementation_codes(pm, hook)
        plugin = plugin_in_traceback(codes, exc.__traceback__)
        if plugin is None:
            raise
        detail = str(exc) if isinstance(exc, PloutosError) else f"{type(exc).__name__}: {exc}"
        raise PluginError(f"{describe_plugin(pm, plugin)} failed in {hook}: {detail}") from exc


def call_per_plugin(pm: pluggy.PluginManager, hook: str,
                    make_kwargs: Callable[[str], dict[str, Any]]) -> None:
    """Call ``hook`` through pluggy once per plugin that implements it, oldest first.

    Each call goes through a hook caller that leaves out the other implementing
    plugins (:meth:`pluggy.PluginManager.subset_hook_caller`), so tracing and the
    wrappers of plugins that only wrap still run, and the arguments (e.g. a
    registrar) can be made for that plugin alone.

    :param make_kwargs: the arguments of the call for the plugin with this name.
    :raises PluginError: naming the plugin when its implementation raises, or when a
        registry hook returns a value.
    """
    caller = getattr(pm.hook, hook)
    implementing = [impl.plugin_name for impl in caller.get_hookimpls()
                    if not (impl.hookwrapper or impl.wrapper)]
    for name in dict.fromkeys(implementing):
        others = [pm.get_plugin(other) for other in implementing if other != name]
        single = pm.subset_hook_caller(hook, remove_plugins=others)
        try:
            results = single(**make_kwargs(name))
        except PluginError:
            raise  # a registrar's refusal already names the plugin
        except Exception as exc:
            detail = str(exc) if isinstance(exc, PloutosError) else \
                f"{type(exc).__name__}: {exc}"
            raise PluginError(f"{describe_plugin(pm, name)} failed in {hook}: {detail}") \
                from exc
        if hook.startswith("ploutos_register_") and any(r is not None for r in results):
            returned = next(r for r in results if r is not None)
            raise PluginError(
                f"plugin {name!r}: {hook} returned {type(returned).__name__}; registry hooks "
                f"must call register(...) and return None"
            )


#: packages of Ploutos itself; a frame there is never a third-party plugin's.
_OWN_PACKAGES = ("ploutos_core", "ploutos_plugins", "ploutos_stages", "ploutos")


def plugin_of_exception(pm: pluggy.PluginManager, exc: BaseException) -> str | None:
    """The plugin whose code raised ``exc`` (innermost frame of its traceback), if any.

    A frame belongs to a plugin when it runs in the plugin's module or, for a
    third-party plugin, anywhere in the top-level package of that module.
    """
    exact: dict[str, str] = {}
    packages: dict[str, str] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        module = getattr(plugin, "__name__", None) if isinstance(plugin, type(sys)) else \
            type(plugin).__module__
        if not module:
            continue
        exact[module] = name
        top = module.partition(".")[0]
        if top not in _OWN_PACKAGES:
            packages.setdefault(top, name)
    found = None
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        found = exact.get(module) or packages.get(module.partition(".")[0]) or found
        tb = tb.tb_next
    return found
