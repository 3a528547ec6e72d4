"""The convspec error family, defined in the plugin API (convspec.api.errors) and re-exported here."""

from convspec.api.errors import DTypeError, ParameterError, ShapeError, SpecError

__all__ = ["SpecError", "ShapeError", "ParameterError", "DTypeError"]
