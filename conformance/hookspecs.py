"""Backward-compatible import path of the plugin hooks: they live in convspec.api.hookspecs."""

from convspec.api.hookspecs import hookimpl, hookspec, register_backends, register_case_sources

__all__ = ["hookimpl", "hookspec", "register_backends", "register_case_sources"]
