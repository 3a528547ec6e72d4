"""The reference specification: one op per module, each reading like its formula.

Arrays are channels-first: x is (N, C, *spatial) with 1, 2 or 3 spatial dims; conv weights are
(C_out, C_in/groups, *kernel). Every op has `<op>_backward(grad_out, *inputs, **params)` returning a
tuple with the gradient of each differentiable input, in the forward's argument order (None for an
absent bias). Every op computes in float64: float16 and float32 data are widened and the result is rounded
once, at the end, to the data's dtype. The rational ops are exact on object arrays of fractions.Fraction.
"""

from . import literal  # the same ops as the loops of their formulas (convspec.reference.literal.conv, ...)
from ._params import compute_in_float64
from .add import add, add_backward
from .avg_pool import avg_pool, avg_pool_backward
from .batch_norm import (
    batch_norm,
    batch_norm_backward,
    batch_norm_inference,
    batch_norm_inference_backward,
    batch_norm_running_stats,
    batch_norm_stats,
)
from .concat import concat, concat_backward
from .conv import conv, conv_backward
from .conv_transpose import conv_transpose, conv_transpose_backward
from .convolve import convolve, convolve_backward
from .cross_entropy import cross_entropy, cross_entropy_backward
from .dropout import dropout, dropout_backward
from .errors import DTypeError, ParameterError, ShapeError, SpecError
from .flatten import flatten, flatten_backward
from .global_pool import global_avg_pool, global_avg_pool_backward, global_max_pool, global_max_pool_backward
from .kmax_pool import dynamic_k, kmax_pool, kmax_pool_backward, kmax_pool_indices
from .linear import linear, linear_backward
from .local_response_norm import local_response_norm, local_response_norm_backward
from .max_pool import max_pool, max_pool_backward, max_pool_indices
from .relu import relu, relu_backward
from .sigmoid import sigmoid, sigmoid_backward
from .sizes import output_size, param_count, receptive_field
from .softmax import softmax, softmax_backward
from .tanh import tanh, tanh_backward

#: Every differentiable op of the spec, by name; `<name>_backward` is its gradient.
OPS = (
    "conv",
    "convolve",
    "conv_transpose",
    "max_pool",
    "avg_pool",
    "global_max_pool",
    "global_avg_pool",
    "kmax_pool",
    "relu",
    "sigmoid",
    "tanh",
    "linear",
    "flatten",
    "add",
    "softmax",
    "cross_entropy",
    "batch_norm",
    "batch_norm_inference",
    "local_response_norm",
    "dropout",
    "concat",
)
#: Ops without a gradient: state updates (the running statistics of batch norm).
STATE_OPS = ("batch_norm_running_stats",)
#: Ops whose output is an index array (must match exactly).
INDEX_OPS = ("max_pool_indices", "kmax_pool_indices")

# float16 and float32 data: computed in float64, rounded once to the data's dtype (SPEC.md, "Conventions")
compute_in_float64(
    globals(),
    [n for op in OPS for n in (op, op + "_backward")] + list(INDEX_OPS) + list(STATE_OPS) + ["batch_norm_stats"],
)
