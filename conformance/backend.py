"""Backward-compatible import path of the backend contract: it lives in convspec.api.backend.

Plugins in the wild write ``from convspec.conformance.backend import Backend, Unsupported, Deviation``;
that keeps working.
"""

from convspec.api.backend import Backend, Deviation, Unsupported, as_deviation, product_roundoff

__all__ = ["Backend", "Deviation", "Unsupported", "as_deviation", "product_roundoff"]
