"""Plugin loading: the built-in plugins, the `convspec` entry-point group, and -p/--plugin modules.

The built-in backends and case sources are plugins like any other: convspec's own package declares
them as entry points of the group `convspec.builtin` (pyproject.toml), so the engine names no backend
module. Third-party plugins use the group `convspec`. Setting CONVSPEC_DISABLE_PLUGIN_AUTOLOAD=1 skips
the third-party entry points (built-in plugins and -p modules still load). A plugin that fails to
import is recorded with its error in `load_errors` and the others still load.
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from convspec.api import hookspecs

from .sources import as_source

BUILTIN_GROUP = "convspec.builtin"
ENTRY_POINT_GROUP = "convspec"
AUTOLOAD_ENV = "CONVSPEC_DISABLE_PLUGIN_AUTOLOAD"


@dataclass
class PluginError:
    plugin: str
    error: str


@dataclass
class Registry:
    pm: pluggy.PluginManager
    backends: dict = field(default_factory=dict)  # name -> backend
    origins: dict = field(default_factory=dict)  # name -> plugin name
    case_sources: dict = field(default_factory=dict)  # name -> CaseSource
    load_errors: list = field(default_factory=list)


def _register_module(pm, name: str, load, errors: list) -> None:
    try:
        module = load()
    except Exception as exc:  # an import error in one plugin must not stop the others
        errors.append(PluginError(name, "".join(traceback.format_exception_only(type(exc), exc)).strip()))
        return
    if not pm.is_registered(module) and pm.get_plugin(name) is None:
        pm.register(module, name=name)


def _unique(eps) -> list:
    """Entry points once each (a checkout's build metadata can list the same one twice), sorted by name,
    the embedded default backend (numpy) first."""
    seen: dict = {}
    for ep in eps:
        seen.setdefault((ep.name, ep.value), ep)
    return [seen[k] for k in sorted(seen, key=lambda k: (k[0] != "numpy", k))]


def builtin_plugins() -> tuple:
    """The modules of convspec's own plugins (backends and case sources), as declared in its metadata."""
    return tuple(ep.value for ep in _unique(entry_points(group=BUILTIN_GROUP)))


def load(plugins=(), *, autoload: bool | None = None) -> Registry:
    """Build the plugin manager and collect the backends and case sources the plugins register."""
    pm = pluggy.PluginManager("convspec")
    pm.add_hookspecs(hookspecs)
    errors: list = []
    for ep in _unique(entry_points(group=BUILTIN_GROUP)):  # registered under their module's name
        _register_module(pm, ep.value, ep.load, errors)
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    if autoload:
        for ep in _unique(entry_points(group=ENTRY_POINT_GROUP)):
            _register_module(pm, ep.name, ep.load, errors)
    for mod in plugins:
        _register_module(pm, mod, lambda mod=mod: importlib.import_module(mod), errors)
    reg = Registry(pm, load_errors=errors)

    for impl in pm.hook.register_backends.get_hookimpls():

        def register(backend, _plugin=impl.plugin_name):
            if backend.name in reg.backends:
                errors.append(
                    PluginError(
                        _plugin, f"backend name {backend.name!r} already registered by {reg.origins[backend.name]}"
                    )
                )
                return
            reg.backends[backend.name] = backend
            reg.origins[backend.name] = _plugin

        try:
            impl.function(register=register)
        except Exception as exc:
            errors.append(PluginError(impl.plugin_name, f"register_backends failed: {exc!r}"))

    for impl in pm.hook.register_case_sources.get_hookimpls():

        def register_source(name, source, _plugin=impl.plugin_name):
            if name in reg.case_sources:
                errors.append(PluginError(_plugin, f"case source name {name!r} already registered"))
                return
            try:
                reg.case_sources[name] = as_source(source)
            except TypeError as exc:
                errors.append(PluginError(_plugin, f"case source {name!r}: {exc}"))

        try:
            impl.function(register=register_source)
        except Exception as exc:
            errors.append(PluginError(impl.plugin_name, f"register_case_sources failed: {exc!r}"))
    return reg
