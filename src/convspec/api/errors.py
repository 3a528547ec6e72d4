"""The convspec error family.

Every error names the parameter at fault and the rule it breaks, e.g.::

    ShapeError: x: channel mismatch: x has 3 input channels but w expects 4 (w.shape[1] * groups)

They subclass ValueError / TypeError so generic handlers keep working.
"""


class SpecError(Exception):
    """Base class of every error convspec raises for bad input."""

    def __init__(self, param: str, rule: str):
        self.param = param
        self.rule = rule
        super().__init__(f"{param}: {rule}")

    def __reduce__(self):  # picklable (results cross process boundaries)
        return (type(self), (self.param, self.rule))


class ShapeError(SpecError, ValueError):
    """An array has the wrong number of dimensions or an incompatible size."""


class ParameterError(SpecError, ValueError):
    """A hyper-parameter (stride, padding, dilation, groups, ...) breaks its rule."""


class DTypeError(SpecError, TypeError):
    """An array's dtype is not numeric (or not one the operation can evaluate)."""
