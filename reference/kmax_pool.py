"""kmax_pool (k-max pooling, the sentence-CNN lecture): along the last axis keep the k largest values
in their original order. Ranking: NaN above everything (the first NaN first), then by value, ties to
the smaller index. kmax_pool_indices returns the kept positions in increasing order.

dynamic_k(l, L, s, k_top) = max(k_top, ceil((L - l) / L * s)): the k of layer l of L for a sentence of
length s.

The literal definitions (a loop over the rows, each position kept when fewer than k others outrank it)
come first; kmax_pool, kmax_pool_indices and kmax_pool_backward are their vectorised form (a lexsort),
proven equal by tests/test_reference_literal.py.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ._params import as_array, grid, zero_like
from .conv import check_grad
from .errors import ParameterError


def _input(x, k):
    """x (at least 1-D) and k, checked: an int with 1 <= k <= x.shape[-1]."""
    x = as_array("x", x, min_ndim=1)
    n = x.shape[-1]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= n:
        raise ParameterError("k", f"must be an int with 1 <= k <= x.shape[-1] = {n}, got {k!r}")
    return x


# --- the literal definition ------------------------------------------------------------------------


def outranks(a, i, b, j) -> bool:
    """Does value a at position i rank above value b at position j? NaN above every number (the first NaN
    first), then the larger value, then (a tie) the smaller position."""
    if a != a or b != b:
        return a != a and (b == b or i < j)
    return a > b or (a == b and i < j)


def kmax_pool_indices_literal(x, k):
    """Along the last axis, the positions kept: those that fewer than k others outrank, in increasing order."""
    x = _input(x, k)
    n = x.shape[-1]
    index = np.empty(x.shape[:-1] + (k,), dtype=np.intp)
    for row in grid(x.shape[:-1]):
        v = x[row]
        kept = [i for i in range(n) if sum(outranks(v[j], j, v[i], i) for j in range(n)) < k]
        for t, i in enumerate(kept):
            index[row + (t,)] = i
    return index


def kmax_pool_literal(x, k):
    """The k largest values of the last axis, in their original order: x[..., kept[t]] for t < k."""
    x = _input(x, k)
    kept = kmax_pool_indices_literal(x, k)
    y = np.empty(kept.shape, dtype=x.dtype)
    for row in grid(kept.shape[:-1]):
        for t in range(k):
            y[row + (t,)] = x[row + (kept[row + (t,)],)]
    return y


def kmax_pool_backward_literal(grad_out, x, k):
    """dx[..., kept[t]] = g[..., t]; 0 at the positions not kept. -> (dx,)."""
    x = _input(x, k)
    kept = kmax_pool_indices_literal(x, k)
    g = check_grad("grad_out", grad_out, kept.shape)
    dx = np.full(x.shape, zero_like(g), dtype=g.dtype)
    for row in grid(kept.shape[:-1]):
        for t in range(k):
            dx[row + (kept[row + (t,)],)] = g[row + (t,)]
    return (dx,)


# --- the vectorised form ---------------------------------------------------------------------------


# The vectorised form of kmax_pool_indices_literal; tests/test_reference_literal.py proves the two equal.
def kmax_pool_indices(x, k):
    x = _input(x, k)
    n = x.shape[-1]
    nan = x != x
    neg = np.where(nan, 0, -x) if x.dtype != object else np.where(nan, 0, -x).astype(object)
    pos = np.broadcast_to(np.arange(n), x.shape)
    # lexsort's last key is the primary one: NaN first, then descending value, ties by position
    rank = np.lexsort((pos, neg, ~nan), axis=-1)
    return np.sort(rank[..., :k], axis=-1)


# The vectorised form of kmax_pool_literal; tests/test_reference_literal.py proves the two equal.
def kmax_pool(x, k):
    x = as_array("x", x, min_ndim=1)
    return np.take_along_axis(x, kmax_pool_indices(x, k), axis=-1)


# The vectorised form of kmax_pool_backward_literal; tests/test_reference_literal.py proves the two equal.
def kmax_pool_backward(grad_out, x, k):
    """-> (dx,): each kept value's gradient back at its position."""
    x = as_array("x", x, min_ndim=1)
    idx = kmax_pool_indices(x, k)
    g = check_grad("grad_out", grad_out, idx.shape)
    dx = np.full(x.shape, zero_like(g), dtype=g.dtype)
    np.put_along_axis(dx, idx, g, axis=-1)
    return (dx,)


def dynamic_k(layer, n_layers, length, k_top):
    for name, v in (("layer", layer), ("n_layers", n_layers), ("length", length), ("k_top", k_top)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (0 if name == "layer" else 1):
            raise ParameterError(name, f"must be a {'non-negative' if name == 'layer' else 'positive'} int, got {v!r}")
    if layer > n_layers:
        raise ParameterError("layer", f"must be <= n_layers={n_layers}, got {layer}")
    return max(k_top, math.ceil(Fraction(n_layers - layer, n_layers) * length))
