"""Hypothesis strategies drawing the block cases: small batches, channels and sizes (so the full profile stays
fast), float32 or float64, standard-normal data and weights. A drawn case whose selections are not
determined within the error bound (bounds.IllConditioned: a relu input, a max-pool runner-up or a k-max
boundary within its error) is discarded, for float32, the coarser dtype, so float64 keeps it too."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from ..cases import Case
from . import bounds as B
from . import model as M

DTYPES = st.sampled_from(["float32", "float64"])

#: block name -> (batch sizes, input channels, spatial dims, spatial sizes)
SIZES = {
    "block_vgg": ((1, 2), (1, 3), 2, (4, 7)),
    "block_resnet": ((2, 2), (4, 4), 2, (3, 6)),
    "block_resnet_proj": ((2, 2), (2, 3), 2, (4, 7)),
    "block_inception": ((1, 2), (1, 4), 2, (3, 6)),
    "block_alexnet": ((1, 2), (1, 3), 2, (5, 9)),
    "block_sentence_cnn": ((1, 2), (2, 4), 1, (4, 9)),
}


def well_conditioned(case: Case) -> bool:
    """Are the case's selections determined within the float32 bound (hence also the float64 one)?"""
    import numpy as np

    block = M.BY_NAME[case.op]
    inputs = [a.astype(np.float64) for a in case.inputs()]
    fwd, _ = M.reference(block)
    y = fwd(*inputs, **case.params)
    try:
        B.block_bounds(block, inputs, case.params, case.grad_output(y.shape).astype(np.float64), "float32")
    except B.IllConditioned:
        return False
    return True


@st.composite
def block_cases(draw, name: str):
    block = M.BY_NAME[name]
    (n0, n1), (c0, c1), nd, (s0, s1) = SIZES[name]
    x = [draw(st.integers(n0, n1)), draw(st.integers(c0, c1))] + [draw(st.integers(s0, s1)) for _ in range(nd)]
    params = {p: draw(st.integers(0, 2**31 - 1)) for p in block.data_params}
    shapes = {"x": x, **{k: list(v) for k, v in M.param_shapes(block, x, params).items()}}
    case = Case(op=name, shapes=shapes, params=params, dtype=draw(DTYPES), seed=draw(st.integers(0, 2**31 - 1)))
    assume(well_conditioned(case))
    return case
