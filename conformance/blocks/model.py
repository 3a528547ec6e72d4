"""Network blocks as data, and one composer that runs a block on any object with the spec's op methods.

A block is a small graph of spec ops (a `Block`): its input `x`, its parameter arrays (named), and nodes in
evaluation order. A node is a dict, like a LeNet-5 layer:

    {"op": "conv", "in": ("x", "w1", "b1"), "out": "h1", "out_channels": 4, "kernel_size": 3, "padding": 1}

- "op" names the spec op; "in" names its inputs (the block input, a parameter, or an earlier node's "out");
  a conv or linear without a bias simply has two inputs; concat takes all of its "in" as its list `xs`.
- "out_channels" / "kernel_size" (conv) and "out_features" (linear) size the node's weights (kernel_size
  is not passed to conv); every other key is passed to the op as a keyword parameter.
- "keep" (dropout): the name of the block parameter holding the seed of the explicit keep mask, drawn
  from Bernoulli(1 - p) by `keep_mask` (the same mask for the reference and every backend).
- "dynamic_k" (kmax_pool): {"layer", "n_layers", "k_top"}; k = dynamic_k(layer, n_layers, s, k_top)
  with s the block input's length (the sentence length), as in Kalchbrenner et al. (2014).

`forward` and `backward` call only the ops object's methods (<op> and <op>_backward), on its own arrays:
the backward is the chain rule, node by node in reverse, and where a value feeds several nodes (a skip
connection, Inception's four branches) its gradients are summed with the object's `add`. The reference
composition is the same composer over convspec.reference (`REFERENCE`). A backend's arrays cross
`from_numpy` / `to_numpy` only for the block's inputs, outputs and the dropout mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convspec import reference as R

from ..lenet.train import ReferenceBackend

#: node keys that are not keyword parameters of the op
_STRUCT = ("op", "in", "out", "out_channels", "out_features", "keep", "dynamic_k")
#: ops whose every input is differentiable (the others: their first input only)
_MULTI = ("conv", "linear", "batch_norm", "add", "concat")

REFERENCE = ReferenceBackend()


def node(op: str, *inputs: str, out: str, **kw) -> dict:
    return {"op": op, "in": tuple(inputs), "out": out, **kw}


@dataclass(frozen=True)
class Block:
    name: str  # the registry op name
    title: str
    params: tuple  # the parameter arrays' names, in the op's argument order (after the input)
    nodes: tuple
    output: str
    source: str = ""  # provenance: the lecture and the paper
    input: str = "x"
    data_params: tuple = field(default=())  # case parameters that are not arrays (the dropout mask seed)

    @property
    def arrays(self) -> tuple:
        return (self.input,) + tuple(self.params)

    def ops(self) -> tuple:
        return tuple(dict.fromkeys(n["op"] for n in self.nodes))

    def fan_out(self) -> bool:
        uses = [name for n in self.nodes for name in n["in"]]
        return len(uses) != len(set(uses))

    def requires(self) -> tuple:
        """The op methods a backend needs to run this block, forward and backward."""
        ops = self.ops() + (("add",) if self.fan_out() else ())
        return tuple(dict.fromkeys(m for op in ops for m in (op, op + "_backward")))


def op_params(n: dict) -> dict:
    """The keyword parameters the node passes to its op (conv's kernel_size sizes the weight only)."""
    skip = _STRUCT + (("kernel_size",) if n["op"] == "conv" else ())
    return {k: v for k, v in n.items() if k not in skip}


def keep_mask(shape, p: float, seed: int, dtype="float64") -> np.ndarray:
    """The explicit dropout keep mask: 1 with probability 1 - p, from `seed`."""
    return (np.random.default_rng(seed).random(tuple(shape)) >= p).astype(dtype)


@dataclass
class Trace:
    """What the backward needs from a forward: every value, and each node's resolved keyword parameters and
    extra inputs (the dropout mask)."""

    values: dict
    kws: list
    extras: list


def _resolve(block: Block, n: dict, vals: dict, params: dict, ops, dtype):
    """(keyword parameters, extra positional inputs) of node n for this forward."""
    kw = op_params(n)
    extra = ()
    if "dynamic_k" in n:
        d = n["dynamic_k"]
        length = int(np.shape(vals[block.input])[-1])
        kw["k"] = R.dynamic_k(d["layer"], d["n_layers"], length, d["k_top"])
    if n["op"] == "dropout":
        shape = np.shape(vals[n["in"][0]])
        extra = (ops.from_numpy(keep_mask(shape, kw["p"], params[n["keep"]], dtype)),)
    return kw, extra


def _apply(ops, n: dict, args: list, kw: dict, extra: tuple):
    op = n["op"]
    if op == "concat":
        return ops.concat(list(args), **kw)
    if op in ("conv", "linear") and len(args) == 2:
        args = list(args) + [None]
    return getattr(ops, op)(*args, *extra, **kw)


def _apply_backward(ops, n: dict, g, args: list, kw: dict, extra: tuple) -> tuple:
    """The gradients of node n's inputs, in the order of n["in"]."""
    op = n["op"]
    if op == "concat":
        return tuple(ops.concat_backward(g, list(args), **kw))
    if op in ("conv", "linear") and len(args) == 2:
        return tuple(getattr(ops, op + "_backward")(g, *args, None, **kw))[:2]
    grads = tuple(getattr(ops, op + "_backward")(g, *args, *extra, **kw))
    return grads if op in _MULTI else grads[:1]


def forward(ops, block: Block, arrays: dict, params: dict | None = None, dtype=None):
    """(output, Trace) of `block` on `ops` (a backend or REFERENCE), for arrays {name: ops array}.
    dtype: the numpy dtype of the dropout mask (default: float64)."""
    params = params or {}
    vals = dict(arrays)
    kws, extras = [], []
    for n in block.nodes:
        kw, extra = _resolve(block, n, vals, params, ops, dtype or "float64")
        vals[n["out"]] = _apply(ops, n, [vals[i] for i in n["in"]], kw, extra)
        kws.append(kw)
        extras.append(extra)
    return vals[block.output], Trace(vals, kws, extras)


def backward(ops, block: Block, trace: Trace, grad_out) -> dict:
    """{value name: gradient} for every value of the block (its input, parameters and intermediates), by the
    chain rule through each node's <op>_backward, last node first. A value used by several nodes gets the sum
    of their gradients, added with ops.add in reverse node order."""
    grads = {block.output: grad_out}
    for n, kw, extra in zip(reversed(block.nodes), reversed(trace.kws), reversed(trace.extras)):
        g = grads[n["out"]]
        args = [trace.values[i] for i in n["in"]]
        for name, gi in zip(n["in"], _apply_backward(ops, n, g, args, kw, extra)):
            if gi is None:
                continue
            grads[name] = gi if name not in grads else ops.add(grads[name], gi)
    return grads


def _mask_dtype(backend, x):
    return np.asarray(backend.to_numpy(x)).dtype


def composer(block: Block):
    """(compose, compose_backward) of `block` for the registry: compose(backend, *arrays, **params) -> output;
    compose_backward(backend, grad_out, *arrays, **params) -> one gradient per array, in block.arrays order."""

    def compose(backend, *arrays, **params):
        y, _ = forward(backend, block, dict(zip(block.arrays, arrays)), params, _mask_dtype(backend, arrays[0]))
        return y

    def compose_backward(backend, grad_out, *arrays, **params):
        _, trace = forward(backend, block, dict(zip(block.arrays, arrays)), params, _mask_dtype(backend, arrays[0]))
        grads = backward(backend, block, trace, grad_out)
        return tuple(grads[name] for name in block.arrays)

    compose.__name__ = block.name
    compose_backward.__name__ = block.name + "_backward"
    return compose, compose_backward


def reference(block: Block):
    """(forward, backward) of `block` composed from convspec.reference, on float64 NumPy arrays: the
    registry's reference functions of the block op."""
    compose, compose_backward = composer(block)

    def fwd(*arrays, **params):
        return compose(REFERENCE, *arrays, **params)

    def bwd(grad_out, *arrays, **params):
        return compose_backward(REFERENCE, grad_out, *arrays, **params)

    fwd.__name__, bwd.__name__ = block.name, block.name + "_backward"
    return fwd, bwd


# ----------------------------------------------------------------------------------------- shapes


def param_shapes(block: Block, x_shape, params: dict | None = None) -> dict:
    """{parameter name: shape} for an input of shape x_shape, found by running the reference on zeros."""
    vals = {block.input: np.zeros(tuple(x_shape))}
    shapes = {}
    params = params or {}
    for n in block.nodes:
        op, ins = n["op"], n["in"]
        x = vals[ins[0]]
        if op == "conv":
            k = n["kernel_size"]
            k = (k,) * (x.ndim - 2) if isinstance(k, int) else tuple(k)
            groups = n.get("groups", 1)
            shapes[ins[1]] = (n["out_channels"], x.shape[1] // groups) + k
            if len(ins) > 2:
                shapes[ins[2]] = (n["out_channels"],)
        elif op == "linear":
            shapes[ins[1]] = (n["out_features"], x.shape[1])
            if len(ins) > 2:
                shapes[ins[2]] = (n["out_features"],)
        elif op == "batch_norm":
            shapes[ins[1]] = shapes[ins[2]] = (x.shape[1],)
        for name in ins:
            if name not in vals:
                vals[name] = np.zeros(shapes[name])
        kw, extra = _resolve(block, n, vals, params or {"keep_seed": 0}, REFERENCE, "float64")
        vals[n["out"]] = _apply(REFERENCE, n, [vals[i] for i in ins], kw, extra)
    return {name: shapes[name] for name in block.params}


# ----------------------------------------------------------------------------------------- the blocks


def _conv(x, w, b, out, c, k, **kw):
    ins = (x, w) if b is None else (x, w, b)
    return node("conv", *ins, out=out, out_channels=c, kernel_size=k, **kw)


VGG = Block(
    name="block_vgg",
    title="VGG block: conv3x3-relu-conv3x3-relu-maxpool2",
    source="seed 001 'VGGNet (2014)'; Simonyan & Zisserman 2015, Table 1 (3x3 convs, pad 1, then 2x2/2 max-pool)",
    params=("w1", "b1", "w2", "b2"),
    nodes=(
        _conv("x", "w1", "b1", "c1", 4, 3, padding=1),
        node("relu", "c1", out="a1"),
        _conv("a1", "w2", "b2", "c2", 4, 3, padding=1),
        node("relu", "c2", out="a2"),
        node("max_pool", "a2", out="y", kernel_size=2, stride=2),
    ),
    output="y",
)


def _basic(prefix: str, x: str, out: str, c: int, stride: int, projection: bool) -> tuple:
    """A ResNet basic block (He et al. 2016, Fig. 2 and 5 left): conv3x3(stride)-BN-relu-conv3x3-BN, plus the
    shortcut (identity, or option B's 1x1 projection conv with stride, followed by BN as in the reference
    implementations), added, then relu. Convs have no bias (BN's beta is the shift)."""
    p = prefix
    nodes = [
        _conv(x, p + "w1", None, p + "c1", c, 3, stride=stride, padding=1),
        node("batch_norm", p + "c1", p + "g1", p + "be1", out=p + "n1"),
        node("relu", p + "n1", out=p + "a1"),
        _conv(p + "a1", p + "w2", None, p + "c2", c, 3, padding=1),
        node("batch_norm", p + "c2", p + "g2", p + "be2", out=p + "n2"),
    ]
    skip = x
    if projection:
        nodes += [
            _conv(x, p + "ws", None, p + "cs", c, 1, stride=stride),
            node("batch_norm", p + "cs", p + "gs", p + "bes", out=p + "ns"),
        ]
        skip = p + "ns"
    nodes += [node("add", p + "n2", skip, out=p + "s"), node("relu", p + "s", out=out)]
    return tuple(nodes)


_BASIC_PARAMS = ("w1", "g1", "be1", "w2", "g2", "be2")

RESNET = Block(
    name="block_resnet",
    title="ResNet basic block, identity shortcut, batch norm (training mode)",
    source="seeds 001 'ResNet', 003 'ResNet (2015)'; He et al. 2016, Fig. 2 (basic block), Ioffe & Szegedy 2015 "
    "(BN after each conv)",
    params=_BASIC_PARAMS,
    nodes=_basic("", "x", "y", 4, 1, False),
    output="y",
)

RESNET_PROJ = Block(
    name="block_resnet_proj",
    title="ResNet basic block, stride 2 with a 1x1 projection shortcut",
    source="seed 001 'Residual Learning with Dimension Reduction'; He et al. 2016, section 3.3 option B "
    "(1x1 projection shortcut, stride 2, more channels)",
    params=_BASIC_PARAMS + ("ws", "gs", "bes"),
    nodes=_basic("", "x", "y", 6, 2, True),
    output="y",
)

INCEPTION = Block(
    name="block_inception",
    title="Inception module: 1x1, 1x1-3x3, 1x1-5x5, 3x3 maxpool-1x1, concatenated",
    source="seed 001 'Inception Module with Dimension Reduction'; Szegedy et al. 2015, Fig. 2(b) (every conv, "
    "reductions included, has a relu)",
    params=("w1", "b1", "w2r", "b2r", "w2", "b2", "w3r", "b3r", "w3", "b3", "w4", "b4"),
    nodes=(
        _conv("x", "w1", "b1", "c1", 2, 1),
        node("relu", "c1", out="y1"),
        _conv("x", "w2r", "b2r", "c2r", 2, 1),
        node("relu", "c2r", out="a2r"),
        _conv("a2r", "w2", "b2", "c2", 3, 3, padding=1),
        node("relu", "c2", out="y2"),
        _conv("x", "w3r", "b3r", "c3r", 1, 1),
        node("relu", "c3r", out="a3r"),
        _conv("a3r", "w3", "b3", "c3", 2, 5, padding=2),
        node("relu", "c3", out="y3"),
        node("max_pool", "x", out="p4", kernel_size=3, stride=1, padding=1),
        _conv("p4", "w4", "b4", "c4", 2, 1),
        node("relu", "c4", out="y4"),
        node("concat", "y1", "y2", "y3", "y4", out="y", axis=1),
    ),
    output="y",
)

ALEXNET = Block(
    name="block_alexnet",
    title="AlexNet stage: conv-relu-LRN-maxpool 3/2, flatten, dropout (explicit mask), dense",
    source="seed 001 'AlexNet (2012)'; Krizhevsky et al. 2012, sections 3.3 (LRN n=5, k=2, alpha=1e-4, "
    "beta=0.75), 3.4 (overlapping pooling z=3, s=2), 4.2 (dropout 0.5 before the dense layers)",
    params=("w1", "b1", "w2", "b2"),
    nodes=(
        _conv("x", "w1", "b1", "c1", 6, 3, padding=1),
        node("relu", "c1", out="a1"),
        node("local_response_norm", "a1", out="n1", size=5, alpha=1e-4, beta=0.75, k=2.0),
        node("max_pool", "n1", out="p1", kernel_size=3, stride=2),
        node("flatten", "p1", out="f1"),
        node("dropout", "f1", out="d1", p=0.5, keep="keep_seed"),
        node("linear", "d1", "w2", "b2", out="y", out_features=5),
    ),
    output="y",
    data_params=("keep_seed",),
)

SENTENCE = Block(
    name="block_sentence_cnn",
    title="Sentence CNN: wide 1-D convs, dynamic k-max pooling, tanh, dense, softmax",
    source="seed 001 'Wide Convolution', 'Dynamic k-max Pooling'; Kalchbrenner, Grefenstette & Blunsom 2014 "
    "(DCNN; k_l = max(k_top, ceil((L-l)/L s)); folding and row-wise kernels left out)",
    params=("w1", "b1", "w2", "b2", "w3", "b3"),
    nodes=(
        _conv("x", "w1", "b1", "c1", 3, 3, padding="full"),
        node("kmax_pool", "c1", out="k1", dynamic_k={"layer": 1, "n_layers": 2, "k_top": 3}),
        node("tanh", "k1", out="t1"),
        _conv("t1", "w2", "b2", "c2", 3, 2, padding="full"),
        node("kmax_pool", "c2", out="k2", dynamic_k={"layer": 2, "n_layers": 2, "k_top": 3}),
        node("tanh", "k2", out="t2"),
        node("flatten", "t2", out="f"),
        node("linear", "f", "w3", "b3", out="z", out_features=4),
        node("softmax", "z", out="y"),
    ),
    output="y",
)

BLOCKS = (VGG, RESNET, RESNET_PROJ, INCEPTION, ALEXNET, SENTENCE)
BY_NAME = {b.name: b for b in BLOCKS}
