"""kmax_pool (k-max pooling, the sentence-CNN lecture): along the last axis keep the k largest values
in their original order. Ranking: NaN above everything (the first NaN first), then by value, ties to
the smaller index. kmax_pool_indices returns the kept positions in increasing order.

dynamic_k(l, L, s, k_top) = max(k_top, ceil((L - l) / L * s)): the k of layer l of L for a sentence of
length s.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ._params import as_array, zero_like
from .conv import check_grad
from .errors import ParameterError


def kmax_pool_indices(x, k):
    x = as_array("x", x, min_ndim=1)
    n = x.shape[-1]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= n:
        raise ParameterError("k", f"must be an int with 1 <= k <= x.shape[-1] = {n}, got {k!r}")
    nan = x != x
    neg = np.where(nan, 0, -x) if x.dtype != object else np.where(nan, 0, -x).astype(object)
    pos = np.broadcast_to(np.arange(n), x.shape)
    # lexsort's last key is the primary one: NaN first, then descending value, ties by position
    rank = np.lexsort((pos, neg, ~nan), axis=-1)
    return np.sort(rank[..., :k], axis=-1)


def kmax_pool(x, k):
    x = as_array("x", x, min_ndim=1)
    return np.take_along_axis(x, kmax_pool_indices(x, k), axis=-1)


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
