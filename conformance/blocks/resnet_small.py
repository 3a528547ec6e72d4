"""A small ResNet trained end to end on any backend, for the training-equivalence check of `convspec train
--model resnet` (the same report as LeNet-5's: convspec.conformance.lenet.equivalence.compare).

The network, as block data (model.Block), on LeNet's 1x32x32 digits:

    stem: conv 3x3/2 x8 (no bias) -> batch norm -> relu                      16x16
    block 1: basic block, identity shortcut, 8 channels                       16x16
    block 2: basic block, stride 2, 1x1 projection shortcut (+ BN), 16 ch     8x8
    average pool 2x2/2 -> flatten (16 x 4 x 4 = 256) -> linear 10 -> cross-entropy

(A global average pool of the 16 maps learns the 8x8 digits far more slowly: 0.67 test accuracy after 6
epochs at lr 0.05, against 0.98 with the 4x4 pooled maps.)

Batch norm is in training mode throughout (every forward normalises with its own batch's statistics, also
when the test set is evaluated, in fixed chunks of EVAL_CHUNK images), so the network is a pure function of
its weights and its batch, the same on every backend. The loop is lenet.train's: same initial weights (from
the seed, cast to the run's dtype), same minibatches, same learning rate, the update `p - lr * g` with the
arrays' operators; forward and backward are model.forward / model.backward (the backend's ops only).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..lenet import train as T
from . import model as M

N_CLASSES = 10
INPUT_SHAPE = (1, 32, 32)
EVAL_CHUNK = 256

RESNET_SMALL = M.Block(
    name="resnet_small",
    title="small ResNet: stem, two basic blocks (identity, projection), avg-pool, dense",
    source="seeds 001 and 003 'ResNet'; He et al. 2016 (basic blocks, option B projection), BN in training mode",
    params=("stem.w", "stem.g", "stem.be")
    + tuple("b1." + p for p in ("w1", "g1", "be1", "w2", "g2", "be2"))
    + tuple("b2." + p for p in ("w1", "g1", "be1", "w2", "g2", "be2", "ws", "gs", "bes"))
    + ("fc.w", "fc.b"),
    nodes=(
        M.node("conv", "x", "stem.w", out="stem.c", out_channels=8, kernel_size=3, stride=2, padding=1),
        M.node("batch_norm", "stem.c", "stem.g", "stem.be", out="stem.n"),
        M.node("relu", "stem.n", out="a0"),
    )
    + M._basic("b1.", "a0", "r1", 8, 1, False)
    + M._basic("b2.", "r1", "r2", 16, 2, True)
    + (
        M.node("avg_pool", "r2", out="pool", kernel_size=2, stride=2),
        M.node("flatten", "pool", out="features"),
        M.node("linear", "features", "fc.w", "fc.b", out="logits", out_features=N_CLASSES),
    ),
    output="logits",
)


def init_params(seed: int, input_shape=INPUT_SHAPE) -> dict:
    """float64 initial weights from `seed`: He-uniform convs U(+-sqrt(6/fan_in)) (relu follows each BN),
    LeCun-uniform dense U(+-sqrt(3/fan_in)), gamma 1, beta and bias 0. {name: array}, in RESNET_SMALL.params
    order."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in M.param_shapes(RESNET_SMALL, (1,) + tuple(input_shape)).items():
        kind = name.split(".")[1]
        if kind.startswith("w"):
            fan_in = int(np.prod(shape[1:]))
            bound = np.sqrt((3.0 if name == "fc.w" else 6.0) / fan_in)
            params[name] = rng.uniform(-bound, bound, size=shape)
        elif kind.startswith("g"):
            params[name] = np.ones(shape)
        else:
            params[name] = np.zeros(shape)
    return params


def grouped(params: dict) -> dict:
    """{"b1.w1": a, ...} -> {"b1": {"w1": a}, ...}: the layout of TrainResult.params (lenet.equivalence)."""
    out: dict = {}
    for name, v in params.items():
        layer, key = name.split(".", 1)
        out.setdefault(layer, {})[key] = v
    return out


def logits(backend, params: dict, x):
    y, _ = M.forward(backend, RESNET_SMALL, {"x": x, **params})
    return y


def accuracy(backend, params: dict, x: np.ndarray, y: np.ndarray, dtype: str) -> float:
    if not len(y):
        return float("nan")
    pred = [
        np.argmax(
            backend.to_numpy(logits(backend, params, backend.from_numpy(x[s : s + EVAL_CHUNK].astype(dtype)))), axis=1
        )
        for s in range(0, len(x), EVAL_CHUNK)
    ]
    return float(np.mean(np.concatenate(pred) == y))


def train(
    backend,
    data,
    config: T.TrainConfig,
    *,
    dtype: str = "float32",
    init: dict | None = None,
    on_step=None,
    evaluate_epochs: bool = True,
) -> T.TrainResult:
    """Train the small ResNet on `backend` in `dtype` (lenet.train.train's signature and result);
    on_step(step, loss) is called after every update."""
    init = init if init is not None else init_params(config.seed, data.x_train.shape[1:])
    params = {k: backend.from_numpy(np.asarray(v, dtype=dtype)) for k, v in init.items()}
    one = backend.from_numpy(np.asarray(1.0, dtype=dtype))
    res = T.TrainResult(backend.name, dtype, {**asdict(config), "model": "resnet"})
    t0 = time.perf_counter()
    eval_seconds = 0.0
    last_epoch = 0
    for epoch, idx in T.batches(len(data.y_train), config):
        if epoch != last_epoch and evaluate_epochs:
            t1 = time.perf_counter()
            res.epoch_accuracy.append(accuracy(backend, params, data.x_test, data.y_test, dtype))
            eval_seconds += time.perf_counter() - t1
            last_epoch = epoch
        x = backend.from_numpy(data.x_train[idx].astype(dtype))
        labels = backend.from_numpy(data.y_train[idx])
        out, trace = M.forward(backend, RESNET_SMALL, {"x": x, **params})
        loss = backend.cross_entropy(out, labels)
        (g,) = backend.cross_entropy_backward(one, out, labels)
        grads = M.backward(backend, RESNET_SMALL, trace, g)
        params = {k: v - config.lr * grads[k] for k, v in params.items()}
        res.losses.append(float(np.asarray(backend.to_numpy(loss))))
        res.images += len(idx)
        if on_step is not None:
            on_step(len(res.losses), res.losses[-1])
    backend.synchronize()
    res.seconds = time.perf_counter() - t0 - eval_seconds
    res.test_accuracy = accuracy(backend, params, data.x_test, data.y_test, dtype)
    if evaluate_epochs:
        res.epoch_accuracy.append(res.test_accuracy)
    res.params = grouped({k: np.asarray(backend.to_numpy(v), dtype=np.float64) for k, v in params.items()})
    return res


# ----------------------------------------------------------------------------- the full profile's short check

#: the short check's configuration: float32 runs of an accurate backend stay within LeNet's 1e-4 loss
#: tolerance here (torch-cpu ~1e-7); at batch 32 relu sign flips after batch norm leave it by step ~15
CHECK = {"steps": 12, "batch_size": 8, "lr": 0.05}
_REFERENCE_CACHE: dict = {}


@dataclass(frozen=True)
class ResnetCase:
    """The identity of one small-ResNet check: a case kind of its own (op "resnet", source "resnet"), whose
    repro command is `convspec train --model resnet`."""

    steps: int
    seed: int
    batch_size: int
    dtype: str
    op: str = "resnet"
    source: str = "resnet"

    @property
    def id(self) -> str:
        return f"resnet:resnet_small[digits,steps={self.steps},batch={self.batch_size},seed={self.seed},{self.dtype}]"

    def spec(self) -> dict:
        return {
            "op": "resnet",
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    def repro_command(self, backend: str, plugins=()) -> str:
        opts = "".join(f" -p {p}" for p in plugins)
        return (
            f"convspec train --model resnet{opts} --backend {backend} --steps {self.steps} "
            f"--batch-size {self.batch_size} --lr {CHECK['lr']} --seed {self.seed} --dtype {self.dtype}"
        )


def equivalence_check(
    backend,
    *,
    steps: int = CHECK["steps"],
    seed: int = 0,
    batch_size: int = CHECK["batch_size"],
    dtype: str | None = None,
    dataset=None,
) -> dict:
    """The small ResNet's counterpart of lenet.check.equivalence_check: `steps` SGD steps on `backend` (float32
    when supported) and on the float64 reference, one case record (op "resnet"), pass when every step's loss
    and the final weights agree within lenet.equivalence's tolerances."""
    from ..lenet import data as D
    from ..lenet import equivalence as E
    from ..records import CaseResult, format_exception

    t0 = time.perf_counter()
    dtype = dtype or ("float32" if "float32" in getattr(backend, "dtypes", ()) else backend.dtypes[0])
    case = ResnetCase(steps, seed, batch_size, dtype)

    def done(status, message="", checks=(), **extra):
        return CaseResult(
            case,
            status,
            backend=backend.name,
            checks=list(checks),
            message=message,
            seconds=time.perf_counter() - t0,
            extra=extra,
        ).to_dict()

    if dtype not in E.LOSS_RTOL:
        return done("unsupported", f"no training tolerance for dtype {dtype}")
    missing = [
        m
        for m in RESNET_SMALL.requires() + ("cross_entropy", "cross_entropy_backward")
        if not callable(getattr(backend, m, None))
    ]
    if missing:
        return done("unsupported", f"the small ResNet needs {', '.join(missing)}")
    try:
        dataset = dataset or D.load_digits_32()
        cfg = T.TrainConfig(epochs=1, batch_size=batch_size, lr=CHECK["lr"], seed=seed, max_steps=steps)
        key = (cfg, dataset.name)
        if key not in _REFERENCE_CACHE:
            _REFERENCE_CACHE[key] = train(T.ReferenceBackend(), dataset, cfg, dtype="float64", evaluate_epochs=False)
        run = train(backend, dataset, cfg, dtype=dtype, evaluate_epochs=False)
    except Exception as exc:
        return done("error", format_exception(exc))
    eq = E.compare(run, _REFERENCE_CACHE[key])
    loss_ok = eq["first_exceed_step"] is None or eq["first_exceed_step"] > eq["track_steps"]
    checks = [
        {
            "what": f"loss per step (first {eq['track_steps']})",
            "status": "pass" if loss_ok else "fail",
            "bound_ratio": eq["max_loss_rel_diff_tracked"] / eq["loss_rtol"],
        }
    ]
    if eq["weight_checked"]:
        ok = eq["final_weight_rel_diff"] <= eq["weight_rtol"]
        checks.append(
            {
                "what": "final weights",
                "status": "pass" if ok else "fail",
                "bound_ratio": eq["final_weight_rel_diff"] / eq["weight_rtol"],
            }
        )
    status = "pass" if eq["equivalent"] else "fail"
    message = "" if status == "pass" else "the small ResNet leaves the reference: " + "; ".join(eq["failures"])
    return done(status, message, checks, resnet=eq)
