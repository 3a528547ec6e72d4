"""Every error the reference raises for bad input: its class (ShapeError / ParameterError / DTypeError,
which are also ValueError / ValueError / TypeError), the parameter it names (the message starts with
"<param>: ") and the rule it states. Backward functions validate exactly like their forwards."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest

from convspec import DTypeError, ParameterError, ShapeError, SpecError
from convspec import reference as R

BASE = {ShapeError: ValueError, ParameterError: ValueError, DTypeError: TypeError}


def assert_spec_error(call, cls, param, rule):
    """call() raises exactly `cls`, whose message is '<param>: <rule...>' (rule: a regex searched in the message)."""
    with pytest.raises(SpecError) as info:
        call()
    err = info.value
    assert type(err) is cls, f"raised {type(err).__name__}: {err}, expected {cls.__name__}"
    assert isinstance(err, BASE[cls])
    assert err.param == param and str(err).startswith(f"{param}: "), f"message should name {param!r}: {err}"
    assert err.rule and re.search(rule, str(err)), f"message should state the rule /{rule}/: {err}"


def z(*shape):
    return np.zeros(shape)


X = z(1, 3, 7, 7)
W = z(4, 3, 3, 3)
Y = z(1, 4, 3, 3)  # a conv_transpose input for W

CASES = [
    # channels and groups
    (
        "channel mismatch",
        lambda: R.conv(X, z(4, 2, 3, 3)),
        ShapeError,
        "x",
        r"channel mismatch: x has 3 input channels but w expects 2",
    ),
    (
        "channel mismatch groups",
        lambda: R.conv(z(1, 4, 5), z(2, 1, 3), groups=2),
        ShapeError,
        "x",
        r"channel mismatch: x has 4 .* w expects 2",
    ),
    (
        "groups !| C_in",
        lambda: R.conv(X, z(4, 1, 3, 3), groups=2),
        ParameterError,
        "groups",
        r"groups=2 must divide the input channels C_in=3",
    ),
    (
        "groups !| C_out",
        lambda: R.conv(z(1, 4, 7), z(3, 2, 3), groups=2),
        ParameterError,
        "groups",
        r"groups=2 must divide the output channels C_out=3",
    ),
    ("groups 0", lambda: R.conv(X, W, groups=0), ParameterError, "groups", r"must be an int >= 1, got 0"),
    ("groups float", lambda: R.conv(X, W, groups=1.0), ParameterError, "groups", r"must be an int >= 1"),
    ("bias shape", lambda: R.conv(X, W, z(3)), ShapeError, "b", r"must have shape \(C_out,\) = \(4,\), got \(3,\)"),
    ("bias ndim", lambda: R.conv(X, W, z(4, 1)), ShapeError, "b", r"must have ndim in \(1,\)"),
    # sizes
    (
        "kernel > padded input",
        lambda: R.conv(X, z(4, 3, 9, 3)),
        ShapeError,
        "w",
        r"kernel extent 9 .* larger than the padded input 7",
    ),
    (
        "dilated kernel > padded input",
        lambda: R.conv(z(1, 1, 6), z(1, 1, 3), dilation=3, padding=((0, 0),)),
        ShapeError,
        "w",
        r"kernel extent 7 .* larger than the padded input 6",
    ),
    ("empty kernel", lambda: R.conv(X, z(4, 3, 0, 3)), ShapeError, "w", r"kernel sizes must be >= 1"),
    (
        "pool kernel > padded input",
        lambda: R.max_pool(z(1, 1, 3), 6, padding=1),
        ShapeError,
        "kernel_size",
        r"kernel extent 6 .* larger than the padded",
    ),
    # stride, dilation, padding
    ("stride 0", lambda: R.conv(X, W, stride=0), ParameterError, "stride", r"must be >= 1, got 0"),
    ("stride per-dim 0", lambda: R.conv(X, W, stride=(1, 0)), ParameterError, "stride", r"must be >= 1, got \(1, 0\)"),
    (
        "stride wrong length",
        lambda: R.conv(X, W, stride=(1, 2, 3)),
        ParameterError,
        "stride",
        r"needs one value per spatial dim \(2\)",
    ),
    (
        "stride float",
        lambda: R.conv(X, W, stride=1.5),
        ParameterError,
        "stride",
        r"must be an int or a tuple of 2 ints, got 1.5",
    ),
    (
        "stride bool",
        lambda: R.conv(X, W, stride=True),
        ParameterError,
        "stride",
        r"must be an int or a tuple of 2 ints, got True",
    ),
    ("dilation 0", lambda: R.conv(X, W, dilation=0), ParameterError, "dilation", r"must be >= 1, got 0"),
    ("pool stride 0", lambda: R.max_pool(X, 2, stride=0), ParameterError, "stride", r"must be >= 1"),
    ("pool dilation 0", lambda: R.avg_pool(X, 2, dilation=(0, 1)), ParameterError, "dilation", r"must be >= 1"),
    ("pool kernel 0", lambda: R.max_pool(X, 0), ParameterError, "kernel_size", r"must be >= 1, got 0"),
    ("negative padding", lambda: R.conv(X, W, padding=-1), ParameterError, "padding", r"must be non-negative, got -1"),
    (
        "negative padding pair",
        lambda: R.conv(X, W, padding=((0, -1), (0, 0))),
        ParameterError,
        "padding",
        r"must be non-negative",
    ),
    (
        "negative pool padding",
        lambda: R.max_pool(X, 3, padding=(1, -1)),
        ParameterError,
        "padding",
        r"must be non-negative",
    ),
    (
        "padding bool",
        lambda: R.conv(X, W, padding=True),
        ParameterError,
        "padding",
        r"must be an int, a tuple of 2 ints, a tuple of 2 \(begin, end\) pairs",
    ),
    (
        "padding wrong length",
        lambda: R.conv(X, W, padding=(1, 1, 1)),
        ParameterError,
        "padding",
        r"must be an int, a tuple of 2 ints",
    ),
    (
        "unknown padding mode",
        lambda: R.conv(X, W, padding="circular"),
        ParameterError,
        "padding",
        r"unknown padding mode 'circular'; expected one of \('valid', 'same', 'full'\)",
    ),
    (
        "mode for max_pool",
        lambda: R.max_pool(X, 3, padding="same"),
        ParameterError,
        "padding",
        r"pooling takes an int, a per-dim tuple or \(begin, end\) pairs, not the mode 'same'",
    ),
    (
        "mode for avg_pool",
        lambda: R.avg_pool(X, 3, padding="valid"),
        ParameterError,
        "padding",
        r"not the mode 'valid'",
    ),
    (
        "max_pool window in padding",
        lambda: R.max_pool(z(1, 1, 4), 2, padding=((2, 0),)),
        ParameterError,
        "padding",
        r"a pooling window lies entirely in the padding",
    ),
    (
        "avg_pool window in padding",
        lambda: R.avg_pool(z(1, 1, 4), 2, padding=((2, 0),)),
        ParameterError,
        "padding",
        r"a pooling window lies entirely in the padding",
    ),
    (
        "avg_pool window in end padding",
        lambda: R.avg_pool(z(1, 1, 1), 1, stride=1, padding=((0, 1),)),
        ParameterError,
        "padding",
        r"lies entirely in the padding",
    ),
    (
        "max_pool dilated window in padding",
        lambda: R.max_pool(z(1, 1, 1, 5), (1, 2), stride=1, dilation=(1, 3), padding=((0, 0), (4, 0))),
        ParameterError,
        "padding",
        r"lies entirely in the padding",
    ),
    (
        "strict remainder",
        lambda: R.conv(z(1, 1, 7, 7), z(1, 1, 3, 3), stride=3, strict=True),
        ParameterError,
        "stride",
        r"stride 3 does not fit exactly in spatial dim 0: .* = \(7 \+ 0 \+ 0 - 2 - 1\) / 3 = 4/3 is not an integer",
    ),
    # conv_transpose
    (
        "output_padding >= stride",
        lambda: R.conv_transpose(Y, W, stride=2, output_padding=2),
        ParameterError,
        "output_padding",
        r"must satisfy 0 <= output_padding < max\(stride, dilation\); got 2 with stride 2, dilation 1",
    ),
    (
        "output_padding >= dilation",
        lambda: R.conv_transpose(Y, W, dilation=2, output_padding=(1, 2)),
        ParameterError,
        "output_padding",
        r"0 <= output_padding < max\(stride, dilation\); got \(1, 2\)",
    ),
    (
        "output_padding negative",
        lambda: R.conv_transpose(Y, W, stride=2, output_padding=-1),
        ParameterError,
        "output_padding",
        r"must be >= 0",
    ),
    (
        "output_padding with same",
        lambda: R.conv_transpose(Y, W, stride=2, padding="same", output_padding=1),
        ParameterError,
        "output_padding",
        r"must be 0 with padding='same'",
    ),
    (
        "transpose channel mismatch",
        lambda: R.conv_transpose(z(1, 3, 3, 3), W),
        ShapeError,
        "y",
        r"channel mismatch: y has 3 channels but w.shape\[0\] is 4",
    ),
    (
        "transpose groups",
        lambda: R.conv_transpose(Y, z(4, 3, 3, 3), groups=3),
        ParameterError,
        "groups",
        r"groups=3 must divide the channels of y \(4\)",
    ),
    ("transpose bias", lambda: R.conv_transpose(Y, W, z(4)), ShapeError, "b", r"must have shape \(C_x,\) = \(3,\)"),
    (
        "transpose empty output",
        lambda: R.conv_transpose(z(1, 4, 1, 1), z(4, 3, 1, 1), padding=1),
        ShapeError,
        "y",
        r"output size -1 < 1",
    ),
    (
        "transpose unknown mode",
        lambda: R.conv_transpose(Y, W, padding="half"),
        ParameterError,
        "padding",
        r"unknown padding mode 'half'",
    ),
    # ndim
    (
        "x ndim 2",
        lambda: R.conv(z(3, 7), z(4, 3, 3)),
        ShapeError,
        "x",
        r"must have ndim in \(3, 4, 5\), got shape \(3, 7\)",
    ),
    (
        "x ndim 6",
        lambda: R.conv(z(1, 1, 2, 2, 2, 2), z(1, 1, 1, 1, 1, 1)),
        ShapeError,
        "x",
        r"must have ndim in \(3, 4, 5\)",
    ),
    ("w ndim", lambda: R.conv(X, z(4, 3, 3)), ShapeError, "w", r"must have ndim 4 \(C_out, C_in/groups, \*kernel\)"),
    ("transpose w ndim", lambda: R.conv_transpose(Y, z(4, 3, 3)), ShapeError, "w", r"must have ndim 4"),
    ("pool ndim", lambda: R.max_pool(z(3, 7), 2), ShapeError, "x", r"must have ndim in \(3, 4, 5\)"),
    ("global pool ndim", lambda: R.global_avg_pool(z(2, 3)), ShapeError, "x", r"must have ndim in \(3, 4, 5\)"),
    ("linear ndim", lambda: R.linear(z(2, 3, 1), z(4, 3)), ShapeError, "x", r"must have ndim in \(2,\)"),
    (
        "linear feature mismatch",
        lambda: R.linear(z(2, 3), z(4, 5)),
        ShapeError,
        "x",
        r"feature mismatch: x has 3 features but w expects 5",
    ),
    ("linear bias", lambda: R.linear(z(2, 3), z(4, 3), z(3)), ShapeError, "b", r"must have shape \(out,\) = \(4,\)"),
    ("flatten 0-d", lambda: R.flatten(np.float64(1.0)), ShapeError, "x", r"must have at least 1 dimensions"),
    ("softmax 0-d", lambda: R.softmax(np.float64(1.0)), ShapeError, "z", r"must have at least one axis"),
    # dtypes
    (
        "strings",
        lambda: R.conv(np.array([[["a", "b", "c"]]]), z(1, 1, 1)),
        DTypeError,
        "x",
        r"dtype must be a real floating, integer or Fraction-object dtype, got <U1",
    ),
    ("bool", lambda: R.conv(np.ones((1, 1, 3), bool), z(1, 1, 1)), DTypeError, "x", r"got bool"),
    ("complex", lambda: R.conv(np.ones((1, 1, 3), complex), z(1, 1, 1)), DTypeError, "x", r"got complex128"),
    ("complex w", lambda: R.conv(z(1, 1, 3), np.ones((1, 1, 1), complex)), DTypeError, "w", r"got complex128"),
    ("string bias", lambda: R.conv(z(1, 1, 3), z(1, 1, 1), np.array(["0"])), DTypeError, "b", r"got <U1"),
    (
        "object strings",
        lambda: R.conv(np.array([[[Fraction(1), "a"]]], dtype=object), z(1, 1, 1)),
        DTypeError,
        "x",
        r"object arrays must hold real numbers .*found str",
    ),
    (
        "object bool",
        lambda: R.conv(np.array([[[Fraction(1), True]]], dtype=object), z(1, 1, 1)),
        DTypeError,
        "x",
        r"found bool",
    ),
    (
        "object complex",
        lambda: R.avg_pool(np.array([[[Fraction(1), 1j]]], dtype=object), 1),
        DTypeError,
        "x",
        r"found complex",
    ),
    ("None", lambda: R.conv(None, W), DTypeError, "x", r"found NoneType"),
    ("datetime", lambda: R.relu(np.array(["2024-01-01"], dtype="datetime64[D]")), DTypeError, "x", r"got datetime64"),
    (
        "Fractions into sigmoid",
        lambda: R.sigmoid(np.array([Fraction(1)], dtype=object)),
        DTypeError,
        "x",
        r"transcendental ops are evaluated in floating point",
    ),
    (
        "Fractions into softmax",
        lambda: R.softmax(np.array([Fraction(1)], dtype=object)),
        DTypeError,
        "z",
        r"Fraction arrays are not supported",
    ),
    (
        "Fractions into cross_entropy",
        lambda: R.cross_entropy(np.array([[Fraction(1)]], dtype=object), np.array([0])),
        DTypeError,
        "logits",
        r"Fraction arrays are not supported",
    ),
    # cross_entropy labels
    (
        "float labels",
        lambda: R.cross_entropy(z(2, 3), np.array([0.0, 1.0])),
        DTypeError,
        "labels",
        r"must be integers, got dtype float64",
    ),
    (
        "bool labels",
        lambda: R.cross_entropy(z(2, 3), np.array([True, False])),
        DTypeError,
        "labels",
        r"must be integers, got dtype bool",
    ),
    (
        "label = K",
        lambda: R.cross_entropy(z(2, 3), np.array([0, 3])),
        ParameterError,
        "labels",
        r"must lie in \[0, K\) = \[0, 3\), got values in \[0, 3\]",
    ),
    (
        "negative label",
        lambda: R.cross_entropy(z(2, 3), np.array([-1, 0])),
        ParameterError,
        "labels",
        r"must lie in \[0, K\) = \[0, 3\), got values in \[-1, 0\]",
    ),
    (
        "labels shape",
        lambda: R.cross_entropy(z(2, 3), np.array([0, 1, 2])),
        ShapeError,
        "labels",
        r"must have shape \(N,\) = \(2,\), got \(3,\)",
    ),
    ("logits ndim", lambda: R.cross_entropy(z(2, 3, 1), np.array([0, 1])), ShapeError, "logits", r"must be \(N, K\)"),
    # add
    (
        "add shape mismatch",
        lambda: R.add(z(2, 3), z(1, 3)),
        ShapeError,
        "y",
        r"must have the shape of x \(2, 3\) \(no broadcasting\), got \(1, 3\)",
    ),
    ("add scalar", lambda: R.add(z(2, 3), np.float64(1.0)), ShapeError, "y", r"no broadcasting"),
    # k-max
    (
        "k = 0",
        lambda: R.kmax_pool(z(4), 0),
        ParameterError,
        "k",
        r"must be an int with 1 <= k <= x.shape\[-1\] = 4, got 0",
    ),
    ("k > n", lambda: R.kmax_pool(z(2, 4), 5), ParameterError, "k", r"1 <= k <= x.shape\[-1\] = 4, got 5"),
    ("k bool", lambda: R.kmax_pool(z(4), True), ParameterError, "k", r"got True"),
    ("k float", lambda: R.kmax_pool_indices(z(4), 2.0), ParameterError, "k", r"got 2.0"),
    (
        "dynamic_k layer > n_layers",
        lambda: R.dynamic_k(4, 3, 10, 2),
        ParameterError,
        "layer",
        r"must be <= n_layers=3, got 4",
    ),
    ("dynamic_k k_top 0", lambda: R.dynamic_k(1, 3, 10, 0), ParameterError, "k_top", r"must be a positive int, got 0"),
    (
        "dynamic_k negative layer",
        lambda: R.dynamic_k(-1, 3, 10, 2),
        ParameterError,
        "layer",
        r"must be a non-negative int",
    ),
    # size helpers
    ("output_size n 0", lambda: R.output_size(0, 3), ParameterError, "n", r"must be an int >= 1, got 0"),
    ("output_size stride 0", lambda: R.output_size(5, 3, stride=0), ParameterError, "stride", r"must be >= 1"),
    (
        "output_size strict",
        lambda: R.output_size(7, 3, stride=3, strict=True),
        ParameterError,
        "stride",
        r"4/3 is not an integer",
    ),
    (
        "param_count groups",
        lambda: R.param_count(3, 4, (3, 3), groups=2),
        ParameterError,
        "groups",
        r"groups=2 must divide c_in=3 and c_out=4",
    ),
    (
        "receptive_field lengths",
        lambda: R.receptive_field([3, 3], strides=[1, 2, 2]),
        ParameterError,
        "strides",
        r"one value per layer \(2\)",
    ),
    ("receptive_field k 0", lambda: R.receptive_field([3, 0]), ParameterError, "kernel_sizes", r"must be >= 1"),
    # flags are bools (issue 13: "False" was truthy); more in tests/test_reference_robustness.py
    (
        "ceil_mode 'False'",
        lambda: R.max_pool(X, 2, ceil_mode="False"),
        ParameterError,
        "ceil_mode",
        r"must be a bool, got 'False' \(str\)",
    ),
    (
        "count_include_pad 'no'",
        lambda: R.avg_pool(X, 2, count_include_pad="no"),
        ParameterError,
        "count_include_pad",
        r"must be a bool, got 'no' \(str\)",
    ),
    ("strict 1", lambda: R.conv(X, W, strict=1), ParameterError, "strict", r"must be a bool, got 1 \(int\)"),
    (
        "output_size ceil_mode None",
        lambda: R.output_size(5, 2, ceil_mode=None),
        ParameterError,
        "ceil_mode",
        r"must be a bool, got None",
    ),
    ("param_count bias 'yes'", lambda: R.param_count(3, 4, 3, bias="yes"), ParameterError, "bias", r"must be a bool"),
    # sizes checked before allocating (issue 13: hundreds of GiB)
    (
        "padding 10**5",
        lambda: R.conv(X, W, padding=10**5),
        ParameterError,
        "padding",
        r"more than the reference's limit of 2\*\*31",
    ),
    ("dilation 10**6", lambda: R.conv(X, W, padding="full", dilation=10**6), ParameterError, "dilation", r"2\*\*31"),
    ("stride 10**30", lambda: R.avg_pool(X, 2, stride=10**30), ParameterError, "stride", r"must be at most 2\*\*31"),
    # empty reductions
    ("global_max_pool empty", lambda: R.global_max_pool(z(1, 3, 0)), ShapeError, "x", r"every spatial dim >= 1"),
    ("global_avg_pool empty", lambda: R.global_avg_pool(z(1, 3, 2, 0)), ShapeError, "x", r"every spatial dim >= 1"),
    (
        "conv_transpose empty y",
        lambda: R.conv_transpose(z(1, 4, 0, 3), W),
        ShapeError,
        "y",
        r"every spatial dim must be >= 1",
    ),
    ("ragged labels", lambda: R.cross_entropy(z(2, 3), [[0], [1, 2]]), ShapeError, "labels", r"ragged"),
]


@pytest.mark.parametrize("call, cls, param, rule", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error(call, cls, param, rule):
    assert_spec_error(call, cls, param, rule)


# -------------------------------------------------------------------------------------- backward validates like forward

G4 = z(1, 4, 5, 5)
BACKWARD_CASES = [
    (
        "conv groups",
        lambda: R.conv_backward(G4, X, z(4, 1, 3, 3), groups=2),
        ParameterError,
        "groups",
        r"must divide the input channels",
    ),
    ("conv stride", lambda: R.conv_backward(G4, X, W, stride=0), ParameterError, "stride", r"must be >= 1"),
    (
        "conv grad_out shape",
        lambda: R.conv_backward(z(1, 4, 4, 4), X, W),
        ShapeError,
        "grad_out",
        r"must have the forward output's shape \(1, 4, 5, 5\), got \(1, 4, 4, 4\)",
    ),
    (
        "conv grad_out dtype",
        lambda: R.conv_backward(np.full((1, 4, 5, 5), "a"), X, W),
        DTypeError,
        "grad_out",
        r"dtype must be",
    ),
    (
        "convolve padding",
        lambda: R.convolve_backward(G4, X, W, padding="bad"),
        ParameterError,
        "padding",
        r"unknown padding mode",
    ),
    (
        "conv_transpose output_padding",
        lambda: R.conv_transpose_backward(z(1, 3, 5, 5), Y, W, output_padding=1),
        ParameterError,
        "output_padding",
        r"< max\(stride, dilation\)",
    ),
    (
        "conv_transpose grad_out",
        lambda: R.conv_transpose_backward(z(1, 3, 4, 4), Y, W),
        ShapeError,
        "grad_out",
        r"forward output's shape \(1, 3, 5, 5\)",
    ),
    (
        "max_pool mode",
        lambda: R.max_pool_backward(z(1, 3, 2, 2), X, 3, padding="same"),
        ParameterError,
        "padding",
        r"not the mode 'same'",
    ),
    (
        "max_pool grad_out",
        lambda: R.max_pool_backward(z(1, 3, 3, 3), X, 3),
        ShapeError,
        "grad_out",
        r"forward output's shape \(1, 3, 2, 2\)",
    ),
    (
        "avg_pool window in padding",
        lambda: R.avg_pool_backward(z(1, 1, 2), z(1, 1, 4), 2, padding=((2, 0),)),
        ParameterError,
        "padding",
        r"lies entirely in the padding",
    ),
    (
        "avg_pool grad_out",
        lambda: R.avg_pool_backward(z(1, 3, 3, 3), X, 3),
        ShapeError,
        "grad_out",
        r"forward output's shape",
    ),
    (
        "global_max_pool grad_out",
        lambda: R.global_max_pool_backward(z(1, 4), X),
        ShapeError,
        "grad_out",
        r"forward output's shape \(1, 3\)",
    ),
    (
        "global_avg_pool grad_out",
        lambda: R.global_avg_pool_backward(z(3), X),
        ShapeError,
        "grad_out",
        r"forward output's shape \(1, 3\)",
    ),
    (
        "kmax grad_out",
        lambda: R.kmax_pool_backward(z(2, 3), z(2, 5), 2),
        ShapeError,
        "grad_out",
        r"forward output's shape \(2, 2\)",
    ),
    ("kmax k", lambda: R.kmax_pool_backward(z(2, 2), z(2, 5), 6), ParameterError, "k", r"1 <= k <= x.shape\[-1\] = 5"),
    ("relu grad_out", lambda: R.relu_backward(z(3), z(4)), ShapeError, "grad_out", r"forward output's shape \(4,\)"),
    ("sigmoid grad_out", lambda: R.sigmoid_backward(z(3), z(4)), ShapeError, "grad_out", r"forward output's shape"),
    (
        "tanh Fractions",
        lambda: R.tanh_backward(z(1), np.array([Fraction(1)], dtype=object)),
        DTypeError,
        "x",
        r"floating point",
    ),
    (
        "linear grad_out",
        lambda: R.linear_backward(z(2, 3), z(2, 3), z(4, 3)),
        ShapeError,
        "grad_out",
        r"forward output's shape \(2, 4\)",
    ),
    (
        "flatten grad_out",
        lambda: R.flatten_backward(z(2, 5), z(2, 2, 3)),
        ShapeError,
        "grad_out",
        r"forward output's shape \(2, 6\)",
    ),
    ("add shapes", lambda: R.add_backward(z(2, 3), z(2, 3), z(3)), ShapeError, "y", r"no broadcasting"),
    (
        "softmax grad_out",
        lambda: R.softmax_backward(z(2, 2), z(2, 3)),
        ShapeError,
        "grad_out",
        r"forward output's shape \(2, 3\)",
    ),
    (
        "cross_entropy grad_out",
        lambda: R.cross_entropy_backward(z(2), z(2, 3), np.array([0, 1])),
        ShapeError,
        "grad_out",
        r"must be a scalar",
    ),
    (
        "cross_entropy labels",
        lambda: R.cross_entropy_backward(np.float64(1), z(2, 3), np.array([0, 5])),
        ParameterError,
        "labels",
        r"must lie in \[0, K\)",
    ),
]


@pytest.mark.parametrize("call, cls, param, rule", [c[1:] for c in BACKWARD_CASES], ids=[c[0] for c in BACKWARD_CASES])
def test_backward_error(call, cls, param, rule):
    assert_spec_error(call, cls, param, rule)


# ----------------------------------------------------------------------------------- every op rejects non-numeric input


def _valid_calls():
    """op -> (forward args with a placeholder for the first array, kwargs, the first parameter's name)."""
    return {
        "conv": ((W,), {}, "x"),
        "convolve": ((W,), {}, "x"),
        "conv_transpose": ((W,), {}, "y"),
        "max_pool": ((2,), {}, "x"),
        "avg_pool": ((2,), {}, "x"),
        "global_max_pool": ((), {}, "x"),
        "global_avg_pool": ((), {}, "x"),
        "kmax_pool": ((1,), {}, "x"),
        "relu": ((), {}, "x"),
        "sigmoid": ((), {}, "x"),
        "tanh": ((), {}, "x"),
        "linear": ((z(4, 7),), {}, "x"),
        "flatten": ((), {}, "x"),
        "add": ((z(1, 4, 7, 7),), {}, "x"),
        "softmax": ((), {}, "z"),
        "cross_entropy": ((np.array([0]),), {}, "logits"),
        "batch_norm": ((np.ones(4), z(4)), {}, "x"),
        "batch_norm_inference": ((np.ones(4), z(4), z(4), np.ones(4)), {}, "x"),
        "local_response_norm": ((3,), {}, "x"),
        "dropout": ((np.ones((1, 4, 7, 7)),), {"p": 0.5}, "x"),
        "concat": ((), {}, "xs[0]"),
    }


@pytest.mark.parametrize(
    "bad, what",
    [
        (np.full((1, 4, 7, 7), "s"), r"got <U1"),
        (np.ones((1, 4, 7, 7), dtype=bool), r"got bool"),
        (np.ones((1, 4, 7, 7), dtype=complex), r"got complex128"),
    ],
    ids=["str", "bool", "complex"],
)
@pytest.mark.parametrize("op", R.OPS)
def test_every_op_rejects_non_numeric_dtypes(op, bad, what):
    args, kwargs, name = _valid_calls()[op]
    if op in ("linear", "cross_entropy"):
        bad = bad.reshape(1, -1)[:, :7]
    if op == "concat":  # its input is a sequence of arrays
        bad = [bad]
    assert_spec_error(lambda: getattr(R, op)(bad, *args, **kwargs), DTypeError, name, what)
    grad = np.ones(())
    assert_spec_error(lambda: getattr(R, op + "_backward")(grad, bad, *args, **kwargs), DTypeError, name, what)


def test_every_op_has_its_rejection_case():
    assert set(_valid_calls()) == set(R.OPS)


# ------------------------------------------------------------------------- bugs found while writing these tests (fixed)


def test_ragged_input_is_a_spec_error():
    assert_spec_error(
        lambda: R.conv([[[1.0, 2.0], [3.0]]], z(1, 1, 1)), ShapeError, "x", r"ragged|inhomogeneous|rectangular"
    )


def test_output_size_kernel_too_large_names_k():
    assert_spec_error(
        lambda: R.output_size(3, 5), ShapeError, "k", r"kernel extent 5 .* larger than the padded input 3"
    )


def test_pool_kernel_too_large_message_says_input():
    assert_spec_error(lambda: R.max_pool(z(1, 1, 2), 3), ShapeError, "kernel_size", r"larger than the padded input 2")
