"""The literal specification: every op as the loops of its formula, under the op's plain name.

`convspec.reference.literal.conv` is `conv_literal` from reference/conv.py: explicit loops over the output
positions and the kernel taps. The ops of `convspec.reference` are the vectorised forms of these, and
tests/test_reference_literal.py proves each pair equal (forward, every gradient, the index ops). Read
these to see what an op computes; run the fast ones.
"""

from ._params import compute_in_float64
from .add import add_backward_literal as add_backward
from .add import add_literal as add
from .avg_pool import avg_pool_backward_literal as avg_pool_backward
from .avg_pool import avg_pool_literal as avg_pool
from .batch_norm import batch_norm_backward_literal as batch_norm_backward
from .batch_norm import batch_norm_inference_backward_literal as batch_norm_inference_backward
from .batch_norm import batch_norm_inference_literal as batch_norm_inference
from .batch_norm import batch_norm_literal as batch_norm
from .concat import concat_backward_literal as concat_backward
from .concat import concat_literal as concat
from .conv import conv_backward_literal as conv_backward
from .conv import conv_literal as conv
from .conv_transpose import (
    conv_transpose_backward_literal as conv_transpose_backward,
)
from .conv_transpose import (
    conv_transpose_literal as conv_transpose,
)
from .convolve import convolve_backward_literal as convolve_backward
from .convolve import convolve_literal as convolve
from .cross_entropy import cross_entropy_backward_literal as cross_entropy_backward
from .cross_entropy import cross_entropy_literal as cross_entropy
from .dropout import dropout_backward_literal as dropout_backward
from .dropout import dropout_literal as dropout
from .flatten import flatten_backward_literal as flatten_backward
from .flatten import flatten_literal as flatten
from .global_pool import global_avg_pool_backward_literal as global_avg_pool_backward
from .global_pool import global_avg_pool_literal as global_avg_pool
from .global_pool import global_max_pool_backward_literal as global_max_pool_backward
from .global_pool import global_max_pool_literal as global_max_pool
from .kmax_pool import kmax_pool_backward_literal as kmax_pool_backward
from .kmax_pool import kmax_pool_indices_literal as kmax_pool_indices
from .kmax_pool import kmax_pool_literal as kmax_pool
from .linear import linear_backward_literal as linear_backward
from .linear import linear_literal as linear
from .local_response_norm import local_response_norm_backward_literal as local_response_norm_backward
from .local_response_norm import local_response_norm_literal as local_response_norm
from .max_pool import max_pool_backward_literal as max_pool_backward
from .max_pool import max_pool_indices_literal as max_pool_indices
from .max_pool import max_pool_literal as max_pool
from .relu import relu_backward_literal as relu_backward
from .relu import relu_literal as relu
from .sigmoid import sigmoid_backward_literal as sigmoid_backward
from .sigmoid import sigmoid_literal as sigmoid
from .softmax import softmax_backward_literal as softmax_backward
from .softmax import softmax_literal as softmax
from .tanh import tanh_backward_literal as tanh_backward
from .tanh import tanh_literal as tanh

__all__ = [
    "conv",
    "conv_backward",
    "convolve",
    "convolve_backward",
    "conv_transpose",
    "conv_transpose_backward",
    "max_pool",
    "max_pool_backward",
    "max_pool_indices",
    "avg_pool",
    "avg_pool_backward",
    "global_max_pool",
    "global_max_pool_backward",
    "global_avg_pool",
    "global_avg_pool_backward",
    "kmax_pool",
    "kmax_pool_backward",
    "kmax_pool_indices",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "linear",
    "linear_backward",
    "flatten",
    "flatten_backward",
    "add",
    "add_backward",
    "softmax",
    "softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_inference",
    "batch_norm_inference_backward",
    "local_response_norm",
    "local_response_norm_backward",
    "dropout",
    "dropout_backward",
    "concat",
    "concat_backward",
]

# as the fast forms: float16 and float32 data computed in float64, rounded once to the data's dtype
compute_in_float64(globals(), __all__)
