"""LeNet-5, described once as data, and its forward and backward through any backend's spec ops.

The network (the lecture's LeNet-5 on a 1x32x32 input):

    C1 conv 5x5 x6 -> relu -> S2 max-pool 2x2/2 -> C3 conv 5x5 x16 -> relu -> S4 max-pool 2x2/2
    -> flatten (400) -> F5 linear 120 -> relu -> F6 linear 84 -> relu -> OUT linear 10 -> cross-entropy

Variant chosen: ReLU activations and max-pooling (LeCun's original used scaled tanh and trainable
average-pooling "subsampling"; ReLU + max-pool is the lectures' modern form and it exercises the
spec's tie rules: relu'(0) = 0 and the first maximum of a pooling window receives the gradient).
C3 connects to all six C1 maps (the original's sparse connection table is not used).

A layer is a dict: "op" names the spec op, "name" labels a layer with parameters, "out_channels" /
"kernel_size" (conv) and "out_features" (linear) size its weights, and every other key is passed to the
op as a keyword parameter (stride, padding, ...). `forward` and `backward` call only the backend
contract's ops (conv, relu, max_pool, flatten, linear, cross_entropy and their _backward).
"""

from __future__ import annotations

import numpy as np

from convspec import reference as R

INPUT_SHAPE = (1, 32, 32)  # (channels, height, width)
N_CLASSES = 10

LENET5 = (
    {"op": "conv", "name": "C1", "out_channels": 6, "kernel_size": 5},
    {"op": "relu"},
    {"op": "max_pool", "kernel_size": 2, "stride": 2},
    {"op": "conv", "name": "C3", "out_channels": 16, "kernel_size": 5},
    {"op": "relu"},
    {"op": "max_pool", "kernel_size": 2, "stride": 2},
    {"op": "flatten"},
    {"op": "linear", "name": "F5", "out_features": 120},
    {"op": "relu"},
    {"op": "linear", "name": "F6", "out_features": 84},
    {"op": "relu"},
    {"op": "linear", "name": "OUT", "out_features": N_CLASSES},
)

_SIZE_KEYS = ("op", "name", "out_channels", "out_features")


def op_params(layer: dict) -> dict:
    """The keyword parameters the layer passes to its op (conv's kernel_size sizes the weight only)."""
    skip = _SIZE_KEYS + (("kernel_size",) if layer["op"] == "conv" else ())
    return {k: v for k, v in layer.items() if k not in skip}


def param_shapes(layers=LENET5, input_shape=INPUT_SHAPE) -> dict:
    """{layer name: (weight shape, bias shape)}, found by running the reference on one zero image."""
    x = np.zeros((1,) + tuple(input_shape))
    shapes = {}
    for layer in layers:
        op = layer["op"]
        if op == "conv":
            k = layer["kernel_size"]
            k = (k,) * (x.ndim - 2) if isinstance(k, int) else tuple(k)
            w_shape = (layer["out_channels"], x.shape[1]) + k
            shapes[layer["name"]] = (w_shape, (layer["out_channels"],))
            x = R.conv(x, np.zeros(w_shape), np.zeros(w_shape[0]), **op_params(layer))
        elif op == "linear":
            w_shape = (layer["out_features"], x.shape[1])
            shapes[layer["name"]] = (w_shape, (layer["out_features"],))
            x = R.linear(x, np.zeros(w_shape), np.zeros(w_shape[0]))
        else:
            x = getattr(R, op)(x, **op_params(layer))
    return shapes


def init_params(seed: int, layers=LENET5, input_shape=INPUT_SHAPE) -> dict:
    """float64 initial weights from `seed`: LeCun-uniform U(-sqrt(3/fan_in), +sqrt(3/fan_in)) (weight
    variance 1/fan_in; the He scale 2/fan_in made plain SGD's first steps overshoot), zero biases.
    {name: {"w": array, "b": array}} in layer order."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, (w_shape, b_shape) in param_shapes(layers, input_shape).items():
        fan_in = int(np.prod(w_shape[1:]))
        bound = np.sqrt(3.0 / fan_in)
        params[name] = {"w": rng.uniform(-bound, bound, size=w_shape), "b": np.zeros(b_shape)}
    return params


def forward(backend, layers, params, x):
    """Logits for the batch x (a backend array), and the per-layer inputs the backward needs."""
    cache = []
    for layer in layers:
        op = layer["op"]
        cache.append(x)
        if op in ("conv", "linear"):
            p = params[layer["name"]]
            x = getattr(backend, op)(x, p["w"], p["b"], **op_params(layer))
        else:
            x = getattr(backend, op)(x, **op_params(layer))
    return x, cache


def backward(backend, layers, params, cache, grad_logits) -> dict:
    """{name: {"w": dw, "b": db}} by the backend's <op>_backward functions, last layer first."""
    grads = {}
    g = grad_logits
    for layer, x in zip(reversed(layers), reversed(cache)):
        op = layer["op"]
        if op in ("conv", "linear"):
            p = params[layer["name"]]
            g, dw, db = getattr(backend, op + "_backward")(g, x, p["w"], p["b"], **op_params(layer))
            grads[layer["name"]] = {"w": dw, "b": db}
        else:
            (g,) = getattr(backend, op + "_backward")(g, x, **op_params(layer))
    return grads
