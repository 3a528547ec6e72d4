"""The spec's parameters that PyTorch cannot take directly, expressed with PyTorch operations.

PyTorch computes every op; where one of its functions lacks a form of a parameter that the spec has,
the op table (ops.py) calls one of these instead of passing the parameter through. Each one says why
(search for "ADAPT"):

- ADAPT conv 'same'/'full'/asymmetric padding: PyTorch takes one symmetric pad per dim and rejects
  ``padding='same'`` with stride > 1, so the spec's (begin, end) pads are applied with an explicit
  ``F.pad`` (zeros) and the convolution runs with ``padding=0``.
- ADAPT conv_transpose padding: PyTorch crops ``padding`` symmetrically; other forms (asymmetric pairs,
  'same', 'full') run with ``padding=0`` and crop/extend the result with ``F.pad`` (negative pads crop).
- ADAPT pooling padding: PyTorch pools only with symmetric pads of at most ``kernel_size // 2``; other
  pads are applied by ``F.pad`` (``-inf`` for max, zeros for avg) and the ceil-mode overhang is padded
  the same way, so the pooling runs with ``padding=0`` in floor mode; max-pool indices are mapped back
  from the padded plane to the input plane (an all -inf window's index moved out of the padding to its first
  real element) and the values gathered from x at them, so the gradient follows the index.
- ADAPT avg_pool with dilation > 1 (PyTorch's avg_pool has no dilation): a depthwise ``F.conv`` with a
  ones kernel (the window sum, with that dilation) over the zero-padded input, divided by the spec's
  divisor (count of real, or of real + padding, window elements).
- ADAPT kmax_pool: ``torch.topk`` is documented as unstable on ties, so k-max uses
  ``torch.sort(descending=True, stable=True)`` (NaN sorts first, as the spec ranks it), keeps the first k
  positions and sorts those indices back into their original order.
- ADAPT batch_norm with one value per channel (m = 1): F.batch_norm refuses it in training mode in Python
  before calling the ATen operator torch.batch_norm, which computes the spec's y = beta; that operator is
  called directly for m = 1.
- ADAPT local_response_norm of an (N, C) input: PyTorch needs >= 3 dims, so it runs on (N, C, 1).

Geometry (sizes, the spec's pads for 'same'/'full') comes from convspec.backends._xp.geometry, which has
validated the parameters already; nothing here checks arguments.
"""

from __future__ import annotations

from convspec.backends._xp.geometry import per_dim

from .runtime import import_torch


def nd_function(F, stem: str, nd: int):
    """F.<stem>1d / 2d / 3d for nd spatial dims."""
    return getattr(F, f"{stem}{nd}d")


def pad_arg(pairs) -> tuple:
    """((b, e) per spatial dim, first dim first) -> F.pad's flat tuple (last dim first)."""
    out = []
    for b, e in reversed(list(pairs)):
        out += [b, e]
    return tuple(out)


def symmetric(pads):
    """The per-dim pad PyTorch takes when every (begin, end) pair is symmetric, else None."""
    return tuple(b for b, _ in pads) if all(b == e for b, e in pads) else None


def crop_to_windows(t, out_sizes):
    """The first out_sizes windows per spatial dim: in ceil mode the spec drops a last window that
    starts in the end padding, which PyTorch's floor-mode pooling over the padded input still computes."""
    return t[(slice(None), slice(None)) + tuple(slice(0, o) for o in out_sizes)]


# ---------------------------------------------------------------- convolution
def conv_input(x, geo):
    """(input, padding) for F.conv<n>d: x and its symmetric pads when PyTorch takes them, else
    (ADAPT: 'same' with an odd total, (begin, end) pairs) x zero-padded by F.pad, and 0."""
    sym = symmetric(geo.pads)
    if sym is not None:
        return x, sym
    return import_torch().nn.functional.pad(x, pad_arg(geo.pads)), 0


class Transpose:
    """conv_transpose's parameters as PyTorch takes them: the spec's output size (from the _xp geometry
    of the conv whose adjoint it is) and whether PyTorch's own symmetric padding expresses the pads."""

    def __init__(self, geo, padding, output_padding):
        self.nd, self.groups, self.stride, self.dilation = geo.nd, geo.groups, geo.stride, geo.dilation
        self.output_padding = per_dim("output_padding", output_padding, geo.nd, 0)  # validated by geo
        self.pads, self.out_sizes = geo.pads, geo.in_sizes
        # PyTorch's own padding crops symmetrically; 'same'/'full' may need zero rows beyond its output
        self.native = not isinstance(padding, str) and symmetric(geo.pads) is not None
        self.sym_pad = tuple(b for b, _ in geo.pads)


def transpose_fit(full, b, plan):
    """ADAPT: the unpadded transposed convolution `full` cropped to the spec's output: F.pad crops the
    begin pad and crops or zero-extends the end to the spec's size; the bias is added after."""
    F = import_torch().nn.functional
    adjust = [(-bb, n_x - (n_full - bb)) for (bb, _), n_full, n_x in zip(plan.pads, full.shape[2:], plan.out_sizes)]
    out = F.pad(full, pad_arg(adjust))
    return out if b is None else out + b.reshape((1, -1) + (1,) * plan.nd)


# ---------------------------------------------------------------- pooling
def native_pool_pads(geo) -> bool:
    """Whether PyTorch's pooling takes these pads itself: symmetric and at most kernel_size // 2."""
    return all(b == e and b <= k // 2 for (b, e), k in zip(geo.pads, geo.kernel))


def pool_input(x, geo, fill: float):
    """ADAPT: x padded by F.pad with `fill` by the pads PyTorch's pooling refuses (asymmetric,
    > kernel_size // 2) plus the ceil-mode overhang, so pooling runs with padding=0 in floor mode."""
    pads = [(b, e + o) for (b, e), o in zip(geo.pads, geo.overhang)]
    return import_torch().nn.functional.pad(x, pad_arg(pads), value=fill)


def input_indices(idx, padded_sizes, geo):
    """Max-pool indices into the padded plane (pool_input's) as flat indices into the input plane:
    unravel, shift by the begin pads, ravel into x's plane.

    A window whose real elements are all -inf ties with the -inf padding; PyTorch's kernel starts from the
    window's first tap and only moves on a greater value (or a NaN), so it keeps that first tap, which may
    lie in the begin padding. The spec's answer is the window's first REAL element (ties: the first in
    window order; padding never wins): per dim, the first tap at or after the begin pad."""
    torch = import_torch()
    coords = []
    rest = idx
    for n_p in reversed(padded_sizes):
        coords.append(rest % n_p)
        rest = torch.div(rest, n_p, rounding_mode="floor")
    coords.reverse()
    flat = torch.zeros_like(idx)
    for c, (b, _), n, d in zip(coords, geo.pads, geo.in_sizes, geo.dilation):
        c = torch.where(c < b, c + torch.div(b - c + d - 1, d, rounding_mode="floor") * d, c)
        flat = flat * n + (c - b)
    return flat


def gather_plane(x, idx):
    """ADAPT: max-pool values as x's elements at the (input-plane) indices, so that autograd routes the
    gradient to the element the index names (as max-pool's own backward does), also where input_indices
    moved an index out of the padding; the values are F.max_pool's (the max of the window)."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1).gather(2, idx.reshape(n, c, -1))
    return flat.reshape(idx.shape)


def avg_pool_by_window_sums(x, geo, count_include_pad: bool):
    """ADAPT: avg_pool with dilation (PyTorch's avg_pool has none) or with pads it refuses: the window
    sums are a depthwise convolution with a ones kernel over the zero-padded input (overhang included),
    divided by the spec's divisor: real elements, or real + padding ones (never the overhang)."""
    torch = import_torch()
    F = torch.nn.functional
    c = x.shape[1]
    xp = pool_input(x, geo, 0.0)
    ones = torch.ones((c, 1) + geo.kernel, dtype=x.dtype, device=x.device)
    conv = nd_function(F, "conv", geo.nd)
    total = crop_to_windows(
        conv(xp, ones, None, stride=geo.stride, padding=0, dilation=geo.dilation, groups=c), geo.out_sizes
    )
    divisor = torch.ones((), dtype=x.dtype, device=x.device)
    for axis in range(geo.nd):
        cnt = torch.tensor(geo.dim_counts(axis, count_include_pad), dtype=x.dtype, device=x.device)
        shape = [1] * geo.nd
        shape[axis] = -1
        divisor = divisor * cnt.reshape(shape)
    return total / divisor


def kmax_indices(x, k: int):
    """ADAPT: topk is unstable on ties; a stable descending sort ranks NaN first, then by value, ties
    by position. The first k positions, sorted back into their original order."""
    torch = import_torch()
    order = torch.sort(x.detach(), dim=-1, descending=True, stable=True).indices
    return torch.sort(order[..., :k], dim=-1).values


# ---------------------------------------------------------------- batch norm
def batch_norm_one_value(x, gamma, beta, eps: float):
    """ADAPT batch_norm with m = N * prod(spatial) = 1 (the spec allows it: var = 0, y = beta, dx = 0):
    F.batch_norm refuses it in training mode in Python (_verify_batch_size: "Expected more than 1 value
    per channel when training") before calling torch.batch_norm, the same ATen operator with the same
    arguments, which computes it; so this calls that operator directly, as F.batch_norm would."""
    torch = import_torch()
    return torch.batch_norm(x, gamma, beta, None, None, True, 0.1, eps, torch.backends.cudnn.enabled)
