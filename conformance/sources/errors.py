"""Cases the spec rejects: a conforming backend must refuse each (raise), not compute something. Each
case names the rule it breaks; the engine gives it to the backend and fails the check "rejects" when the
backend returns a result (a backend that silently broadcasts `add`, or accepts an illegal stride under
`strict`, is caught here). The reference rejecting every one of them is checked by tests/test_errors_source.py.
"""

from __future__ import annotations

from .. import registry
from ..cases import Case

#: (name: the rule broken, op, shapes, params)
REJECTED = (
    # convolution: the lecture's "illegal stride for input & filter size" (7x7 input, 3x3 filter, stride 3)
    (
        "strict-stride-does-not-fit",
        "conv",
        {"x": [1, 1, 7, 7], "w": [1, 1, 3, 3], "b": None},
        {"stride": 3, "strict": True},
    ),
    ("stride-zero", "conv", {"x": [1, 2, 6], "w": [3, 2, 3], "b": None}, {"stride": 0}),
    ("dilation-zero", "conv", {"x": [1, 2, 6], "w": [3, 2, 3], "b": None}, {"dilation": 0}),
    ("negative-padding", "conv", {"x": [1, 2, 6], "w": [3, 2, 3], "b": None}, {"padding": -1}),
    ("groups-do-not-divide-channels", "conv", {"x": [1, 3, 6], "w": [2, 1, 3], "b": None}, {"groups": 2}),
    ("channel-mismatch", "conv", {"x": [1, 3, 5, 5], "w": [2, 2, 3, 3], "b": None}, {}),
    ("kernel-larger-than-input", "conv", {"x": [1, 1, 3], "w": [1, 1, 5], "b": None}, {}),
    ("bias-size-mismatch", "conv", {"x": [1, 2, 6], "w": [3, 2, 3], "b": [2]}, {}),
    ("unknown-padding-mode", "conv", {"x": [1, 2, 6], "w": [3, 2, 3], "b": None}, {"padding": "half"}),
    (
        "strict-stride-does-not-fit",
        "convolve",
        {"x": [1, 1, 7], "w": [1, 1, 3], "b": None},
        {"stride": 3, "strict": True},
    ),
    ("kernel-larger-than-input", "convolve", {"x": [1, 1, 2, 2], "w": [1, 1, 3, 3], "b": None}, {}),
    (
        "output-padding-not-below-stride",
        "conv_transpose",
        {"y": [1, 2, 4], "w": [2, 3, 3], "b": None},
        {"stride": 2, "output_padding": 2},
    ),
    ("channel-mismatch", "conv_transpose", {"y": [1, 3, 4], "w": [2, 3, 3], "b": None}, {}),
    # pooling
    ("kernel-zero", "max_pool", {"x": [1, 1, 4, 4]}, {"kernel_size": 0}),
    ("padding-mode-string", "max_pool", {"x": [1, 1, 4, 4]}, {"kernel_size": 2, "padding": "same"}),
    ("kernel-larger-than-input", "max_pool", {"x": [1, 1, 2]}, {"kernel_size": 3}),
    ("window-entirely-in-padding", "avg_pool", {"x": [1, 1, 4]}, {"kernel_size": 2, "padding": ((2, 0),)}),
    ("stride-zero", "avg_pool", {"x": [1, 1, 4]}, {"kernel_size": 2, "stride": 0}),
    ("no-spatial-dims", "global_max_pool", {"x": [2, 3]}, {}),
    ("no-spatial-dims", "global_avg_pool", {"x": [2, 3]}, {}),
    ("k-larger-than-length", "kmax_pool", {"x": [1, 2, 4]}, {"k": 5}),
    ("k-zero", "kmax_pool", {"x": [1, 2, 4]}, {"k": 0}),
    # fully connected, elementwise, losses
    ("feature-mismatch", "linear", {"x": [2, 3], "w": [4, 5], "b": None}, {}),
    ("no-broadcasting", "add", {"x": [2, 3], "y": [3]}, {}),
    ("no-broadcasting", "add", {"x": [2, 1], "y": [2, 3]}, {}),
    ("needs-a-batch-axis", "flatten", {"x": []}, {}),
    # normalization, regularization, concatenation
    ("gamma-size-mismatch", "batch_norm", {"x": [2, 3, 4], "gamma": [2], "beta": [3]}, {}),
    ("negative-eps", "batch_norm", {"x": [2, 3, 4], "gamma": [3], "beta": [3]}, {"eps": -1.0}),
    ("size-zero", "local_response_norm", {"x": [1, 4, 3]}, {"size": 0}),
    ("p-one", "dropout", {"x": [2, 3], "keep": [2, 3]}, {"p": 1.0}),
    ("keep-shape-mismatch", "dropout", {"x": [2, 3], "keep": [3, 2]}, {"p": 0.5}),
    ("non-axis-dims-differ", "concat", {"xs": [[2, 3], [3, 3]]}, {"axis": 1}),
    ("axis-out-of-range", "concat", {"xs": [[2, 3], [2, 3]]}, {"axis": 2}),
)


def cases() -> list:
    out = []
    for name, op, shapes, params in REJECTED:
        if op not in registry.OPS:
            continue
        for dt in ("float32", "float64"):
            out.append(Case(op=op, shapes=shapes, params=params, dtype=dt, seed=5, source="errors", name=name))
    return out


def source(profile, run_seed, ops):
    wanted = set(ops)
    yield from (c for c in cases() if c.op in wanted)
