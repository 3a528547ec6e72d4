"""Plugin loading: default plugins, the `convspec` entry-point group, and -p/--plugin modules.

The built-in backends are default plugins: modules registered with pm.register() exactly like an
installed third-party plugin's module. Setting CONVSPEC_DISABLE_PLUGIN_AUTOLOAD=1 skips the entry
points (default plugins and -p modules still load). A plugin that fails to import is recorded with
its error in `load_errors` and the others still load.
"""
from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from convspec.api import hookspecs

DEFAULT_PLUGINS = (
    "convspec.backends.numpy_backend",
    "convspec.backends.cupy_backend",
    "convspec.backends.torch_backend",
    "convspec.backends.jax_backend",
    "convspec.backends.onnxruntime_backend",
    "convspec.backends.tensorflow_backend",
    "convspec.conformance.sources",
)
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
    case_sources: dict = field(default_factory=dict)  # name -> callable(profile, seed, ops)
    load_errors: list = field(default_factory=list)


def _register_module(pm, name: str, load, errors: list) -> None:
    try:
        module = load()
    except Exception as exc:  # an import error in one plugin must not stop the others
        errors.append(PluginError(name, "".join(traceback.format_exception_only(type(exc), exc)).strip()))
        return
    if not pm.is_registered(module) and pm.get_plugin(name) is None:
        pm.register(module, name=name)


def load(plugins=(), *, autoload: bool | None = None) -> Registry:
    """Build the plugin manager and collect the backends and case sources the plugins register."""
    pm = pluggy.PluginManager("convspec")
    pm.add_hookspecs(hookspecs)
    errors: list = []
    for mod in DEFAULT_PLUGINS:
        _register_module(pm, mod, lambda mod=mod: importlib.import_module(mod), errors)
    if autoload is None:
        autoload = not os.environ.get(AUTOLOAD_ENV)
    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _register_module(pm, ep.name, ep.load, errors)
    for mod in plugins:
        _register_module(pm, mod, lambda mod=mod: importlib.import_module(mod), errors)
    reg = Registry(pm, load_errors=errors)

    for impl in pm.hook.register_backends.get_hookimpls():
        def register(backend, _plugin=impl.plugin_name):
            if backend.name in reg.backends:
                errors.append(PluginError(_plugin, f"backend name {backend.name!r} already registered by {reg.origins[backend.name]}"))
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
            reg.case_sources[name] = source

        try:
            impl.function(register=register_source)
        except Exception as exc:
            errors.append(PluginError(impl.plugin_name, f"register_case_sources failed: {exc!r}"))
    return reg
