"""What every command shares: loading the plugins' registry (with errors reported and backend names
checked) and a guarded availability check."""
from __future__ import annotations

import click

from .. import plugins as plugin_loader


def load_registry(plugin, names=()):
    """The plugins' registry, with plugin load errors reported and every name in `names` checked to
    be a registered backend (a usage error listing the valid names otherwise)."""
    reg = plugin_loader.load(plugin)
    for err in reg.load_errors:
        click.echo(f"convspec: plugin {err.plugin!r} failed to load: {err.error}", err=True)
    for n in names:
        if n not in reg.backends:
            valid = ", ".join(reg.backends) or "(none found)"
            raise click.BadParameter(f"unknown backend {n!r}; valid names: {valid}", param_hint="--backend")
    return reg


def availability(backend) -> str | None:
    try:
        return backend.availability()
    except Exception as exc:  # a backend whose availability check itself breaks is unavailable
        return f"availability check raised {exc!r}"


def backend_rows(reg, names=None) -> list:
    """One row per backend (those named, or all): availability, version, device, dtypes, plugin."""
    rows = []
    for name, b in reg.backends.items():
        if names is not None and name not in names:
            continue
        reason = availability(b)
        rows.append({
            "name": name, "available": reason is None, "reason": reason,
            "version": str(getattr(b, "version", "")), "device": getattr(b, "device", ""),
            "dtypes": list(getattr(b, "dtypes", ())), "plugin": reg.origins[name],
        })
    return rows
