"""convspec: an executable specification of CNN layers and a conformance suite for backends."""

from .api.errors import DTypeError, ParameterError, ShapeError, SpecError
from .api.hookspecs import hookimpl

SPEC_VERSION = "1.0"
__version__ = "0.1.0"

__all__ = ["SpecError", "ShapeError", "ParameterError", "DTypeError", "SPEC_VERSION", "hookimpl", "__version__"]
