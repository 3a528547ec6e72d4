"""The mutant catalogue: the NumPy backend with one realistic semantic change each (the kind of bug real
implementations have: a tie rule, a padding split, an overflow, a tail loop, a wrong reduction axis).

Each mutant is a NumpyBackend subclass registered with @mutant(name, *ops, kind=...):
- `ops`: the ops whose results the change can affect (a kill needs only their cases);
- `kind`: REAL (a wrong backend: the suite must kill it), EQUIVALENT (a correct one written differently:
  a reordering, a result an ulp off where the bound allows it: the suite must pass it) or ERROR (it
  accepts what the spec rejects: killable only where rejected cases are given to the backend);
- its docstring: one line naming the change.
"""

from __future__ import annotations

import numpy as np
from convspec.backends._xp import geometry as G
from convspec.backends.numpy_backend import NumpyBackend

REAL, EQUIVALENT, ERROR = "real", "equivalent", "error"
KINDS = (REAL, EQUIVALENT, ERROR)

#: name -> mutant class, in definition order
CATALOGUE: dict = {}


class Mutant(NumpyBackend):
    """The NumPy backend, unchanged (the base of every mutant)."""

    name = "mutant"
    ops: tuple = ()
    kind = REAL


def mutant(name, *ops, kind=REAL):
    def register(cls):
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), f"{cls.__name__}: a one-line docstring"
        cls.name, cls.ops, cls.kind = f"mut-{name}", ops, kind
        CATALOGUE[cls.name] = cls
        return cls

    return register


#: the classes of holes of issue 12 (cases that were never generated) and the mutants that need them
HOLE_CLASSES = {
    "1 strided/dilated 'same' padding": (
        "mut-same-split-ignores-stride",
        "mut-same-extra-at-start",
        "mut-convT-same-ignores-stride",
    ),
    "2 magnitudes around exp's thresholds": (
        "mut-sigmoid-textbook-backward",
        "mut-tanh-textbook",
        "mut-softmax-unshifted",
        "mut-xent-log-of-softmax",
    ),
    "3 shapes (ndim, N*C and sizes beyond 8/16/32)": (
        "mut-softmax-channel-axis",
        "mut-maxpool-planes-blocked-by-8",
        "mut-relu-tail-of-16",
        "mut-linear-features-blocked-by-8",
        "mut-xent-softmax-over-batch",
    ),
    "4 error behaviour (rejected cases)": (
        "mut-add-broadcasts",
        "mut-conv-ignores-strict",
        "mut-kmax-clamps-k",
        "mut-pool-accepts-padding-mode",
    ),
    "5 degenerate draws": (
        "mut-xent-grad-unscaled",
        "mut-softmax-grad-diagonal",
        "mut-kmax-sorted-by-value",
        "mut-global-avg-last-dim-only",
    ),
    "6 corner cases naming their alternative": (
        "mut-kmax-ties-last",
        "mut-kmax-sorted-by-value",
        "mut-kmax-signed-zeros",
        "mut-maxpool-ties-last",
    ),
    "7 non-finite data": (
        "mut-relu-nan-to-zero",
        "mut-relu-as-product",
        "mut-maxpool-ignores-nan",
        "mut-maxpool-last-nan",
        "mut-avgpool-nan-as-zero",
        "mut-global-max-ignores-nan",
        "mut-kmax-nan-last",
    ),
}


def catalogue(kind=None) -> list:
    """The mutant classes (of one kind, or all)."""
    return [c for c in CATALOGUE.values() if kind is None or c.kind == kind]


# ------------------------------------------------------------------------------------------ helpers
def _flip(w):
    w = np.asarray(w)
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def _nd(x):
    return np.ndim(x) - 2


def _conv_geo(x, w, stride, padding, dilation, groups):
    return G.Conv(np.shape(x), np.shape(w), None, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _per_dim(name, v, nd, minimum=1):
    return G.per_dim(name, v, nd, minimum)


def _f32(a):
    return None if a is None else np.asarray(a).astype(np.float32)


def _pool_geo(x, kernel_size, stride, padding, dilation, ceil_mode):
    return G.Pool(np.shape(x), kernel_size, stride, padding, dilation, ceil_mode)


def _windows(x, geo, fill):
    """Every pooling window as taps: (values (N, C, *out, K) with `fill` off the input, flat plane index
    (*out, K), on-input mask (*out, K), inside-the-explicit-padding mask (*out, K))."""
    nd = geo.nd
    valid = inpad = flat = None
    for a in range(nd):
        k, s, d, (b, e) = geo.kernel[a], geo.stride[a], geo.dilation[a], geo.pads[a]
        n = geo.in_sizes[a]
        p = np.arange(geo.out_sizes[a])[:, None] * s + np.arange(k)[None, :] * d - b
        shape = [1] * (2 * nd)
        shape[a], shape[nd + a] = geo.out_sizes[a], k
        p = p.reshape(shape)
        ok, inp = (p >= 0) & (p < n), (p >= -b) & (p < n + e)
        valid = ok if valid is None else valid & ok
        inpad = inp if inpad is None else inpad & inp
        flat = p if flat is None else flat * n + p
    full = tuple(geo.out_sizes) + tuple(geo.kernel)
    K = int(np.prod(geo.kernel))
    shape = tuple(geo.out_sizes) + (K,)
    valid = np.broadcast_to(valid, full).reshape(shape)
    inpad = np.broadcast_to(inpad, full).reshape(shape)
    flat = np.where(valid, np.broadcast_to(flat, full).reshape(shape), 0)
    x = np.asarray(x)
    vals = x.reshape(x.shape[:2] + (-1,))[:, :, flat]
    return np.where(valid, vals, x.dtype.type(fill)), flat, valid, inpad


def _first(mask, last=False):
    k = mask.shape[-1]
    return k - 1 - np.argmax(mask[..., ::-1], axis=-1) if last else np.argmax(mask, axis=-1)


def _take(a, j):
    a = np.broadcast_to(a, j.shape + (a.shape[-1],)) if a.ndim < j.ndim + 1 else a
    return np.take_along_axis(a, j[..., None], axis=-1)[..., 0]


def _scatter(g, idx, x_shape, accumulate=True):
    """dx with g[..., o] added (or, accumulate=False, written: the last write wins) at plane index idx."""
    n, c = x_shape[:2]
    dx = np.zeros((n * c, int(np.prod(x_shape[2:]))), dtype=g.dtype)
    rows = np.repeat(np.arange(n * c), g[0, 0].size if g.size else 0).reshape(n * c, -1)
    cols = np.broadcast_to(idx, g.shape).reshape(n * c, -1)
    if accumulate:
        np.add.at(dx, (rows, cols), g.reshape(n * c, -1))
    else:
        dx[rows, cols] = g.reshape(n * c, -1)
    return dx.reshape(x_shape)


# ------------------------------------------------------------------------------------- convolution
class _Pads(Mutant):
    """Base: conv (and convolve through it) with the padding resolved by another rule, `pads`."""

    def pads(self, x, w, stride, padding, dilation, groups):
        return padding

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        p = self.pads(x, w, stride, padding, dilation, groups)
        return super().conv(x, w, b, stride=stride, padding=p, dilation=dilation, groups=groups, strict=strict)

    def conv_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        p = self.pads(x, w, stride, padding, dilation, groups)
        return super().conv_backward(
            grad_out, x, w, b, stride=stride, padding=p, dilation=dilation, groups=groups, strict=strict
        )


def _same_pairs(x, w, stride, dilation, split):
    nd = _nd(x)
    s, d = _per_dim("stride", stride, nd), _per_dim("dilation", dilation, nd)
    return tuple(split(n, k, ss, dd) for n, k, ss, dd in zip(np.shape(x)[2:], np.shape(w)[2:], s, d))


@mutant("same-split-ignores-stride", "conv", "convolve")
class SameIgnoresStride(_Pads):
    """'same' padding split as for stride 1: d*(k-1) in total, half at the begin, whatever the stride."""

    def pads(self, x, w, stride, padding, dilation, groups):
        if padding != "same":
            return padding
        return _same_pairs(x, w, stride, dilation, lambda n, k, s, d: (d * (k - 1) // 2, (d * (k - 1) + 1) // 2))


@mutant("same-extra-at-start", "conv", "convolve")
class SameExtraAtStart(_Pads):
    """'same' padding puts the odd extra pad at the begin (ONNX SAME_LOWER) instead of the end."""

    def pads(self, x, w, stride, padding, dilation, groups):
        if padding != "same":
            return padding
        return tuple((e, b) for b, e in _same_pairs(x, w, stride, dilation, G.same_split))


@mutant("full-ignores-dilation", "conv", "convolve")
class FullIgnoresDilation(_Pads):
    """'full' padding is k-1 at both ends, forgetting the dilation (d*(k-1))."""

    def pads(self, x, w, stride, padding, dilation, groups):
        if padding != "full":
            return padding
        return tuple((k - 1, k - 1) for k in np.shape(w)[2:])


@mutant("pairs-read-as-onnx", "conv", "convolve")
class PairsReadAsOnnx(_Pads):
    """Per-dim (begin, end) pairs read in ONNX's flat order (b1, b2, ..., e1, e2, ...)."""

    def pads(self, x, w, stride, padding, dilation, groups):
        nd = _nd(x)
        if isinstance(padding, (tuple, list)) and all(isinstance(p, (tuple, list)) for p in padding) and nd > 1:
            flat = [v for pair in padding for v in pair]
            return tuple((flat[i], flat[nd + i]) for i in range(nd))
        return padding


@mutant("ceil-sizing", "conv", "convolve")
class CeilSizing(_Pads):
    """Output size rounded up (ceil) instead of down: the end is padded until the last partial window fits."""

    def pads(self, x, w, stride, padding, dilation, groups):
        geo = _conv_geo(x, w, stride, padding, dilation, groups)
        return tuple(
            (b, e + (-(n + b + e - d * (k - 1) - 1)) % s)
            for (b, e), n, k, s, d in zip(geo.pads, geo.in_sizes, geo.kernel, geo.stride, geo.dilation)
        )


class _Params(Mutant):
    """Base: conv with its stride and dilation rewritten by `params`."""

    def params(self, x, stride, dilation):
        return stride, dilation

    def conv(self, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        s, d = self.params(x, stride, dilation)
        return super().conv(x, w, b, stride=s, padding=padding, dilation=d, groups=groups, strict=strict)

    def conv_backward(self, grad_out, x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, strict=False):
        s, d = self.params(x, stride, dilation)
        return super().conv_backward(
            grad_out, x, w, b, stride=s, padding=padding, dilation=d, groups=groups, strict=strict
        )


@mutant("stride-dims-reversed", "conv", "convolve")
class StrideDimsReversed(_Params):
    """Per-dim strides applied in reverse order (a width/height mix-up)."""

    def params(self, x, stride, dilation):
        return (tuple(reversed(stride)) if isinstance(stride, (tuple, list)) else stride), dilation


@mutant("dilation-dims-reversed", "conv", "convolve")
class DilationDimsReversed(_Params):
    """Per-dim dilations applied in reverse order (a width/height mix-up)."""

    def params(self, x, stride, dilation):
        return stride, (tuple(reversed(dilation)) if isinstance(dilation, (tuple, list)) else dilation)


@mutant("conv-kernel-must-fit-input", "conv", "convolve")
class KernelMustFitInput(Mutant):
    """conv rejects a kernel larger than the unpadded input (the padding left out of the check)."""

    def _check(self, x, w):
        if any(k > n for k, n in zip(np.shape(w)[2:], np.shape(x)[2:])):
            raise ValueError("w: kernel larger than the input")

    def conv(self, x, w, b=None, **params):
        self._check(x, w)
        return super().conv(x, w, b, **params)

    def conv_backward(self, grad_out, x, w, b=None, **params):
        self._check(x, w)
        return super().conv_backward(grad_out, x, w, b, **params)


@mutant("flipped-kernel", "conv")
class FlippedKernel(Mutant):
    """conv computes true convolution (the kernel flipped), forward and backward."""

    def conv(self, x, w, b=None, **params):
        return super().conv(x, _flip(w), b, **params)

    def conv_backward(self, grad_out, x, w, b=None, **params):
        dx, dw, db = super().conv_backward(grad_out, x, _flip(w), b, **params)
        return dx, np.ascontiguousarray(_flip(dw)), db


@mutant("groups-interleaved", "conv", "convolve")
class GroupsInterleaved(Mutant):
    """Grouped conv gives group g the channels c with c % G == g instead of the g-th contiguous block."""

    @staticmethod
    def _perm(c, groups):
        cg = c // groups
        return np.array([j * groups + g for g in range(groups) for j in range(cg)])

    def conv(self, x, w, b=None, *, groups=1, **params):
        x = np.asarray(x)
        return super().conv(x[:, self._perm(x.shape[1], groups)], w, b, groups=groups, **params)

    def conv_backward(self, grad_out, x, w, b=None, *, groups=1, **params):
        x = np.asarray(x)
        perm = self._perm(x.shape[1], groups)
        dxp, dw, db = super().conv_backward(grad_out, x[:, perm], w, b, groups=groups, **params)
        dx = np.empty_like(dxp)
        dx[:, perm] = dxp
        return dx, dw, db


@mutant("float32-accumulation", "conv", "convolve")
class Float32Accumulation(Mutant):
    """conv computes in float32 whatever the input dtype (float64 results carry float32 rounding)."""

    def conv(self, x, w, b=None, **params):
        return super().conv(_f32(x), _f32(w), _f32(b), **params).astype(np.result_type(x, w))

    def conv_backward(self, grad_out, x, w, b=None, **params):
        dt = np.result_type(x, w)
        out = super().conv_backward(_f32(grad_out), _f32(x), _f32(w), _f32(b), **params)
        return tuple(None if a is None else a.astype(dt) for a in out)


@mutant("bias-grad-mean", "conv", "convolve")
class BiasGradMean(Mutant):
    """db is the mean of the output gradient over batch and positions instead of its sum."""

    def conv_backward(self, grad_out, x, w, b=None, **params):
        dx, dw, db = super().conv_backward(grad_out, x, w, b, **params)
        g = np.asarray(grad_out)
        return dx, dw, None if db is None else db / g.dtype.type(g.size // g.shape[1])


@mutant("weight-grad-last-sample", "conv", "convolve")
class WeightGradLastSample(Mutant):
    """dw keeps only the last batch chunk (one sample) instead of summing over the batch."""

    def conv_backward(self, grad_out, x, w, b=None, **params):
        dx, dw, db = super().conv_backward(grad_out, x, w, b, **params)
        _, dw1, _ = super().conv_backward(np.asarray(grad_out)[-1:], np.asarray(x)[-1:], w, b, **params)
        return dx, dw1, db


@mutant("input-grad-flipped-kernel", "conv", "convolve")
class InputGradFlippedKernel(Mutant):
    """dx is the transposed conv with the kernel flipped once too often."""

    def conv_backward(self, grad_out, x, w, b=None, **params):
        _, dw, db = super().conv_backward(grad_out, x, w, b, **params)
        dx, _, _ = super().conv_backward(grad_out, x, _flip(w), b, **params)
        return dx, dw, db


@mutant("convolve-unflipped", "convolve")
class ConvolveUnflipped(Mutant):
    """convolve computes cross-correlation (forgets to flip the kernel)."""

    def convolve(self, x, w, b=None, **params):
        return self.conv(x, w, b, **params)

    def convolve_backward(self, grad_out, x, w, b=None, **params):
        return self.conv_backward(grad_out, x, w, b, **params)


@mutant("convolve-dw-unflipped", "convolve")
class ConvolveWeightGradUnflipped(Mutant):
    """convolve's dw is returned in conv's orientation (not flipped back)."""

    def convolve_backward(self, grad_out, x, w, b=None, **params):
        return self.conv_backward(grad_out, x, _flip(w), b, **params)


# --------------------------------------------------------------------------- transposed convolution
@mutant("convT-flipped-kernel", "conv_transpose")
class ConvTransposeFlippedKernel(Mutant):
    """conv_transpose scatters with the kernel flipped (the adjoint of convolve, not of conv)."""

    def conv_transpose(self, y, w, b=None, **params):
        return super().conv_transpose(y, _flip(w), b, **params)

    def conv_transpose_backward(self, grad_out, y, w, b=None, **params):
        dy, dw, db = super().conv_transpose_backward(grad_out, y, _flip(w), b, **params)
        return dy, np.ascontiguousarray(_flip(dw)), db


@mutant("convT-same-ignores-stride", "conv_transpose")
class ConvTransposeSameIgnoresStride(Mutant):
    """conv_transpose 'same' crops d*(k-1) split as for stride 1 (and pads the size with output_padding)."""

    def _explicit(self, y, w, stride, padding, dilation, output_padding):
        if padding != "same":
            return padding, output_padding
        nd = _nd(y)
        s, d = _per_dim("stride", stride, nd), _per_dim("dilation", dilation, nd)
        pads = tuple((dd * (k - 1) // 2, dd * (k - 1) - dd * (k - 1) // 2) for k, dd in zip(np.shape(w)[2:], d))
        return pads, tuple(ss - 1 for ss in s)

    def conv_transpose(self, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        p, op = self._explicit(y, w, stride, padding, dilation, output_padding)
        return super().conv_transpose(
            y, w, b, stride=stride, padding=p, output_padding=op, dilation=dilation, groups=groups
        )

    def conv_transpose_backward(
        self, grad_out, y, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
    ):
        p, op = self._explicit(y, w, stride, padding, dilation, output_padding)
        return super().conv_transpose_backward(
            grad_out, y, w, b, stride=stride, padding=p, output_padding=op, dilation=dilation, groups=groups
        )


@mutant("convT-output-padding-at-start", "conv_transpose")
class ConvTransposeOutputPaddingAtStart(Mutant):
    """conv_transpose adds the output_padding rows at the begin of each dim instead of the end."""

    def conv_transpose(self, y, w, b=None, *, output_padding=0, **params):
        nd = _nd(y)
        op = _per_dim("output_padding", output_padding, nd, 0)
        out = super().conv_transpose(y, w, None, output_padding=0, **params)
        out = np.pad(out, ((0, 0), (0, 0)) + tuple((o, 0) for o in op))
        if b is not None:
            out = out + np.asarray(b, dtype=out.dtype).reshape((1, -1) + (1,) * nd)
        return out


@mutant("convT-bias-grad-first-sample", "conv_transpose")
class ConvTransposeBiasGradFirstSample(Mutant):
    """conv_transpose's db sums the first sample's gradient only (the batch sum forgotten)."""

    def conv_transpose_backward(self, grad_out, y, w, b=None, **params):
        dy, dw, db = super().conv_transpose_backward(grad_out, y, w, b, **params)
        g = np.asarray(grad_out)
        return dy, dw, None if db is None else g[0].sum(axis=tuple(range(1, g.ndim - 1)))


@mutant("convT-input-grad-convolve", "conv_transpose")
class ConvTransposeInputGradConvolve(Mutant):
    """conv_transpose's dy is a true convolution of the gradient (the kernel flipped) instead of conv."""

    def conv_transpose_backward(self, grad_out, y, w, b=None, **params):
        _, dw, db = super().conv_transpose_backward(grad_out, y, w, b, **params)
        dy, _, _ = super().conv_transpose_backward(grad_out, y, _flip(w), b, **params)
        return dy, dw, db


# ------------------------------------------------------------------------------------------ pooling
class _MaxPoolRule(Mutant):
    """Base: max-pool by an explicit window rule (ties, NaN, padding fill, gradient accumulation)."""

    ties_last = False
    nan = "first"  # "first", "last" or "ignore"
    accumulate = True

    def _pick(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        super().max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        x = np.asarray(x)
        geo = _pool_geo(x, kernel_size, stride, padding, dilation, ceil_mode)
        vals, flat, valid, _ = _windows(x, geo, -np.inf)
        isnan = np.isnan(vals) & valid
        v = np.where(isnan | ~valid, -np.inf, vals)
        j = _first((v == v.max(axis=-1, keepdims=True)) & valid, last=self.ties_last)
        if self.nan != "ignore":
            j = np.where(isnan.any(axis=-1), _first(isnan, last=self.nan == "last"), j)
        return _take(vals, j), _take(flat, j).astype(np.int64)

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        return self._pick(x, kernel_size, stride, padding, dilation, ceil_mode)[0]

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        return self._pick(x, kernel_size, stride, padding, dilation, ceil_mode)[1]

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        _, idx = self._pick(x, kernel_size, stride, padding, dilation, ceil_mode)
        g = np.asarray(grad_out).astype(np.asarray(x).dtype)
        return (_scatter(g, idx, np.shape(x), self.accumulate),)


@mutant("maxpool-ties-last", "max_pool")
class MaxPoolTiesLast(_MaxPoolRule):
    """max-pool ties go to the last maximum in window order (index and gradient)."""

    ties_last = True


@mutant("maxpool-last-nan", "max_pool")
class MaxPoolLastNan(_MaxPoolRule):
    """max-pool picks the last NaN of a window (PyTorch's `val > max || isnan(val)`)."""

    nan = "last"


@mutant("maxpool-ignores-nan", "max_pool")
class MaxPoolIgnoresNan(_MaxPoolRule):
    """max-pool skips NaN (fmax semantics): a window's maximum is its largest number."""

    nan = "ignore"


@mutant("maxpool-grad-overwrites", "max_pool")
class MaxPoolGradOverwrites(_MaxPoolRule):
    """max-pool backward writes each window's gradient (the last write wins) instead of adding."""

    accumulate = False


@mutant("maxpool-pads-zero", "max_pool")
class MaxPoolPadsZero(Mutant):
    """max-pool pads with 0 instead of -inf: a window over padding and negatives gives 0."""

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        y = super().max_pool(x, kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        geo = _pool_geo(x, kernel_size, stride, padding, dilation, ceil_mode)
        _, _, valid, inpad = _windows(x, geo, 0)
        has_pad = (inpad & ~valid).any(axis=-1)
        return np.where(has_pad & (y < 0), y.dtype.type(0), y)


@mutant("maxpool-default-stride-1", "max_pool")
class MaxPoolDefaultStrideOne(Mutant):
    """max-pool's default stride (None) is 1 instead of the kernel size."""

    def _s(self, stride):
        return 1 if stride is None else stride

    def max_pool(self, x, kernel_size, *, stride=None, **params):
        return super().max_pool(x, kernel_size, stride=self._s(stride), **params)

    def max_pool_indices(self, x, kernel_size, *, stride=None, **params):
        return super().max_pool_indices(x, kernel_size, stride=self._s(stride), **params)

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, **params):
        return super().max_pool_backward(grad_out, x, kernel_size, stride=self._s(stride), **params)


@mutant("maxpool-ceil-keeps-padding-window", "max_pool", "avg_pool")
class CeilKeepsPaddingWindow(Mutant):
    """ceil_mode keeps a last window that starts in the end padding (the drop rule forgotten)."""

    def _explicit(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        if not ceil_mode:
            return padding, ceil_mode
        geo = _pool_geo(x, kernel_size, stride, padding, dilation, False)
        pads = []
        for n, k, s, d, (b, e) in zip(geo.in_sizes, geo.kernel, geo.stride, geo.dilation, geo.pads):
            span = n + b + e - d * (k - 1) - 1
            out = -(-span // s) + 1
            pads.append((b, e + (out - 1) * s - span))
        return tuple(pads), False

    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        p, c = self._explicit(x, kernel_size, stride, padding, dilation, ceil_mode)
        return super().max_pool(x, kernel_size, stride=stride, padding=p, dilation=dilation, ceil_mode=c)

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        p, c = self._explicit(x, kernel_size, stride, padding, dilation, ceil_mode)
        return super().avg_pool(
            x,
            kernel_size,
            stride=stride,
            padding=p,
            dilation=dilation,
            ceil_mode=c,
            count_include_pad=count_include_pad,
        )


@mutant("pool-ignores-ceil-mode", "max_pool", "avg_pool")
class PoolIgnoresCeilMode(Mutant):
    """pooling ignores ceil_mode (always floors the output size)."""

    def max_pool(self, x, kernel_size, *, ceil_mode=False, **params):
        return super().max_pool(x, kernel_size, **params)

    def max_pool_indices(self, x, kernel_size, *, ceil_mode=False, **params):
        return super().max_pool_indices(x, kernel_size, **params)

    def avg_pool(self, x, kernel_size, *, ceil_mode=False, **params):
        return super().avg_pool(x, kernel_size, **params)


@mutant("maxpool-planes-blocked-by-8", "max_pool")
class MaxPoolPlanesBlocked(Mutant):
    """max-pool runs the N*C planes in blocks of 8 and leaves the tail planes of a partial block at 0."""

    def max_pool(self, x, kernel_size, **params):
        y = super().max_pool(x, kernel_size, **params).copy()
        flat = y.reshape((-1,) + y.shape[2:])
        if flat.shape[0] > 8:
            flat[flat.shape[0] // 8 * 8 :] = 0
        return flat.reshape(y.shape)


class _AvgPoolRule(Mutant):
    """Base: average pooling from the windows, with the divisor rule `divisor`."""

    def divisor(self, valid, inpad, include_pad):
        return (inpad if include_pad else valid).sum(axis=-1)

    def _parts(self, x, kernel_size, stride, padding, dilation, ceil_mode, cip):
        super().avg_pool(
            x,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
            count_include_pad=cip,
        )  # the NumPy backend's argument checks
        geo = _pool_geo(x, kernel_size, stride, padding, dilation, ceil_mode)
        vals, flat, valid, inpad = _windows(x, geo, 0)
        return vals, flat, valid, self.divisor(valid, inpad, bool(cip))

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        vals, _, _, div = self._parts(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
        return vals.sum(axis=-1) / div.astype(vals.dtype)

    def avg_pool_backward(
        self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False
    ):
        vals, flat, valid, div = self._parts(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
        g = np.asarray(grad_out).astype(vals.dtype) / div.astype(vals.dtype)
        n, c = np.shape(x)[:2]
        dx = np.zeros((n * c, int(np.prod(np.shape(x)[2:]))), dtype=vals.dtype)
        gg = g.reshape(n * c, -1)
        for t in range(flat.shape[-1]):
            on = valid[..., t].reshape(-1)
            cols = flat[..., t].reshape(-1)[on]
            np.add.at(dx, (np.repeat(np.arange(n * c), on.sum()), np.tile(cols, n * c)), gg[:, on].reshape(-1))
        return (dx.reshape(np.shape(x)),)


@mutant("avgpool-always-counts-padding", "avg_pool")
class AvgPoolAlwaysCountsPadding(_AvgPoolRule):
    """avg-pool divides by the window inside the padded input even with count_include_pad=False."""

    def divisor(self, valid, inpad, include_pad):
        return inpad.sum(axis=-1)


@mutant("avgpool-never-counts-padding", "avg_pool")
class AvgPoolNeverCountsPadding(_AvgPoolRule):
    """avg-pool divides by the real inputs of the window even with count_include_pad=True."""

    def divisor(self, valid, inpad, include_pad):
        return valid.sum(axis=-1)


@mutant("avgpool-counts-ceil-overhang", "avg_pool")
class AvgPoolCountsCeilOverhang(_AvgPoolRule):
    """avg-pool with count_include_pad divides by the whole kernel, the ceil_mode overhang included."""

    def divisor(self, valid, inpad, include_pad):
        return np.full(valid.shape[:-1], valid.shape[-1]) if include_pad else valid.sum(axis=-1)


@mutant("avgpool-grad-by-kernel-size", "avg_pool")
class AvgPoolGradByKernelSize(_AvgPoolRule):
    """avg-pool backward divides by the kernel size at the borders too (the forward is right)."""

    def avg_pool(self, x, kernel_size, **params):
        return Mutant.avg_pool(self, x, kernel_size, **params)

    def divisor(self, valid, inpad, include_pad):
        return np.full(valid.shape[:-1], valid.shape[-1])


@mutant("avgpool-nan-as-zero", "avg_pool")
class AvgPoolNanAsZero(Mutant):
    """avg-pool sums with NaN treated as 0 (a nan-skipping sum)."""

    def avg_pool(self, x, kernel_size, **params):
        return super().avg_pool(
            np.nan_to_num(np.asarray(x), nan=0.0, posinf=np.inf, neginf=-np.inf), kernel_size, **params
        )


@mutant("global-max-ignores-nan", "global_max_pool")
class GlobalMaxIgnoresNan(Mutant):
    """global max-pool skips NaN (nanmax), forward and backward."""

    def _arg(self, x):
        f = np.asarray(x).reshape(np.shape(x)[:2] + (-1,))
        allnan = np.isnan(f).all(axis=-1)
        return np.where(allnan, 0, np.nanargmax(np.where(np.isnan(f) & allnan[..., None], 0, f), axis=-1)), f

    def global_max_pool(self, x):
        arg, f = self._arg(x)
        return np.take_along_axis(f, arg[..., None], axis=-1)[..., 0]

    def global_max_pool_backward(self, grad_out, x):
        arg, f = self._arg(x)
        dx = np.zeros_like(f)
        np.put_along_axis(dx, arg[..., None], np.asarray(grad_out)[..., None], axis=-1)
        return (dx.reshape(np.shape(x)),)


@mutant("global-max-grad-to-every-tie", "global_max_pool")
class GlobalMaxGradToEveryTie(Mutant):
    """global max-pool backward gives the gradient to every element equal to the maximum."""

    def global_max_pool_backward(self, grad_out, x):
        x = np.asarray(x)
        y = self.global_max_pool(x).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
        g = np.asarray(grad_out).reshape(y.shape)
        return (np.where((x == y) | (np.isnan(x) & np.isnan(y)), g, 0 * g).astype(x.dtype),)


@mutant("global-avg-last-dim-only", "global_avg_pool")
class GlobalAvgLastDimOnly(Mutant):
    """global avg-pool divides the plane's sum by its last spatial size instead of its element count."""

    def global_avg_pool(self, x):
        x = np.asarray(x)
        return x.reshape(x.shape[:2] + (-1,)).sum(axis=-1) / x.dtype.type(x.shape[-1])


@mutant("global-avg-grad-undivided", "global_avg_pool")
class GlobalAvgGradUndivided(Mutant):
    """global avg-pool backward broadcasts the gradient without dividing by the plane size."""

    def global_avg_pool_backward(self, grad_out, x):
        x = np.asarray(x)
        g = np.asarray(grad_out).astype(x.dtype).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
        return (np.ascontiguousarray(np.broadcast_to(g, x.shape)),)


class _KmaxRule(Mutant):
    """Base: k-max pooling by an explicit ranking (`rank` returns the positions, best first)."""

    sorted_output = False

    def rank(self, x):
        nan = np.isnan(x)
        key = np.where(nan, 0, -x) + 0.0
        order = np.argsort(key, axis=-1, kind="stable")
        return np.take_along_axis(order, np.argsort(~np.take_along_axis(nan, order, -1), -1, kind="stable"), -1)

    def kmax_pool_indices(self, x, k):
        super().kmax_pool_indices(x, k)  # the NumPy backend's argument checks
        top = self.rank(np.asarray(x))[..., :k]
        return top if self.sorted_output else np.sort(top, axis=-1)

    def kmax_pool(self, x, k):
        return np.take_along_axis(np.asarray(x), self.kmax_pool_indices(x, k), axis=-1)

    def kmax_pool_backward(self, grad_out, x, k):
        dx = np.zeros(np.shape(x), dtype=np.asarray(x).dtype)
        np.put_along_axis(dx, self.kmax_pool_indices(x, k), np.asarray(grad_out), axis=-1)
        return (dx,)


@mutant("kmax-sorted-by-value", "kmax_pool")
class KmaxSortedByValue(_KmaxRule):
    """k-max keeps the k largest in descending value order instead of their original order."""

    sorted_output = True


@mutant("kmax-ties-last", "kmax_pool")
class KmaxTiesLast(_KmaxRule):
    """k-max ties go to the larger position."""

    def rank(self, x):
        n = x.shape[-1]
        return n - 1 - super().rank(x[..., ::-1])


@mutant("kmax-nan-last", "kmax_pool")
class KmaxNanLast(_KmaxRule):
    """k-max ranks NaN below every number (a plain descending sort) instead of above."""

    def rank(self, x):
        return np.argsort(np.where(np.isnan(x), np.inf, -x) + 0.0, axis=-1, kind="stable")


@mutant("kmax-signed-zeros", "kmax_pool")
class KmaxSignedZeros(_KmaxRule):
    """k-max ranks +0.0 above -0.0 (a radix sort on the bits) instead of treating them as a tie."""

    def rank(self, x):
        nan = np.isnan(x)
        key = np.where(nan, 0, -x)
        key = np.where((key == 0) & ~np.signbit(x), -np.finfo(x.dtype).smallest_subnormal, key)
        order = np.argsort(key, axis=-1, kind="stable")
        return np.take_along_axis(order, np.argsort(~np.take_along_axis(nan, order, -1), -1, kind="stable"), -1)


@mutant("kmax-grad-in-rank-order", "kmax_pool")
class KmaxGradInRankOrder(_KmaxRule):
    """k-max backward routes the gradients to the kept positions in rank order, not position order."""

    def kmax_pool_indices(self, x, k):
        return Mutant.kmax_pool_indices(self, x, k)

    def kmax_pool(self, x, k):
        return Mutant.kmax_pool(self, x, k)

    def kmax_pool_backward(self, grad_out, x, k):
        Mutant.kmax_pool_indices(self, x, k)
        dx = np.zeros(np.shape(x), dtype=np.asarray(x).dtype)
        np.put_along_axis(dx, self.rank(np.asarray(x))[..., :k], np.asarray(grad_out), axis=-1)
        return (dx,)


# ------------------------------------------------------------------------------------- activations
@mutant("relu-grad-one-at-zero", "relu")
class ReluGradOneAtZero(Mutant):
    """relu'(0) = 1 (x >= 0 instead of x > 0)."""

    def relu_backward(self, grad_out, x):
        g = np.asarray(grad_out)
        return (np.where(np.asarray(x) >= 0, g, 0 * g),)


@mutant("relu-nan-to-zero", "relu")
class ReluNanToZero(Mutant):
    """relu maps NaN to 0 (fmax) instead of propagating it."""

    def relu(self, x):
        return np.fmax(np.asarray(x), np.asarray(x).dtype.type(0))


@mutant("relu-as-product", "relu")
class ReluAsProduct(Mutant):
    """relu computed as x * (x > 0): -inf gives NaN (0 * inf)."""

    def relu(self, x):
        x = np.asarray(x)
        with np.errstate(invalid="ignore"):
            return x * (x > 0).astype(x.dtype)


@mutant("relu-tail-of-16", "relu")
class ReluTail(Mutant):
    """relu runs in blocks of 16 elements and copies the tail of a partial block unchanged."""

    def relu(self, x):
        x = np.asarray(x)
        y = super().relu(x).reshape(-1).copy()
        if y.size > 16 and y.size % 16:
            y[y.size // 16 * 16 :] = x.reshape(-1)[y.size // 16 * 16 :]
        return y.reshape(x.shape)


@mutant("sigmoid-textbook-backward", "sigmoid")
class SigmoidTextbookBackward(Mutant):
    """sigmoid backward as exp(-x) / (1 + exp(-x))^2: inf / inf = NaN where exp overflows."""

    def sigmoid_backward(self, grad_out, x):
        x = np.asarray(x)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(-x)
            return (np.asarray(grad_out) * (e / ((1 + e) * (1 + e))),)


@mutant("sigmoid-grad-from-input", "sigmoid")
class SigmoidGradFromInput(Mutant):
    """sigmoid backward applies s(1-s) to the input x instead of to sigmoid(x)."""

    def sigmoid_backward(self, grad_out, x):
        x = np.asarray(x)
        return (np.asarray(grad_out) * x * (1 - x),)


@mutant("sigmoid-in-float32", "sigmoid")
class SigmoidInFloat32(Mutant):
    """sigmoid evaluated in float32 whatever the input dtype."""

    def sigmoid(self, x):
        return super().sigmoid(_f32(x)).astype(np.asarray(x).dtype)


@mutant("tanh-textbook", "tanh")
class TanhTextbook(Mutant):
    """tanh as (exp(x) - exp(-x)) / (exp(x) + exp(-x)): inf / inf = NaN where exp overflows."""

    def tanh(self, x):
        x = np.asarray(x)
        with np.errstate(over="ignore", invalid="ignore"):
            return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))


@mutant("tanh-grad-from-input", "tanh")
class TanhGradFromInput(Mutant):
    """tanh backward as g * (1 - x^2) with the input x instead of tanh(x)."""

    def tanh_backward(self, grad_out, x):
        x = np.asarray(x)
        return (np.asarray(grad_out) * (1 - x * x),)


@mutant("tanh-grad-missing-square", "tanh")
class TanhGradMissingSquare(Mutant):
    """tanh backward as g * (1 - |t|) (the square forgotten)."""

    def tanh_backward(self, grad_out, x):
        t = np.tanh(np.asarray(x))
        return (np.asarray(grad_out) * (1 - np.abs(t)),)


# ------------------------------------------------------------------------------------ dense layers
@mutant("linear-weight-grad-mean", "linear")
class LinearWeightGradMean(Mutant):
    """linear's dw is averaged over the batch (divided by N) instead of summed."""

    def linear_backward(self, grad_out, x, w, b=None):
        dx, dw, db = super().linear_backward(grad_out, x, w, b)
        return dx, dw / dw.dtype.type(np.shape(x)[0]), db


@mutant("linear-features-blocked-by-8", "linear")
class LinearFeaturesBlocked(Mutant):
    """linear sums the features in blocks of 8 and drops the tail of a partial block."""

    def linear(self, x, w, b=None):
        x, w = np.asarray(x), np.asarray(w)
        m = x.shape[1] // 8 * 8 if x.shape[1] > 8 else x.shape[1]
        return super().linear(x[:, :m], w[:, :m], b)


@mutant("linear-weight-grad-transposed", "linear")
class LinearWeightGradTransposed(Mutant):
    """linear's dw is returned as x^T g, shaped (in, out), instead of g^T x."""

    def linear_backward(self, grad_out, x, w, b=None):
        dx, dw, db = super().linear_backward(grad_out, x, w, b)
        return dx, np.ascontiguousarray(np.asarray(x).T @ np.asarray(grad_out).astype(dw.dtype)), db


@mutant("linear-bias-grad-first-sample", "linear")
class LinearBiasGradFirstSample(Mutant):
    """linear's db is the first sample's gradient (the batch sum forgotten)."""

    def linear_backward(self, grad_out, x, w, b=None):
        dx, dw, db = super().linear_backward(grad_out, x, w, b)
        return dx, dw, None if db is None else np.asarray(grad_out)[0].astype(db.dtype).copy()


@mutant("flatten-column-major", "flatten")
class FlattenColumnMajor(Mutant):
    """flatten in column-major (Fortran) order, forward and backward."""

    def flatten(self, x):
        x = np.asarray(x)
        return np.ascontiguousarray(x.reshape(x.shape[0], -1, order="F"))

    def flatten_backward(self, grad_out, x):
        return (np.ascontiguousarray(np.asarray(grad_out).reshape(np.shape(x), order="F")),)


@mutant("add-grad-once", "add")
class AddGradOnce(Mutant):
    """add backward gives the gradient to x only (y gets zeros)."""

    def add_backward(self, grad_out, x, y):
        dx, dy = super().add_backward(grad_out, x, y)
        return dx, np.zeros_like(dy)


@mutant("add-in-float32", "add")
class AddInFloat32(Mutant):
    """add evaluated in float32 whatever the input dtype."""

    def add(self, x, y):
        return super().add(_f32(x), _f32(y)).astype(np.asarray(x).dtype)


# ------------------------------------------------------------------------------------------- losses
def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@mutant("softmax-unshifted", "softmax")
class SoftmaxUnshifted(Mutant):
    """softmax as exp(z) / sum exp(z) without subtracting the max: overflow gives inf / inf = NaN."""

    def softmax(self, z):
        z = np.asarray(z)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)


@mutant("softmax-channel-axis", "softmax")
class SoftmaxChannelAxis(Mutant):
    """softmax over axis 1 (the channels of an (N, C, ...) tensor) instead of the last axis."""

    def softmax(self, z):
        z = np.asarray(z)
        return _softmax(z, 1 if z.ndim > 1 else -1)

    def softmax_backward(self, grad_out, z):
        z = np.asarray(z)
        a = 1 if z.ndim > 1 else -1
        p, g = _softmax(z, a), np.asarray(grad_out)
        return (p * (g - (g * p).sum(axis=a, keepdims=True)),)


@mutant("softmax-grad-diagonal", "softmax")
class SoftmaxGradDiagonal(Mutant):
    """softmax backward keeps only the Jacobian's diagonal: g * p * (1 - p)."""

    def softmax_backward(self, grad_out, z):
        p = self.softmax(z)
        return (np.asarray(grad_out) * p * (1 - p),)


@mutant("xent-sum-not-mean", "cross_entropy")
class CrossEntropySum(Mutant):
    """cross-entropy sums over the batch instead of averaging, forward and backward."""

    def cross_entropy(self, logits, labels):
        return super().cross_entropy(logits, labels) * np.asarray(logits).dtype.type(np.shape(logits)[0])

    def cross_entropy_backward(self, grad_out, logits, labels):
        (dz,) = super().cross_entropy_backward(grad_out, logits, labels)
        return (dz * dz.dtype.type(np.shape(logits)[0]),)


@mutant("xent-log-of-softmax", "cross_entropy")
class CrossEntropyLogOfSoftmax(Mutant):
    """cross-entropy as -log(softmax(z)[label]): the probability underflows to 0 and the loss is inf."""

    def cross_entropy(self, logits, labels):
        z = np.asarray(logits)
        p = _softmax(z)
        with np.errstate(divide="ignore"):
            return -np.log(p[np.arange(z.shape[0]), np.asarray(labels)]).mean()


@mutant("xent-grad-unscaled", "cross_entropy")
class CrossEntropyGradUnscaled(Mutant):
    """cross-entropy backward ignores the incoming gradient (as if it were 1)."""

    def cross_entropy_backward(self, grad_out, logits, labels):
        return super().cross_entropy_backward(np.ones_like(np.asarray(grad_out)), logits, labels)


@mutant("xent-softmax-over-batch", "cross_entropy")
class CrossEntropySoftmaxOverBatch(Mutant):
    """cross-entropy normalises over the batch axis (softmax along axis 0) instead of the classes."""

    def cross_entropy(self, logits, labels):
        z = np.asarray(logits)
        m = z.max(axis=0, keepdims=True)
        lse = np.log(np.exp(z - m).sum(axis=0, keepdims=True)) + m
        picked = np.arange(z.shape[0]), np.asarray(labels)
        return (lse - z)[picked].mean()

    def cross_entropy_backward(self, grad_out, logits, labels):
        z = np.asarray(logits)
        p = _softmax(z, 0)
        p[np.arange(z.shape[0]), np.asarray(labels)] -= 1
        return (p * np.asarray(grad_out).reshape(()).astype(z.dtype) / z.dtype.type(z.shape[0]),)


@mutant("xent-grad-missing-mean", "cross_entropy")
class CrossEntropyGradMissingMean(Mutant):
    """cross-entropy backward forgets the 1/N of the mean (the forward is right)."""

    def cross_entropy_backward(self, grad_out, logits, labels):
        (dz,) = super().cross_entropy_backward(grad_out, logits, labels)
        return (dz * dz.dtype.type(np.shape(logits)[0]),)


# ------------------------------------------------------------- normalisation, dropout, concatenation
@mutant("batchnorm-unbiased-variance", "batch_norm")
class BatchNormUnbiased(Mutant):
    """batch_norm normalises with the unbiased variance m/(m-1) (the running-statistics formula)."""

    def batch_norm(self, x, gamma, beta, *, eps=1e-5):
        x = np.asarray(x)
        axes = (0,) + tuple(range(2, x.ndim))
        m = x.size // x.shape[1]
        var = x.var(axis=axes, keepdims=True) * (m / (m - 1) if m > 1 else 1.0)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(var + eps)
        return (np.asarray(gamma).reshape(shape) * y + np.asarray(beta).reshape(shape)).astype(x.dtype)


@mutant("batchnorm-grad-no-mean-terms", "batch_norm")
class BatchNormGradNoMeanTerms(Mutant):
    """batch_norm backward treats the batch statistics as constants: dx = gamma * g / sqrt(var + eps)."""

    def batch_norm_backward(self, grad_out, x, gamma, beta, *, eps=1e-5):
        _, dgamma, dbeta = super().batch_norm_backward(grad_out, x, gamma, beta, eps=eps)
        x = np.asarray(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        dx = np.asarray(gamma).reshape(shape) * np.asarray(grad_out) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
        return dx.astype(x.dtype), dgamma, dbeta


@mutant("batchnorm-inference-eps-outside-sqrt", "batch_norm_inference")
class BatchNormInferenceEpsOutside(Mutant):
    """batch_norm_inference divides by sqrt(var) + eps instead of sqrt(var + eps)."""

    def batch_norm_inference(self, x, gamma, beta, mean, var, *, eps=1e-5):
        x = np.asarray(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        r = lambda a: np.asarray(a).reshape(shape)  # noqa: E731
        return (r(gamma) * (x - r(mean)) / (np.sqrt(r(var)) + eps) + r(beta)).astype(x.dtype)


@mutant("batchnorm-inference-grad-ignores-gamma", "batch_norm_inference")
class BatchNormInferenceGradIgnoresGamma(Mutant):
    """batch_norm_inference backward leaves gamma out of dx: g / sqrt(var + eps)."""

    def batch_norm_inference_backward(self, grad_out, x, gamma, beta, mean, var, *, eps=1e-5):
        dx, dgamma, dbeta = super().batch_norm_inference_backward(grad_out, x, gamma, beta, mean, var, eps=eps)
        x = np.asarray(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (np.asarray(grad_out) / np.sqrt(np.asarray(var).reshape(shape) + eps)).astype(dx.dtype), dgamma, dbeta


@mutant("batchnorm-running-biased-variance", "batch_norm_running_stats")
class BatchNormRunningBiased(Mutant):
    """the running variance takes the biased batch variance (Keras, ONNX) instead of the unbiased one."""

    def batch_norm_running_stats(self, running_mean, running_var, x, *, momentum=0.1):
        new_mean, _ = super().batch_norm_running_stats(running_mean, running_var, x, momentum=momentum)
        x = np.asarray(x)
        var = x.var(axis=(0,) + tuple(range(2, x.ndim)))
        return new_mean, ((1 - momentum) * np.asarray(running_var) + momentum * var).astype(x.dtype)


@mutant("lrn-alpha-over-size", "local_response_norm")
class LrnAlphaOverSize(Mutant):
    """local_response_norm divides alpha by the window size (PyTorch's and Caffe's convention)."""

    def local_response_norm(self, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        return super().local_response_norm(x, size, alpha=alpha / size, beta=beta, k=k)

    def local_response_norm_backward(self, grad_out, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        return super().local_response_norm_backward(grad_out, x, size, alpha=alpha / size, beta=beta, k=k)


@mutant("lrn-even-window-after", "local_response_norm")
class LrnEvenWindowAfter(Mutant):
    """local_response_norm's even window has its extra channel after c (ONNX) instead of before."""

    def _lrn_base(self, x, size, alpha, k):
        t = x.dtype.type
        return t(k) + t(alpha) * self._channel_window_sum(x * x, (size - 1) // 2, size // 2)

    def local_response_norm_backward(self, grad_out, x, size, *, alpha=1e-4, beta=0.75, k=2.0):
        x = np.asarray(x)
        base = self._lrn_base(x, size, alpha, k)
        g = np.asarray(grad_out).astype(x.dtype)
        scaled = np.power(base, x.dtype.type(-beta))
        back = self._channel_window_sum(g * x * scaled / base, size // 2, (size - 1) // 2)
        return (g * scaled - x.dtype.type(2 * alpha * beta) * x * back,)


@mutant("dropout-unscaled", "dropout")
class DropoutUnscaled(Mutant):
    """dropout keeps values unscaled (no 1/(1-p): the non-inverted dropout of the original paper)."""

    def dropout(self, x, keep, *, p):
        return super().dropout(x, keep, p=0.0)

    def dropout_backward(self, grad_out, x, keep, *, p):
        return super().dropout_backward(grad_out, x, keep, p=0.0)


@mutant("dropout-scales-by-p", "dropout")
class DropoutScalesByKeepProbability(Mutant):
    """dropout backward multiplies by (1 - p) instead of dividing (the forward is right)."""

    def dropout_backward(self, grad_out, x, keep, *, p):
        (dx,) = super().dropout_backward(grad_out, x, keep, p=0.0)
        return (dx * dx.dtype.type(1 - p),)


@mutant("concat-channel-axis-always", "concat")
class ConcatChannelAxisAlways(Mutant):
    """concat always joins along axis 1 (the channels), whatever the axis."""

    def concat(self, xs, *, axis=1):
        return super().concat(xs, axis=1 if np.ndim(xs[0]) > 1 else 0)


@mutant("concat-grad-first-axis", "concat")
class ConcatGradFirstAxis(Mutant):
    """concat backward splits the gradient along axis 0 whatever the axis."""

    def concat_backward(self, grad_out, xs, *, axis=1):
        xs = [np.asarray(a) for a in xs]
        flat = np.asarray(grad_out).reshape(-1)
        out, start = [], 0
        for a in xs:
            out.append(flat[start : start + a.size].reshape(a.shape).copy())
            start += a.size
        return tuple(out)


# --------------------------------------------------------------- equivalent mutants (must pass)
def _nudge(a, units=12):
    """a moved `units` units of roundoff toward zero, relative to its value (a result off by a few ulps, within
    the transcendental bound of 16 u)."""
    a = np.asarray(a)
    return a - a * a.dtype.type(units * np.finfo(a.dtype).eps / 2)


@mutant("tanh-grad-from-own-forward", "tanh", kind=EQUIVALENT)
class TanhGradFromOwnForward(Mutant):
    """tanh 12 u toward zero, and its backward g*(1 - t*t) from that forward (as frameworks do)."""

    def tanh(self, x):
        return _nudge(super().tanh(x))

    def tanh_backward(self, grad_out, x):
        t = self.tanh(x)
        return (np.asarray(grad_out).astype(t.dtype) * (1 - t * t),)


@mutant("sigmoid-grad-from-own-forward", "sigmoid", kind=EQUIVALENT)
class SigmoidGradFromOwnForward(Mutant):
    """sigmoid 12 u toward zero, and its backward g*s*(1 - s) from that forward (as frameworks do)."""

    def sigmoid(self, x):
        return _nudge(super().sigmoid(x))

    def sigmoid_backward(self, grad_out, x):
        s = self.sigmoid(x)
        return (np.asarray(grad_out).astype(s.dtype) * s * (1 - s),)


@mutant("sigmoid-flushes-subnormals", "sigmoid", kind=EQUIVALENT)
class SigmoidFlushesSubnormals(Mutant):
    """sigmoid as the textbook 1 / (1 + exp(-x)): exp overflows to inf and results below tiny flush to 0."""

    def sigmoid(self, x):
        x = np.asarray(x)
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))


@mutant("avgpool-divide-first", "avg_pool", kind=EQUIVALENT)
class AvgPoolDivideFirst(_AvgPoolRule):
    """avg-pool sums x / D instead of dividing the sum by D (one rounding more per tap)."""

    def avg_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=False):
        vals, _, _, div = self._parts(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad)
        return (vals / div.astype(vals.dtype)[..., None]).sum(axis=-1)


@mutant("linear-reversed-summation", "linear", kind=EQUIVALENT)
class LinearReversedSummation(Mutant):
    """linear sums the features in reverse order (another summation order)."""

    def linear(self, x, w, b=None):
        x, w = np.asarray(x), np.asarray(w)
        return super().linear(x[:, ::-1].copy(), w[:, ::-1].copy(), b)


@mutant("conv-float64-accumulation", "conv", "convolve", kind=EQUIVALENT)
class ConvFloat64Accumulation(Mutant):
    """conv accumulates float32 inputs in float64 and rounds once (more accurate than asked)."""

    def conv(self, x, w, b=None, **params):
        dt = np.result_type(x, w)
        up = [None if a is None else np.asarray(a).astype(np.float64) for a in (x, w, b)]
        return super().conv(*up, **params).astype(dt)


@mutant("relu-keeps-negative-zero", "relu", kind=EQUIVALENT)
class ReluKeepsNegativeZero(Mutant):
    """relu as where(x < 0, 0, x): -0.0 stays -0.0 (the sign of a zero is not compared) and NaN propagates."""

    def relu(self, x):
        x = np.asarray(x)
        return np.where(x < 0, x.dtype.type(0), x)


@mutant("maxpool-grad-always-accumulates", "max_pool", kind=EQUIVALENT)
class MaxPoolGradAlwaysAccumulates(_MaxPoolRule):
    """max-pool by the window rule, backward by scatter-add even where windows do not overlap."""


@mutant("xent-mean-as-product", "cross_entropy", kind=EQUIVALENT)
class CrossEntropyMeanAsProduct(Mutant):
    """cross-entropy's mean as sum * (1/N) (one rounding more)."""

    def cross_entropy(self, logits, labels):
        z = np.asarray(logits)
        n = z.shape[0]
        return super().cross_entropy(z, labels) * z.dtype.type(n) * (z.dtype.type(1) / z.dtype.type(n))


# ------------------------------------------------------- error behaviour (killable once rejected cases run)
@mutant("add-broadcasts", "add", kind=ERROR)
class AddBroadcasts(Mutant):
    """add broadcasts operands of different shapes instead of raising ShapeError."""

    def add(self, x, y):
        return np.asarray(x) + np.asarray(y)

    def add_backward(self, grad_out, x, y):
        g = np.asarray(grad_out)
        return g.copy(), g.copy()


@mutant("conv-ignores-strict", "conv", kind=ERROR)
class ConvIgnoresStrict(Mutant):
    """conv floors an illegal stride under strict=True instead of raising ParameterError."""

    def conv(self, x, w, b=None, *, strict=False, **params):
        return super().conv(x, w, b, **params)

    def conv_backward(self, grad_out, x, w, b=None, *, strict=False, **params):
        return super().conv_backward(grad_out, x, w, b, **params)


@mutant("kmax-clamps-k", "kmax_pool", kind=ERROR)
class KmaxClampsK(Mutant):
    """k-max clamps k to the row length instead of raising ParameterError."""

    def _kmax(self, x, k):
        n = np.shape(x)[-1]
        return super()._kmax(x, min(max(int(k), 1), n) if isinstance(k, (int, np.integer)) else k)


@mutant("pool-accepts-padding-mode", "max_pool", kind=ERROR)
class PoolAcceptsPaddingMode(Mutant):
    """max-pool accepts a padding mode string (as no padding) instead of raising ParameterError."""

    def max_pool(self, x, kernel_size, *, padding=0, **params):
        return super().max_pool(x, kernel_size, padding=0 if isinstance(padding, str) else padding, **params)

    def max_pool_backward(self, grad_out, x, kernel_size, *, padding=0, **params):
        return super().max_pool_backward(
            grad_out, x, kernel_size, padding=0 if isinstance(padding, str) else padding, **params
        )

    def max_pool_indices(self, x, kernel_size, *, padding=0, **params):
        return super().max_pool_indices(x, kernel_size, padding=0 if isinstance(padding, str) else padding, **params)
