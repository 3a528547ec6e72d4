"""Window geometry shared by max_pool and avg_pool."""

from __future__ import annotations

import numpy as np

from ._params import (
    bool_param,
    culprit,
    explicit_padding,
    grid,
    output_sizes,
    pad_array,
    spatial_array,
    tuple_param,
    window_work,
    windows,
)
from .errors import ParameterError


class PoolGeometry:
    """kernel_size, stride (defaults to the kernel size), padding (int, per-dim, pairs), dilation, ceil_mode.

    With ceil_mode the last window may overhang the padded input; the overhang is padded further
    (`extra` per dim) so every window is a full view; the ops decide what the overhang counts as."""

    def __init__(self, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
        nd = len(x_shape) - 2
        self.nd = nd
        self.kernel = tuple_param("kernel_size", kernel_size, nd, minimum=1)
        self.stride = self.kernel if stride is None else tuple_param("stride", stride, nd, minimum=1)
        self.dilation = tuple_param("dilation", dilation, nd, minimum=1)
        if isinstance(padding, str):
            raise ParameterError(
                "padding", f"pooling takes an int, a per-dim tuple or (begin, end) pairs, not the mode {padding!r}"
            )
        self.pads = explicit_padding("padding", padding, nd)
        self.in_sizes = tuple(x_shape[2:])
        self.ceil_mode = bool_param("ceil_mode", ceil_mode)
        self.out_sizes = output_sizes(
            self.in_sizes,
            self.kernel,
            self.stride,
            self.dilation,
            self.pads,
            ceil_mode=self.ceil_mode,
            kernel_name="kernel_size",
        )
        self.extra = tuple(
            max((o - 1) * s + d * (k - 1) + 1 - (n + b + e), 0)
            for o, s, d, k, n, (b, e) in zip(
                self.out_sizes, self.stride, self.dilation, self.kernel, self.in_sizes, self.pads
            )
        )
        self.plane = int(np.prod(self.in_sizes))
        padded = [(b, e + x_) for (b, e), x_ in zip(self.pads, self.extra)]
        window_work(
            culprit(self.in_sizes, padded, self.kernel, self.dilation, kernel_name="kernel_size"),
            x_shape[0],
            x_shape[1],
            x_shape[1],
            self.in_sizes,
            padded,
            self.kernel,
            self.out_sizes,
        )

    def window_view(self, x: np.ndarray, fill) -> np.ndarray:
        """(N, C, *out, K) where K = prod(kernel), padding and overhang filled with `fill`."""
        xp = pad_array(x, [(b, e + x_) for (b, e), x_ in zip(self.pads, self.extra)], fill)
        win = windows(xp, self.kernel, self.stride, self.dilation, self.out_sizes)
        return win.reshape(win.shape[: 2 + self.nd] + (int(np.prod(self.kernel)),))

    def window_positions(self) -> np.ndarray:
        """(*out, K, nd) unpadded input coordinates of every window element (may be outside the input)."""
        grids = []
        for o, s, d, k, (b, _) in zip(self.out_sizes, self.stride, self.dilation, self.kernel, self.pads):
            grids.append(np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - b)  # (o, k)
        nd = self.nd
        out = np.empty(self.out_sizes + self.kernel + (nd,), dtype=np.int64)
        for a, gr in enumerate(grids):
            shape = [1] * (2 * nd)
            shape[a], shape[nd + a] = gr.shape
            out[..., a] = gr.reshape(shape)
        return out.reshape(self.out_sizes + (-1, nd))

    def inside(self, pos: np.ndarray) -> np.ndarray:
        """Boolean mask: which positions lie inside the (unpadded) input."""
        return np.all((pos >= 0) & (pos < np.array(self.in_sizes)), axis=-1)

    def in_padded(self, pos: np.ndarray) -> np.ndarray:
        """Boolean mask: which positions lie inside the padded input (not in the ceil_mode overhang)."""
        lo = -np.array([b for b, _ in self.pads])
        hi = np.array([n + e for n, (_, e) in zip(self.in_sizes, self.pads)])
        return np.all((pos >= lo) & (pos < hi), axis=-1)

    def flat_index(self, pos: np.ndarray) -> np.ndarray:
        """Row-major flat per-plane index of (unpadded) input coordinates."""
        return np.ravel_multi_index(tuple(np.moveaxis(pos, -1, 0)), self.in_sizes, mode="clip")


def pool_input(x) -> np.ndarray:
    return spatial_array("x", x)


# --- per-window helpers of the literal definitions (max_pool_literal, avg_pool_literal, ...) --------

EMPTY_WINDOW = (
    "a pooling window lies entirely in the padding (padding must leave every window at least one input element)"
)


def window_taps(geo: PoolGeometry, i) -> list:
    """Output i's window, tap by tap in row-major order: the input coordinates i*s + j*d - p_begin of each
    tap j (they may lie in the padding or, with ceil_mode, beyond it)."""
    return [
        tuple(ii * s + jj * d - b for ii, jj, s, d, (b, _) in zip(i, j, geo.stride, geo.dilation, geo.pads))
        for j in grid(geo.kernel)
    ]


def is_input(geo: PoolGeometry, p) -> bool:
    """Does position p lie on the input (not in the padding, not in the ceil_mode overhang)?"""
    return all(0 <= pp < n for pp, n in zip(p, geo.in_sizes))


def is_padded_input(geo: PoolGeometry, p) -> bool:
    """Does position p lie in the explicitly padded input (the overhang beyond it does not)?"""
    return all(-b <= pp < n + e for pp, n, (b, e) in zip(p, geo.in_sizes, geo.pads))


def windows_literal(geo: PoolGeometry) -> dict:
    """{output position i: its window's taps}, every window checked to hold at least one input."""
    out = {}
    for i in grid(geo.out_sizes):
        out[i] = window_taps(geo, i)
        if not any(is_input(geo, p) for p in out[i]):
            raise ParameterError("padding", EMPTY_WINDOW)
    return out


def first_max(values) -> int:
    """Which of the values a max chooses: the first NaN if there is one, else the first maximum (a tie
    keeps the earlier value)."""
    best = 0
    for t, v in enumerate(values):
        if v != v:  # NaN propagates: the first NaN is chosen
            return t
        if v > values[best]:  # strictly greater: ties go to the earlier (smaller) index
            best = t
    return best
