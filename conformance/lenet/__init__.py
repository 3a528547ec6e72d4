"""LeNet-5 end to end: the network as data (model), handwritten digits and MNIST IDX files (data), one
backend-agnostic SGD loop (train), the comparison with the float64 reference (equivalence) and the
short check of `convspec run --profile full` (check). The training function is `lenet.train.train`
(the submodule's name is not shadowed here)."""

from .check import equivalence_check
from .data import Dataset, IdxError, load_digits_32, load_mnist, read_idx
from .equivalence import compare
from .model import LENET5, init_params
from .train import ReferenceBackend, TrainConfig

__all__ = [
    "LENET5",
    "Dataset",
    "IdxError",
    "ReferenceBackend",
    "TrainConfig",
    "compare",
    "equivalence_check",
    "init_params",
    "load_digits_32",
    "load_mnist",
    "read_idx",
]
