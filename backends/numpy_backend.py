"""The NumPy backend: an independent, speed-oriented implementation of every spec op.

It shares no code with convspec.reference (only the error classes): the conformance suite checks the
two against each other. The kernels live in convspec.backends._xp, written for any NumPy-compatible
array module so the CuPy backend can run the same code on the GPU.
"""

from __future__ import annotations

import numpy

from convspec.api.backend import Backend
from convspec.api.hookspecs import hookimpl

from ._xp import ArrayOps


class NumpyBackend(ArrayOps, Backend):
    name = "numpy"
    device = "cpu"
    dtypes = ("float32", "float64")
    version = numpy.__version__
    xp = numpy

    def from_numpy(self, a):
        return numpy.asarray(a)

    def to_numpy(self, a):
        return numpy.asarray(a)


@hookimpl
def register_backends(register):
    register(NumpyBackend())
