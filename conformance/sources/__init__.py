"""Case sources: where cases come from. The built-in ones are registered through the
register_case_sources hook like any plugin's.

A source follows the CaseSource protocol: ``cases(profile, seed, ops)`` yields the Case objects of a
profile ("quick" or "full") for a run seed and the selected ops, deterministically; it may also offer
``shrink(op, fails, seed)``, the minimal case for which ``fails(case)`` is true (or None). A plugin may
register a plain function ``source(profile, seed, ops)`` instead: as_source() wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, runtime_checkable

from convspec.api.hookspecs import hookimpl

from . import corners, errors, exact, golden, half, properties


@runtime_checkable
class CaseSource(Protocol):
    def cases(self, profile: str, seed: int, ops) -> Iterable: ...


@dataclass(frozen=True)
class Source:
    """A case source from functions: cases(profile, seed, ops) and an optional shrink(op, fails, seed)."""

    cases: Callable
    shrink: Callable | None = None
    options: tuple = ()  # the run options (Plan fields) cases() takes as keyword arguments


def as_source(obj) -> CaseSource:
    """obj as a CaseSource: a CaseSource as it is, a plain callable wrapped (its `shrink` attribute, if
    any, kept for plugins written against convspec 0.1)."""
    if isinstance(obj, CaseSource):
        return obj
    if callable(obj):
        return Source(obj, getattr(obj, "shrink", None), tuple(getattr(obj, "options", ())))
    raise TypeError(f"a case source has cases(profile, seed, ops) or is such a callable, not {type(obj).__name__}")


def shrinker_of(source) -> Callable | None:
    return getattr(source, "shrink", None)


@hookimpl
def register_case_sources(register):
    register("golden", Source(golden.source))
    register("corner", Source(corners.source))
    register("exact", Source(exact.source))
    register("property", Source(properties.source, properties.shrink, properties.source.options))
    register("half", Source(half.source))
    register("errors", Source(errors.source))
