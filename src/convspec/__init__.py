"""convspec: an executable specification of CNN layers and a conformance suite for backends."""
from .reference.errors import DTypeError, ParameterError, ShapeError, SpecError

SPEC_VERSION = "1.0"

__all__ = ["SpecError", "ShapeError", "ParameterError", "DTypeError", "SPEC_VERSION", "hookimpl"]


def __getattr__(name):  # keep `import convspec` light: pluggy is loaded only when asked for
    if name == "hookimpl":
        from .conformance.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(name)
