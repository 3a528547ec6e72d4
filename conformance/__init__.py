"""The conformance suite: cases, the engine that checks backends against the reference, reports, CLI.

Importing the package registers the built-in ops (convspec.conformance.ops) in the op registry.
"""

from . import ops as _builtin_ops  # noqa: F401  (registers the built-in ops)
