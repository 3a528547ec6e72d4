"""Window geometry shared by max_pool and avg_pool."""
from __future__ import annotations

import numpy as np

from ._params import explicit_padding, output_sizes, pad_array, spatial_array, tuple_param, windows
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
            raise ParameterError("padding", f"pooling takes an int, a per-dim tuple or (begin, end) pairs, not the mode {padding!r}")
        self.pads = explicit_padding("padding", padding, nd)
        self.in_sizes = tuple(x_shape[2:])
        self.ceil_mode = bool(ceil_mode)
        self.out_sizes = output_sizes(self.in_sizes, self.kernel, self.stride, self.dilation, self.pads, ceil_mode=self.ceil_mode, kernel_name="kernel_size")
        self.extra = tuple(
            max((o - 1) * s + d * (k - 1) + 1 - (n + b + e), 0)
            for o, s, d, k, n, (b, e) in zip(self.out_sizes, self.stride, self.dilation, self.kernel, self.in_sizes, self.pads)
        )
        self.plane = int(np.prod(self.in_sizes))

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
