"""convolve: true convolution, y[n] = sum_k x[k] w[n-k] -- cross-correlation with the kernel flipped
in every spatial axis. Same parameters as conv."""
from __future__ import annotations

from ._params import as_array
from .conv import conv, conv_backward


def _flip(w):
    w = as_array("w", w, min_ndim=3)
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def convolve(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    return conv(x, _flip(w), b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict)


def convolve_backward(grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
    """-> (dx, dw, db): the conv gradients, with dw flipped back to convolve's kernel orientation."""
    dx, dw, db = conv_backward(grad_out, x, _flip(w), b, stride=stride, padding=padding, dilation=dilation, groups=groups, strict=strict)
    return dx, _flip(dw), db
