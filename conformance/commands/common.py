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


#: seconds a backend's availability() may take (it runs in a child process) before it is reported
#: unavailable
AVAILABILITY_TIMEOUT = 60.0


def _check(backend, send=None):
    """(availability, its facts): computed together in the child, so a heavy import (a framework a
    version string needs) happens there too."""
    try:
        reason = backend.availability()
    except Exception as exc:  # a backend whose availability check itself breaks is unavailable
        reason = f"availability check raised {exc!r}"
    facts = {}
    for key, default in (("version", ""), ("device", ""), ("dtypes", ())):
        try:
            value = getattr(backend, key, default)
            facts[key] = list(value) if key == "dtypes" else str(value)
        except Exception:
            facts[key] = list(default) if key == "dtypes" else default
    return reason, facts


def _static_facts(backend) -> dict:
    """The facts of a backend whose check did not answer: what its class says, without calling it."""
    cls = type(backend)
    version = getattr(cls, "version", "")
    return {
        "version": version if isinstance(version, str) else "",
        "device": str(getattr(cls, "device", "")),
        "dtypes": list(getattr(cls, "dtypes", ()) or ()),
    }


def availability(backend, timeout: float | None = None) -> str | None:
    """None when the backend is available, else why not. The check runs in a child process, so one that
    hangs or crashes is reported after `timeout` seconds (AVAILABILITY_TIMEOUT) instead of hanging."""
    return availabilities([backend], timeout)[backend.name]


def availabilities(backends, timeout: float | None = None) -> dict:
    """name -> availability(backend) for every backend, their checks run side by side in child
    processes (a GPU backend initialises its device there, never in this process)."""
    return {name: reason for name, (reason, _) in checked(backends, timeout).items()}


def checked(backends, timeout: float | None = None) -> dict:
    """name -> (availability, {version, device, dtypes}) of every backend, from child processes."""
    import time

    from ..worker import Isolated

    timeout = AVAILABILITY_TIMEOUT if timeout is None else timeout

    def answer(kind, payload):
        if kind == "ok":
            reason, facts = payload[0]
            return (None if reason is None else str(reason)), facts
        if kind == "timeout":
            return f"availability() did not answer within {timeout:g} s (it hangs?)", None
        if kind == "error":
            return "availability check raised " + payload.strip().splitlines()[-1], None
        return f"availability check {kind}: {payload}", None

    jobs = {}
    try:
        for b in backends:
            jobs[b.name] = Isolated(_check, (b,))
        deadline = time.monotonic() + timeout
        out = {name: answer(*job.wait(deadline, timeout)) for name, job in jobs.items()}
        by_name = {b.name: b for b in backends}
        return {name: (reason, facts or _static_facts(by_name[name])) for name, (reason, facts) in out.items()}
    finally:
        for job in jobs.values():
            job.stop()


def console(stderr: bool = False):
    """A rich Console: on a terminal, its width; otherwise (CI logs, pipes, files) wide enough that no
    table cell is ever cut."""
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty else 100_000, soft_wrap=not tty)


def backend_rows(reg, names=None) -> list:
    """One row per backend (those named, or all): availability, version, device, dtypes, plugin."""
    rows = []
    wanted = [b for name, b in reg.backends.items() if names is None or name in names]
    found = checked(wanted)
    for name in reg.backends:
        if names is not None and name not in names:
            continue
        reason, facts = found[name]
        rows.append({"name": name, "available": reason is None, "reason": reason, **facts, "plugin": reg.origins[name]})
    return rows
