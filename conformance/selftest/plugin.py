"""The mutant catalogue as backends, for `convspec run -p convspec.conformance.selftest.plugin -b mut-...`
(the repro command of a kill)."""

from __future__ import annotations

from convspec.api.hookspecs import hookimpl

from .mutants import catalogue

MODULE = __name__


@hookimpl
def register_backends(register):
    for cls in catalogue():
        register(cls())
