"""The built-in case sources, registered through the register_case_sources hook like any plugin's.

A source is a callable (profile, seed, ops) -> iterable of Case; property-based sources may also offer
shrink(op, fails, seed) to minimise a failing configuration."""
from convspec.api.hookspecs import hookimpl
from . import corners, exact, golden, half, properties


@hookimpl
def register_case_sources(register):
    register("golden", golden.source)
    register("corner", corners.source)
    register("exact", exact.source)
    register("property", properties.source)
    register("half", half.source)
