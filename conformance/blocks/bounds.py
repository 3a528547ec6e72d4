"""The error bound of a block: first-order error propagation through the composition, from each op's own bound.

SPEC.md, section "Blocks", is the derivation; this module is its code. For every value v of the block (the
reference's float64 composition gives the values, all evaluated at the reference's intermediate values):

    E[v] = own(op, inputs) + prop(op, inputs, E[inputs])                          forward
    G[v] = sum over the nodes n reading v of own_n,v + prop_g(n, G[out n]) + prop_x(n, E[inputs of n])
           (+ the rounding of the `add` that sums them)                            backward

- own: the op's own bound at the reference's inputs (and incoming gradient): tolerance.bounds of the op, the
  bound the op is held to on its own.
- prop: the propagated input error through a magnitude model: conv and linear applied to the errors and the
  other factor's magnitudes; relu, max-pool, k-max, flatten, concat, add, dropout: non-expansive (the error
  of the selected or kept elements); tanh, softmax, batch norm, LRN: their derivatives' magnitudes.
- Block inputs are exact (E = 0: the backend and the reference receive the same numbers); so is grad_out.
- Terms quadratic in the errors are dropped (they are O(u^2) relative).

Selections must be well conditioned for the bound to hold: a relu input farther from 0 than its error, a
max-pool window's winner ahead of every other element by more than their errors, k-max's kept values above
the others by more than their errors (or the values involved exact). A case where this fails raises
IllConditioned (a SpecError: the case is invalid); the block strategies do not draw such cases.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convspec import SpecError
from convspec import reference as R

from .. import tolerance
from . import model as M


class IllConditioned(SpecError, ValueError):
    """A block case whose selections (relu signs, max-pool winners, k-max sets) are not determined within the
    error bound: a correct backend may select differently, so no bound covers it."""


def _gam(n, dtype) -> float:
    return tolerance.gamma(n, dtype) + tolerance.gamma(n, np.float64)


def _z(a):
    return np.zeros(np.shape(a))


def _any(e) -> bool:
    return e is not None and bool(np.any(e))


# ------------------------------------------------------------------------------------- op own bounds


def _own(n, ins, kw, extra, g, dtype, pr):
    """(forward bound, [bound of each input's gradient, in the order of n["in"]]) of node n's own rounding:
    tolerance.bounds of its op at the reference's inputs and incoming gradient."""
    op = n["op"]
    if op in ("conv", "linear") and len(ins) == 2:
        args = list(ins) + [None]
    elif op == "concat":
        args = [list(ins)]
    else:
        args = list(ins) + list(extra)
    fwd, grads = tolerance.bounds(op, args, kw, g, dtype, pr)
    return fwd, list(grads)[: len(ins)]


def _bn_parts(x, gamma, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    mu = x.mean(axis=axes, keepdims=True)
    d = x - mu
    var = (d * d).mean(axis=axes, keepdims=True)
    s = np.sqrt(var + eps)
    return axes, shape, m, mu, d, var, s, d / s, np.abs(gamma).reshape(shape)


def _wsum(v, before, after):
    """out[:, c] = sum of v[:, j] for c - before <= j <= c + after (clipped to the channels)."""
    C = v.shape[1]
    pad = np.zeros((v.shape[0], C + before + after) + v.shape[2:])
    pad[:, before : before + C] = v
    return sum(pad[:, o : o + C] for o in range(before + after + 1))


def _lrn_parts(x, kw):
    size, alpha, beta, k = kw["size"], kw.get("alpha", 1e-4), kw.get("beta", 0.75), kw.get("k", 2.0)

    def fw(v):  # the window W(c)
        return _wsum(v, size // 2, (size - 1) // 2)

    def bw(v):  # its mirror {c : i in W(c)}
        return _wsum(v, (size - 1) // 2, size // 2)

    D = k + alpha * fw(x * x)
    return alpha, beta, D, fw, bw


# ------------------------------------------------------------------------------------- propagation


def _prop_forward(n, ins, E, kw, extra, y):
    """The error of node n's output from its inputs' errors E (first order)."""
    op = n["op"]
    if op in ("conv", "linear"):
        f = getattr(R, op)
        x, w = ins[0], ins[1]
        b_err = E[2] if len(ins) > 2 else None
        out = f(E[0], np.abs(w), b_err, **kw)
        if _any(E[1]):
            out = out + f(np.abs(x), E[1], None, **kw)
        return out
    if op == "relu":
        return np.where(ins[0] > 0, E[0], 0.0)
    if op == "max_pool":
        return R.max_pool(E[0], **kw)
    if op == "kmax_pool":
        return np.take_along_axis(E[0], R.kmax_pool_indices(ins[0], kw["k"]), axis=-1)
    if op == "add":
        return E[0] + E[1]
    if op == "concat":
        return R.concat(list(E), **kw)
    if op == "flatten":
        return R.flatten(E[0])
    if op == "dropout":
        return R.dropout(E[0], extra[0], **kw)
    if op == "tanh":
        t = np.tanh(ins[0])
        return np.minimum(1.0, 1 - t * t + E[0]) * E[0]
    if op == "softmax":
        p = R.softmax(ins[0])
        return p * (E[0] + (p * E[0]).sum(axis=-1, keepdims=True))
    if op == "batch_norm":
        axes, shape, _, _, d, var, s, xh, ag = _bn_parts(ins[0], ins[1], kw.get("eps", 1e-5))
        h = _bn_h(E[0], axes, d, var, s, xh, kw.get("eps", 1e-5))
        return ag * h + np.abs(xh) * E[1].reshape(shape) + E[2].reshape(shape)
    if op == "local_response_norm":
        alpha, beta, D, fw, _ = _lrn_parts(ins[0], kw)
        return E[0] * D**-beta + 2 * alpha * abs(beta) * np.abs(ins[0]) * D ** (-beta - 1) * fw(np.abs(ins[0]) * E[0])
    raise NotImplementedError(f"no propagation rule for op {op!r} in a block")


def _bn_h(e, axes, d, var, s, xh, eps):
    """The error of xhat = (x - mu) / s from an error e of x (first order): (e + mean e) / s + |xhat| dvar/(2 s^2),
    dvar <= 2 mean(|x - mu| e)."""
    ebar = e.mean(axis=axes, keepdims=True)
    dv = 2 * (np.abs(d) * e).mean(axis=axes, keepdims=True)
    return (e + ebar) / s + np.abs(xh) * dv / (2 * (var + eps))


def _prop_backward(n, ins, E, g, G, kw, extra):
    """The errors of node n's input gradients from the error G of its output gradient and the errors E of its
    inputs (first order), in the order of n["in"]."""
    op = n["op"]
    if op in ("conv", "linear"):
        bwd = getattr(R, op + "_backward")
        x, w = ins[0], ins[1]
        b = np.abs(ins[2]) if len(ins) > 2 else None
        out = list(bwd(G, np.abs(x), np.abs(w), b, **kw))[: len(ins)]
        if _any(E[0]):
            out[1] = out[1] + bwd(np.abs(g), E[0], np.abs(w), None, **kw)[1]
        if _any(E[1]):
            out[0] = out[0] + bwd(np.abs(g), np.abs(x), E[1], None, **kw)[0]
        return out
    if op == "relu":
        return [np.where(ins[0] > 0, G, 0.0)]
    if op == "max_pool":
        return list(R.max_pool_backward(G, ins[0], **kw))
    if op == "kmax_pool":
        return list(R.kmax_pool_backward(G, ins[0], kw["k"]))
    if op == "add":
        return [G, G]
    if op == "concat":
        return list(R.concat_backward(G, list(ins), **kw))
    if op == "flatten":
        return list(R.flatten_backward(G, ins[0]))
    if op == "dropout":
        return list(R.dropout_backward(G, ins[0], extra[0], **kw))
    if op == "tanh":
        t = np.tanh(ins[0])
        return [(1 - t * t) * G + np.abs(g) * (2 * np.abs(t) * (1 - t * t) + E[0]) * E[0]]
    if op == "softmax":
        p = R.softmax(ins[0])
        ep = _prop_forward(n, ins, E, kw, extra, p)
        r = g - (g * p).sum(axis=-1, keepdims=True)
        return [ep * np.abs(r) + p * (G + (np.abs(g) * ep + p * G).sum(axis=-1, keepdims=True))]
    if op == "batch_norm":
        eps = kw.get("eps", 1e-5)
        axes, shape, m, _, d, var, s, xh, ag = _bn_parts(ins[0], ins[1], eps)
        ax = np.abs(xh)
        e_dbeta = G.sum(axis=axes, keepdims=True)
        e_dgamma = (G * ax).sum(axis=axes, keepdims=True)
        e_dx = ag / s * (G + G.mean(axis=axes, keepdims=True) + ax * (G * ax).mean(axis=axes, keepdims=True))
        if _any(E[0]):
            h = _bn_h(E[0], axes, d, var, s, xh, eps)
            rs = (np.abs(d) * E[0]).mean(axis=axes, keepdims=True) / (var + eps)
            dx, dgamma, _ = R.batch_norm_backward(g, *ins, **kw)
            gh = (np.abs(g) * h).sum(axis=axes, keepdims=True)
            e_dgamma = e_dgamma + gh
            e_dx = e_dx + np.abs(dx) * rs + ag / s * (h * np.abs(dgamma).reshape(shape) / m + ax * gh / m)
        if _any(E[1]):
            e_dx = e_dx + E[1].reshape(shape) / s * np.abs(
                g - g.mean(axis=axes, keepdims=True) - xh * (g * xh).mean(axis=axes, keepdims=True)
            )
        return [e_dx, e_dgamma.reshape(-1), e_dbeta.reshape(-1)]
    if op == "local_response_norm":
        x = ins[0]
        alpha, beta, D, fw, bw = _lrn_parts(x, kw)
        ab, ax, ag = abs(beta), np.abs(x), np.abs(g)
        out = G * D**-beta + 2 * alpha * ab * ax * bw(G * ax * D ** (-beta - 1))
        if _any(E[0]):
            dD = 2 * alpha * fw(ax * E[0])
            out = (
                out
                + ag * ab * D ** (-beta - 1) * dD
                + 2
                * alpha
                * ab
                * (
                    E[0] * bw(ag * ax * D ** (-beta - 1))
                    + ax * bw(ag * E[0] * D ** (-beta - 1) + ag * ax * abs(beta + 1) * D ** (-beta - 2) * dD)
                )
            )
        return [out]
    raise NotImplementedError(f"no propagation rule for op {op!r} in a block")


# ------------------------------------------------------------------------------------- conditioning


def _pool_windows(a, kw, fill):
    """The max-pool windows of a (N, C, *spatial) as (..., window) with the padding filled with `fill`."""
    nd = a.ndim - 2
    k = np.broadcast_to(kw["kernel_size"], (nd,))
    s = np.broadcast_to(kw.get("stride") or kw["kernel_size"], (nd,))
    p = np.broadcast_to(kw.get("padding", 0), (nd,))
    if np.any(np.asarray(kw.get("dilation", 1)) != 1) or kw.get("ceil_mode"):
        raise NotImplementedError("conditioning check: dilation 1 and floor mode only")
    a = np.pad(a, [(0, 0), (0, 0)] + [(int(q), int(q)) for q in p], constant_values=fill)
    w = sliding_window_view(a, tuple(int(q) for q in k), axis=tuple(range(2, a.ndim)))
    w = w[(slice(None), slice(None)) + tuple(slice(None, None, int(q)) for q in s)]
    return w.reshape(w.shape[: a.ndim] + (-1,))


def _check(n, ins, E, kw):
    op = n["op"]
    if op == "relu":
        bad = (E[0] > 0) & (np.abs(ins[0]) <= E[0])
        if bad.any():
            raise IllConditioned(
                n["in"][0],
                f"relu input: {int(bad.sum())} value(s) within their error bound of 0 "
                "(the sign, hence relu's output and gradient routing, is not determined)",
            )
    elif op == "max_pool":
        v, e = _pool_windows(ins[0], kw, -np.inf), _pool_windows(E[0], kw, 0.0)
        w = np.argmax(v, axis=-1)[..., None]
        vw, ew = np.take_along_axis(v, w, -1), np.take_along_axis(e, w, -1)
        other = np.arange(v.shape[-1]) != w
        close = other & (vw - v <= ew + e) & ((ew > 0) | (e > 0))
        if close.any():
            raise IllConditioned(
                n["in"][0],
                "max_pool input: a window's maximum is within the error bound of another "
                "element (the winner, hence the gradient routing, is not determined)",
            )
    elif op == "kmax_pool":
        x, e, k = ins[0], E[0], kw["k"]
        if k < x.shape[-1]:
            idx = R.kmax_pool_indices(x, k)
            kept = np.zeros(x.shape, dtype=bool)
            np.put_along_axis(kept, idx, True, axis=-1)
            low = np.where(kept, x - e, np.inf).min(axis=-1)
            high = np.where(kept, -np.inf, x + e).max(axis=-1)
            inexact = (e > 0).any(axis=-1)
            if (inexact & (low <= high)).any():
                raise IllConditioned(
                    n["in"][0],
                    "kmax_pool input: a kept value is within the error bounds of a "
                    "dropped one (the kept set is not determined)",
                )


# ------------------------------------------------------------------------------------- the block bound


def block_bounds(block: M.Block, inputs: list, params: dict, g, dtype: str, pr: float = 0.0):
    """(forward bound, [bound of each array's gradient]) of `block` for float64 inputs and grad_out g."""
    arrays = dict(zip(block.arrays, inputs))
    _, trace = M.forward(M.REFERENCE, block, arrays, params)
    grads = M.backward(M.REFERENCE, block, trace, g)
    vals = trace.values
    E = {name: _z(a) for name, a in arrays.items()}
    own_grads = []
    for n, kw, extra in zip(block.nodes, trace.kws, trace.extras):
        ins = [vals[i] for i in n["in"]]
        fwd, gb = _own(n, ins, kw, extra, grads[n["out"]], dtype, pr)
        Ein = [E[i] for i in n["in"]]
        _check(n, ins, Ein, kw)
        E[n["out"]] = fwd + _prop_forward(n, ins, Ein, kw, extra, vals[n["out"]])
        own_grads.append(gb)
    G = {block.output: _z(g)}
    partial = {}  # the reference's running sum of each value's gradient, as the composer adds them
    for n, kw, extra, gb in zip(
        reversed(block.nodes), reversed(trace.kws), reversed(trace.extras), reversed(own_grads)
    ):
        ins = [vals[i] for i in n["in"]]
        prop = _prop_backward(n, ins, [E[i] for i in n["in"]], grads[n["out"]], G[n["out"]], kw, extra)
        parts = M._apply_backward(M.REFERENCE, n, grads[n["out"]], ins, kw, extra)
        for name, own, pg, val, gi in zip(n["in"], gb, prop, ins, parts):
            e = np.broadcast_to(own + pg, np.shape(val)) + 0.0
            if name in G:  # the composer adds this gradient to the earlier ones: charge that add
                e = G[name] + e + _gam(1, dtype) * (np.abs(partial[name]) + np.abs(gi))
                gi = partial[name] + gi
            G[name], partial[name] = e, gi
    return E[block.output], [G[name] for name in block.arrays]


def error_model(block: M.Block):
    """The registry error model of `block`: (float64 inputs, params, g, dtype, pr) -> bounds."""

    def model(inputs, params, g, dtype, pr=0.0):
        return block_bounds(block, inputs, params, g, dtype, pr)

    return model
