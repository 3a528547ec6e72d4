"""Sub-commands beyond `backends` and `run`, one module each; every module defines a click command
named like the module's `COMMAND` attribute and is added to the `convspec` group here."""

from __future__ import annotations

import importlib

COMMAND_MODULES = ("train", "report", "bench", "new_backend", "selftest")


def register_commands(group) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # not written yet
            raise
        group.add_command(module.COMMAND)
