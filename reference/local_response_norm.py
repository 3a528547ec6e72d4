"""local_response_norm: AlexNet's local response normalization across channels
(Krizhevsky, Sutskever & Hinton 2012, section 3.3):

    b[n, c, i] = a[n, c, i] / (k + alpha * sum_{j in W(c)} a[n, j, i]^2) ^ beta

    W(c) = { j : max(0, c - size//2) <= j <= min(C - 1, c + (size - 1)//2) }

The window is the `size` channels centred on c, clipped at the first and last channel (no wrap-around,
nothing counted outside). For odd sizes it is symmetric, (size-1)/2 channels each side. For even sizes it
has ONE MORE CHANNEL BEFORE c than after (size=4: c-2 .. c+1): PyTorch's F.local_response_norm padding
(size//2 before, (size-1)//2 after); ONNX LRN is the mirror image (one more after), TensorFlow and Caffe
have odd windows only. alpha is NOT divided by size (the paper's formula; PyTorch, ONNX and Caffe divide it
by size, TensorFlow does not). Defaults are the paper's: k = 2, alpha = 1e-4, beta = 0.75 (with size = 5).

x is (N, C, *spatial) with 0 to 3 spatial dims. size is an int >= 1 (it may exceed C: the window is
clipped); k > 0 and alpha >= 0, so the base is >= k > 0 and any real beta is defined.

Backward: with D[c] = k + alpha * S[c] and S[c] the window's sum of squares,

    dx[i] = g[i] / D[i]^beta - 2 alpha beta x[i] sum_{c : i in W(c)} g[c] x[c] / D[c]^(beta+1)

i in W(c) exactly when i - (size-1)//2 <= c <= i + size//2: the transposed (mirrored) window.

Evaluated in floating point; on Fraction arrays only for an integer beta (then the op is rational and the
result exact). Each op comes twice: `<op>_literal`, explicit loops that read like the formula, then the
vectorised public `<op>` with the same signature and results.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._params import as_array
from .batch_norm import real_param
from .conv import check_grad
from .errors import DTypeError, ParameterError

#: AlexNet's constants (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
#: Neural Networks", NIPS 2012, section 3.3): "k = 2, n = 5, alpha = 10^-4, and beta = 0.75". The lecture
#: notes (Applied Deep Learning, Y.-N. Chen, NTU: seed 001, "AlexNet (2012)" and the VGG table's "A-LRN"
#: column) name LRN but give no constants; VGG's A-LRN uses AlexNet's.
ALEXNET_SIZE, ALEXNET_K, ALEXNET_ALPHA, ALEXNET_BETA = 5, 2.0, 1e-4, 0.75


def _size(size) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, (bool, np.bool_)) or size < 1:
        raise ParameterError("size", f"must be an int >= 1 (the number of channels in the window), got {size!r}")
    return int(size)


def _inputs(x, size, alpha, beta, k):
    x = as_array("x", x, ndim=(2, 3, 4, 5))
    size = _size(size)
    alpha = real_param("alpha", alpha, minimum=0)
    beta = real_param("beta", beta)
    k = real_param("k", k, minimum=0, min_open=True)
    if x.dtype == object:
        if beta != int(beta):
            raise DTypeError(
                "x",
                f"Fraction arrays are evaluated exactly only for an integer beta (the op is then "
                f"rational); beta = {beta!r} needs floating point",
            )
        return x, size, Fraction(alpha), int(beta), Fraction(k)
    return x, size, float(alpha), float(beta), float(k)


def window(c: int, size: int, channels: int) -> range:
    """W(c): the channels summed for channel c, c - size//2 .. c + (size-1)//2 clipped to [0, channels)."""
    return range(max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2) + 1)


# --------------------------------------------------------------------------------------- literal forms


def _denominators_literal(x, size, alpha, k):
    """D[n, c, i] = k + alpha * sum_{j in W(c)} x[n, j, i]^2, as loops."""
    D = np.empty(x.shape, dtype=x.dtype)
    for idx in np.ndindex(x.shape):
        n, c, rest = idx[0], idx[1], idx[2:]
        s = 0
        for j in window(c, size, x.shape[1]):
            s += x[(n, j) + rest] ** 2
        D[idx] = k + alpha * s
    return D


def local_response_norm_literal(x, size, *, alpha=ALEXNET_ALPHA, beta=ALEXNET_BETA, k=ALEXNET_K):
    x, size, alpha, beta, k = _inputs(x, size, alpha, beta, k)
    D = _denominators_literal(x, size, alpha, k)
    y = np.empty(x.shape, dtype=x.dtype)
    for idx in np.ndindex(x.shape):
        y[idx] = x[idx] / D[idx] ** beta
    return y


def local_response_norm_backward_literal(grad_out, x, size, *, alpha=ALEXNET_ALPHA, beta=ALEXNET_BETA, k=ALEXNET_K):
    """-> (dx,): dx[i] = g[i] / D[i]^beta - 2 alpha beta x[i] sum_{c : i in W(c)} g[c] x[c] / D[c]^(beta+1)."""
    x, size, alpha, beta, k = _inputs(x, size, alpha, beta, k)
    g = check_grad("grad_out", grad_out, x.shape)
    D = _denominators_literal(x, size, alpha, k)
    C = x.shape[1]
    dx = np.empty(x.shape, dtype=np.result_type(g, x))
    for idx in np.ndindex(x.shape):
        n, i, rest = idx[0], idx[1], idx[2:]
        t = 0
        for c in range(C):
            if i in window(c, size, C):
                t += g[(n, c) + rest] * x[(n, c) + rest] / D[(n, c) + rest] ** (beta + 1)
        dx[idx] = g[idx] / D[idx] ** beta - 2 * alpha * beta * x[idx] * t
    return (dx,)


# --------------------------------------------------------------------------------------- public forms


def _window_sums(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """out[:, c] = sum_{j = c - before}^{c + after} v[:, j] (zero outside), adding j in increasing order."""
    C = v.shape[1]
    # a window reaches at most C - 1 channels either side: wider is the same sum (and would allocate for nothing)
    before, after = min(before, max(C - 1, 0)), min(after, max(C - 1, 0))
    zero = Fraction(0) if v.dtype == object else 0
    padded = np.full((v.shape[0], C + before + after) + v.shape[2:], zero, dtype=v.dtype)
    padded[:, before : before + C] = v
    out = padded[:, 0:C].copy()
    for d in range(1, before + after + 1):
        out += padded[:, d : d + C]
    return out


def _denominators(x, size, alpha, k):
    return k + alpha * _window_sums(x * x, size // 2, (size - 1) // 2)


def local_response_norm(x, size, *, alpha=ALEXNET_ALPHA, beta=ALEXNET_BETA, k=ALEXNET_K):
    x, size, alpha, beta, k = _inputs(x, size, alpha, beta, k)
    return x / _denominators(x, size, alpha, k) ** beta


def local_response_norm_backward(grad_out, x, size, *, alpha=ALEXNET_ALPHA, beta=ALEXNET_BETA, k=ALEXNET_K):
    """-> (dx,); the sum over {c : i in W(c)} is a window sum with the before/after widths swapped."""
    x, size, alpha, beta, k = _inputs(x, size, alpha, beta, k)
    g = check_grad("grad_out", grad_out, x.shape)
    D = _denominators(x, size, alpha, k)
    t = _window_sums(g * x / D ** (beta + 1), (size - 1) // 2, size // 2)
    return (g / D**beta - 2 * alpha * beta * x * t,)
