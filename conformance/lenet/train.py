"""Minibatch SGD for LeNet-5, written once for every backend (as in the lectures: shuffle, forward,
backward, update).

Every run with the same `TrainConfig` starts from the same float64 initial weights (from `seed`, cast
to the run's dtype), sees the same minibatches in the same order (an epoch's permutation comes from
`seed` and the epoch number, never from the backend) and uses the same learning rate, so runs on
different backends differ only by what their ops compute.

The update `p - lr * g` uses the backend arrays' arithmetic operators (NumPy, PyTorch and CuPy arrays
all have them); everything else goes through the backend contract's ops.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from convspec import reference as R
from convspec.api.backend import Backend

from . import model as M


class ReferenceBackend(Backend):
    """convspec.reference behind the backend contract: the float64 reference run."""

    name = "reference"
    device = "cpu"
    dtypes = ("float64",)
    version = "spec"

    def __getattr__(self, op):
        if op.startswith("_"):
            raise AttributeError(op)
        try:
            return getattr(R, op)
        except AttributeError:
            raise AttributeError(op) from None

    def from_numpy(self, a):
        return np.asarray(a)

    def to_numpy(self, a):
        return np.asarray(a)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 32
    lr: float = 0.05
    seed: int = 0
    max_steps: int | None = None  # stop after this many steps (CI-sized runs)


@dataclass
class TrainResult:
    backend: str
    dtype: str
    config: dict
    losses: list = field(default_factory=list)  # per step, as float
    epoch_accuracy: list = field(default_factory=list)  # test accuracy after each epoch
    test_accuracy: float | None = None
    params: dict = field(default_factory=dict)  # final weights, float64 NumPy
    seconds: float = 0.0
    images: int = 0

    @property
    def steps(self) -> int:
        return len(self.losses)

    def record(self) -> dict:
        """JSON-ready summary (no weights)."""
        return {
            "backend": self.backend,
            "dtype": self.dtype,
            "config": self.config,
            "steps": self.steps,
            "losses": self.losses,
            "epoch_accuracy": self.epoch_accuracy,
            "test_accuracy": self.test_accuracy,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images / self.seconds, 1) if self.seconds else None,
        }


def batches(n: int, config: TrainConfig):
    """(epoch, indices) of every minibatch, in order: a fresh permutation per epoch from the seed."""
    step = 0
    for epoch in range(config.epochs):
        perm = np.random.default_rng([config.seed, epoch]).permutation(n)
        for start in range(0, n, config.batch_size):
            if config.max_steps is not None and step >= config.max_steps:
                return
            yield epoch, perm[start : start + config.batch_size]
            step += 1


def n_steps(n: int, config: TrainConfig) -> int:
    per_epoch = -(-n // config.batch_size)
    total = per_epoch * config.epochs
    return total if config.max_steps is None else min(total, config.max_steps)


def to_backend(backend, params: dict, dtype: str) -> dict:
    return {
        name: {k: backend.from_numpy(np.asarray(v, dtype=dtype)) for k, v in p.items()} for name, p in params.items()
    }


def to_numpy(backend, params: dict) -> dict:
    return {
        name: {k: np.asarray(backend.to_numpy(v), dtype=np.float64) for k, v in p.items()} for name, p in params.items()
    }


def predict(backend, layers, params, x: np.ndarray, dtype: str, chunk: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(x), chunk):
        logits, _ = M.forward(backend, layers, params, backend.from_numpy(x[start : start + chunk].astype(dtype)))
        out.append(np.argmax(backend.to_numpy(logits), axis=1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(backend, layers, params, x, y, dtype) -> float:
    return float(np.mean(predict(backend, layers, params, x, dtype) == y)) if len(y) else float("nan")


def train(
    backend,
    data,
    config: TrainConfig,
    *,
    dtype: str = "float32",
    layers=M.LENET5,
    init: dict | None = None,
    on_step=None,
    evaluate_epochs: bool = True,
) -> TrainResult:
    """Train LeNet-5 on `backend` in `dtype`; on_step(step, loss) is called after every update."""
    init = init if init is not None else M.init_params(config.seed, layers, data.x_train.shape[1:])
    params = to_backend(backend, init, dtype)
    one = backend.from_numpy(np.asarray(1.0, dtype=dtype))
    res = TrainResult(backend.name, dtype, asdict(config))
    t0 = time.perf_counter()
    eval_seconds = 0.0  # test-set evaluations between epochs are not training time
    last_epoch = 0
    for epoch, idx in batches(len(data.y_train), config):
        if epoch != last_epoch and evaluate_epochs:
            t1 = time.perf_counter()
            res.epoch_accuracy.append(accuracy(backend, layers, params, data.x_test, data.y_test, dtype))
            eval_seconds += time.perf_counter() - t1
            last_epoch = epoch
        x = backend.from_numpy(data.x_train[idx].astype(dtype))
        labels = backend.from_numpy(data.y_train[idx])
        logits, cache = M.forward(backend, layers, params, x)
        loss = backend.cross_entropy(logits, labels)
        (g,) = backend.cross_entropy_backward(one, logits, labels)
        grads = M.backward(backend, layers, params, cache, g)
        for name, p in params.items():
            for k in p:
                p[k] = p[k] - config.lr * grads[name][k]
        res.losses.append(float(np.asarray(backend.to_numpy(loss))))
        res.images += len(idx)
        if on_step is not None:
            on_step(len(res.losses), res.losses[-1])
    backend.synchronize()
    res.seconds = time.perf_counter() - t0 - eval_seconds
    res.test_accuracy = accuracy(backend, layers, params, data.x_test, data.y_test, dtype)
    if evaluate_epochs:
        res.epoch_accuracy.append(res.test_accuracy)
    res.params = to_numpy(backend, params)
    return res
