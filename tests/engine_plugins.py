"""Backends for testing the engine, loaded with `-p engine_plugins`: the reference itself (a correct
backend), six deliberately wrong ones (one classic semantic bug each), and ones that raise, hang or
crash."""

from __future__ import annotations

import os
import time

import numpy as np
from convspec.conformance.backend import Backend

from convspec import hookimpl
from convspec import reference as R


class ReferenceBackend(Backend):
    """The reference, as a backend: computes in the input dtype with the spec's own code."""

    name = "ref"
    version = "spec"

    def __getattr__(self, op):
        if op.startswith("_"):
            raise AttributeError(op)
        return getattr(R, op)


def _flip(w):
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


class TiesToLarger(ReferenceBackend):
    name = "bug-ties-larger"

    def _last(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        # evaluate on the spatially reversed input, so the last maximum in window order wins
        nd = x.ndim - 2
        rev = (slice(None), slice(None)) + (slice(None, None, -1),) * nd
        pads = R._params.explicit_padding("padding", padding, nd)
        pads = tuple((e, b) for b, e in pads)
        return x[rev], pads, rev

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        return R.max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        plane = int(np.prod(x.shape[2:]))
        xr, pads, rev = self._last(x, kernel_size, stride, padding, dilation, ceil_mode)
        idx = R.max_pool_indices(xr, kernel_size, stride=stride, padding=pads, dilation=dilation, ceil_mode=ceil_mode)
        return (plane - 1 - idx)[rev] if not ceil_mode else plane - 1 - idx[rev]

    def kmax_pool_indices(self, x, k):
        return np.sort(x.shape[-1] - 1 - R.kmax_pool_indices(x[..., ::-1], k), axis=-1)

    def kmax_pool(self, x, k):
        return np.take_along_axis(x, self.kmax_pool_indices(x, k), axis=-1)

    def kmax_pool_backward(self, g, x, k):
        dx = np.zeros_like(x)
        np.put_along_axis(dx, self.kmax_pool_indices(x, k), g, axis=-1)
        return (dx,)


class CeilSizing(ReferenceBackend):
    """Output size with ceil instead of floor for conv (pads the end so the extra window exists)."""

    name = "bug-ceil-sizing"

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        nd = x.ndim - 2
        s = R._params.tuple_param("stride", stride, nd, minimum=1)
        d = R._params.tuple_param("dilation", dilation, nd, minimum=1)
        pads = R._params.resolve_padding("padding", padding, x.shape[2:], w.shape[2:], s, d)
        pads = tuple(
            (pb, pe + (-(n + pb + pe - dd * (k - 1) - 1)) % ss)
            for (pb, pe), n, k, ss, dd in zip(pads, x.shape[2:], w.shape[2:], s, d)
        )
        return R.conv(x, w, b, stride=stride, padding=pads, dilation=dilation, groups=groups)


class SameExtraAtStart(ReferenceBackend):
    name = "bug-same-pad-start"

    def _pads(self, x, w, stride, padding, dilation):
        if padding != "same":
            return padding
        nd = x.ndim - 2
        s = R._params.tuple_param("stride", stride, nd, minimum=1)
        d = R._params.tuple_param("dilation", dilation, nd, minimum=1)
        pairs = R._params.resolve_padding("padding", "same", x.shape[2:], w.shape[2:], s, d)
        return tuple((e, b) for b, e in pairs)  # the odd extra at the start

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        return R.conv(
            x,
            w,
            b,
            stride=stride,
            padding=self._pads(x, w, stride, padding, dilation),
            dilation=dilation,
            groups=groups,
        )

    def conv_backward(self, g, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        return R.conv_backward(
            g,
            x,
            w,
            b,
            stride=stride,
            padding=self._pads(x, w, stride, padding, dilation),
            dilation=dilation,
            groups=groups,
        )


class FlippedKernel(ReferenceBackend):
    """conv computes true convolution (the kernel flipped)."""

    name = "bug-flipped-kernel"

    def conv(self, x, w, b=None, **params):
        return R.convolve(x, w, b, **params)

    def conv_backward(self, g, x, w, b=None, **params):
        return R.convolve_backward(g, x, w, b, **params)


class ReluOneAtZero(ReferenceBackend):
    name = "bug-relu-grad-at-0"

    def relu_backward(self, g, x):
        return (np.where(x >= 0, g, 0 * g),)


class WrongBiasGrad(ReferenceBackend):
    """db as the mean of the output gradient instead of its sum."""

    name = "bug-bias-grad"

    def conv_backward(self, g, x, w, b=None, **params):
        dx, dw, db = R.conv_backward(g, x, w, b, **params)
        return dx, dw, None if db is None else db / (g.size // g.shape[1])


class Raises(ReferenceBackend):
    name = "raises"

    def relu(self, x):
        raise RuntimeError("backend exploded")


class Hangs(ReferenceBackend):
    name = "hangs"

    def relu(self, x):
        if (x == 0).any():  # only the relu-at-zero corner cases hang
            time.sleep(3600)
        return R.relu(x)


class Crashes(ReferenceBackend):
    name = "crashes"

    def relu(self, x):
        if (x == 0).any():
            os._exit(3)  # like a segfault: the process is gone without a Python exception
        return R.relu(x)


class HalfReference(ReferenceBackend):
    """The reference evaluated in the input dtype, float16 included."""

    name = "ref-half"
    dtypes = ("float16", "float32", "float64")


def round_to_tf32(a):
    """float32 values rounded to TF32's 10 explicit mantissa bits (round to nearest)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


class TF32Simulated(ReferenceBackend):
    """A TF32-like precision tier: conv rounds both factors to 10-bit mantissas before multiplying."""

    name = "tf32-sim"
    dtypes = ("float32",)
    product_roundoff = 2.0**-11

    def conv(self, x, w, b=None, **params):
        return R.conv(round_to_tf32(x), round_to_tf32(w), b, **params).astype(np.float32)


class Unavailable(ReferenceBackend):
    name = "unavailable"

    def availability(self):
        return "no such device"


WRONG = (TiesToLarger, CeilSizing, SameExtraAtStart, FlippedKernel, ReluOneAtZero, WrongBiasGrad)


@hookimpl
def register_backends(register):
    for cls in (ReferenceBackend, HalfReference, *WRONG, Raises, Hangs, Crashes, Unavailable):
        register(cls())
