"""convspec's stable plugin API: the bottom layer every other part of convspec builds on.

Layers (imports only ever point down this list, checked by tests/test_layers.py)::

    convspec.api          errors, the backend contract, hook markers and specs, op signatures
    convspec.reference    the specification (pure NumPy), built on api
    convspec.backends     built-in backends, built on api (never on the reference's internals)
    convspec.conformance  cases, engine, reports, built on api and reference
    convspec.conformance.cli / commands   the command line, on top of everything

Plugin authors import from here (``from convspec.api import Backend, Unsupported, hookimpl``). The
older paths ``convspec.hookimpl`` and ``convspec.conformance.backend`` keep working.
"""

from .backend import Backend, Deviation, Unsupported, as_deviation, flushes_subnormals, product_roundoff
from .errors import DTypeError, ParameterError, ShapeError, SpecError
from .hookspecs import hookimpl, hookspec
from .ops import OpSignature

__all__ = [
    "Backend",
    "Deviation",
    "Unsupported",
    "as_deviation",
    "product_roundoff",
    "SpecError",
    "ShapeError",
    "ParameterError",
    "DTypeError",
    "hookimpl",
    "hookspec",
    "OpSignature",
]
