"""Declared deviations: where PyTorch genuinely computes something else than the spec.

Each is a :class:`~convspec.api.Deviation` naming only the checks it excuses, so a failure of any
other check of the same case is still a failure; :func:`declared` detects, from the case's public
attributes only (op, params, data, inputs()), whether a case meets one. tests/test_torch_backend.py
shows each one happening.
"""

from __future__ import annotations

import numpy as np
from convspec.backends._xp.arrays import padded, tap_slices
from convspec.backends._xp.geometry import Pool

from convspec.api import Deviation

# Evidence: PyTorch's max-pool kernels take a NaN when `val > max || isnan(val)`, so every later NaN of
# a window replaces the earlier one: with two or more NaNs in one window its max-pool index (and so its
# gradient, routed to that index) is the LAST NaN of the window; the spec picks the first. The value
# (NaN) is the same, so the forward check is not excused.
MAX_POOL_LAST_NAN = Deviation(
    "PyTorch max-pool picks the LAST NaN of a window with several NaNs (index and gradient); the spec picks the first",
    ("indices", "grad x"),
)

# Evidence: PyTorch's relu backward is ``threshold_backward(grad, relu(x), 0)``, which passes the
# gradient where the *output* is NaN (NaN <= 0 is false); the spec's derivative there is 0. The
# forward (NaN) matches.
RELU_GRAD_AT_NAN = Deviation(
    "PyTorch's relu backward passes the gradient at NaN inputs (threshold_backward tests the output, "
    "NaN <= 0 is false); the spec's derivative there is 0",
    ("grad x",),
)


def window_nan_counts(case) -> int:
    """The largest number of NaNs in one max-pool window of the case's input (0 when none): the NaN
    mask, zero-padded by the spec's pads and the ceil-mode overhang, summed over the kernel taps."""
    x = case.inputs()[0].astype(np.float64)
    p = case.params
    geo = Pool(
        x.shape, p["kernel_size"], p.get("stride"), p.get("padding", 0), p.get("dilation", 1), p.get("ceil_mode", False)
    )
    pads = tuple((b, e + o) for (b, e), o in zip(geo.pads, geo.overhang))
    nan = padded(np, np.isnan(x).astype(np.int64), pads, 0)
    lead = (slice(None), slice(None))
    counts = sum(nan[lead + taps] for taps in tap_slices(geo.kernel, geo.stride, geo.dilation, geo.out_sizes))
    return int(counts.max()) if counts.size else 0


def declared(case) -> Deviation | None:
    """The deviation PyTorch is known to show on this case, or None."""
    if case.op == "max_pool":  # whatever the data kind ("nan", "special", "explicit"...): count the NaNs
        try:
            if window_nan_counts(case) >= 2:
                return MAX_POOL_LAST_NAN
        except Exception:  # an invalid case: the engine reports the error, nothing to declare
            return None
    if case.op == "relu" and any(np.isnan(a).any() for a in case.inputs() if a is not None):
        return RELU_GRAD_AT_NAN
    return None
