"""The shared error classes (public API of convspec; the only thing taken from the spec package)."""

from convspec.api.errors import DTypeError, ParameterError, ShapeError, SpecError

__all__ = ["DTypeError", "ParameterError", "ShapeError", "SpecError"]
