"""LeNet-5 end to end: the model as data, the digits data and the MNIST IDX reader (with bad files), the
backend-agnostic SGD loop, equivalence of numpy and torch-cpu training with the float64 reference in CI
size (200 steps), a deliberately broken backend being caught, the run-profile check record and the
`convspec train` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance import results
from convspec.conformance.cli import main
from convspec.conformance.lenet import data as D
from convspec.conformance.lenet import equivalence as E
from convspec.conformance.lenet import model as M
from convspec.conformance.lenet import train as T
from convspec.conformance.lenet.check import equivalence_check

CI = T.TrainConfig(epochs=1, batch_size=4, lr=0.05, seed=0, max_steps=200)


@pytest.fixture(scope="module")
def digits():
    return D.load_digits_32()


@pytest.fixture(scope="module")
def reference(digits):
    return T.train(T.ReferenceBackend(), digits, CI, dtype="float64", evaluate_epochs=False)


def torch_cpu():
    pytest.importorskip("torch")
    from convspec.backends.torch_backend import TorchBackend

    b = TorchBackend()
    assert b.availability() is None
    return b


# ---------------------------------------------------------------- model
def test_lenet5_is_data_with_the_lecture_shapes():
    shapes = M.param_shapes()
    assert shapes == {
        "C1": ((6, 1, 5, 5), (6,)),
        "C3": ((16, 6, 5, 5), (16,)),
        "F5": ((120, 400), (120,)),
        "F6": ((84, 120), (84,)),
        "OUT": ((10, 84), (10,)),
    }
    assert sum(int(np.prod(w)) + int(np.prod(b)) for w, b in shapes.values()) == 61706
    assert [layer["op"] for layer in M.LENET5] == [
        "conv",
        "relu",
        "max_pool",
        "conv",
        "relu",
        "max_pool",
        "flatten",
        "linear",
        "relu",
        "linear",
        "relu",
        "linear",
    ]
    p1, p2 = M.init_params(3), M.init_params(3)
    np.testing.assert_array_equal(p1["C3"]["w"], p2["C3"]["w"])
    assert np.abs(p1["F5"]["w"]).max() <= np.sqrt(3 / 400) and not p1["OUT"]["b"].any()


def test_forward_backward_match_the_reference_on_numpy(digits):
    params = M.init_params(0)
    x, y = digits.x_train[:5], digits.y_train[:5]
    ref_logits, ref_cache = M.forward(T.ReferenceBackend(), M.LENET5, params, x)
    b = NumpyBackend()
    logits, cache = M.forward(b, M.LENET5, params, x)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-12)
    g_ref = M.backward(
        T.ReferenceBackend(),
        M.LENET5,
        params,
        ref_cache,
        T.ReferenceBackend().cross_entropy_backward(np.float64(1.0), ref_logits, y)[0],
    )
    g = M.backward(b, M.LENET5, params, cache, b.cross_entropy_backward(np.float64(1.0), logits, y)[0])
    for name in params:
        np.testing.assert_allclose(g[name]["w"], g_ref[name]["w"], rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------- data
def test_digits_split_and_scaling(digits):
    assert digits.x_train.shape == (1438, 1, 32, 32) and digits.x_test.shape == (359, 1, 32, 32)
    assert set(np.unique(digits.y_train)) == set(range(10)) and digits.y_test.dtype == np.int64
    assert abs(digits.x_train.mean()) < 1e-12 and abs(digits.x_train.std() - 1) < 1e-12
    img = digits.x_train[0, 0]
    np.testing.assert_array_equal(img, np.kron(img[::4, ::4], np.ones((4, 4))))  # each 8x8 pixel is a 4x4 block
    again = D.load_digits_32()
    np.testing.assert_array_equal(again.y_test, digits.y_test)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_roundtrip(tmp_path, dtype, suffix):
    a = (np.arange(2 * 3 * 4) % 100).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3{suffix}"
    D.write_idx(path, a)
    got = D.read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, a)


def test_idx_header_layout(tmp_path):
    D.write_idx(tmp_path / "l", np.array([7, 2, 1], dtype=np.uint8))
    assert (tmp_path / "l").read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1])


@pytest.mark.parametrize(
    "raw, message",
    [
        (bytes([0x1F, 0x8B, 8, 1, 0, 0, 0, 1, 5]), "wrong magic number 0x1f8b0801"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "unknown IDX type code 0x07"),
        (bytes([0, 0]), "truncated header: 2 bytes"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]), "truncated header: 3 dimensions need 16 bytes"),
        (
            bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5]),
            "truncated data: shape (2, 3) of uint8 needs 6 bytes after the header, the file has 5",
        ),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]), "1 unexpected bytes after the data"),
    ],
)
def test_bad_idx_files_give_clear_errors(tmp_path, raw, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(raw)
    with pytest.raises(D.IdxError) as err:
        D.read_idx(path)
    assert str(err.value).startswith(str(path) + ": ") and message in str(err.value)


def _write_mnist(directory, n_train=12, n_test=6, gz=False):
    rng = np.random.default_rng(0)
    directory.mkdir(exist_ok=True)
    ext = ".gz" if gz else ""
    D.write_idx(directory / f"train-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8))
    D.write_idx(directory / f"train-labels-idx1-ubyte{ext}", (np.arange(n_train) % 10).astype(np.uint8))
    D.write_idx(directory / f"t10k-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8))
    D.write_idx(directory / f"t10k-labels-idx1-ubyte{ext}", (np.arange(n_test) % 10).astype(np.uint8))
    return directory


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_pads_to_32(tmp_path, gz):
    d = D.load_mnist(_write_mnist(tmp_path / "mnist", gz=gz))
    assert d.x_train.shape == (12, 1, 32, 32) and d.x_test.shape == (6, 1, 32, 32)
    assert d.y_train.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    border = d.x_train[:, :, :2, :]
    assert np.all(border == border.flat[0])  # the 2-pixel zero frame, standardised
    assert abs(d.x_train.mean()) < 1e-12


def test_load_mnist_errors(tmp_path):
    with pytest.raises(D.DataError, match="is not a directory"):
        D.load_mnist(tmp_path / "nope")
    d = _write_mnist(tmp_path / "m")
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.DataError, match="has no t10k-labels-idx1-ubyte"):
        D.load_mnist(d)
    D.write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(D.DataError, match="test: 6 images but labels of shape"):
        D.load_mnist(d)


# ---------------------------------------------------------------- the training loop and equivalence
def test_minibatches_do_not_depend_on_the_backend():
    cfg = T.TrainConfig(epochs=2, batch_size=5, seed=4)
    a = [idx.tolist() for _, idx in T.batches(12, cfg)]
    assert a == [idx.tolist() for _, idx in T.batches(12, cfg)]
    assert len(a) == T.n_steps(12, cfg) == 6 and sorted(sum(a[:3], [])) == list(range(12))


def test_numpy_float32_tracks_the_reference(digits, reference):
    run = T.train(NumpyBackend(), digits, CI, dtype="float32", evaluate_epochs=False)
    eq = E.compare(run, reference)
    assert eq["equivalent"], eq["failures"]
    assert eq["steps"] == 200 and eq["max_loss_rel_diff_tracked"] <= 1e-4
    assert run.losses[-1] < 0.5 * run.losses[0]  # it learns


def test_torch_cpu_tracks_the_reference(digits, reference):
    b = torch_cpu()
    for dtype, bound in (("float32", 1e-4), ("float64", 1e-10)):
        run = T.train(b, digits, CI, dtype=dtype, evaluate_epochs=False)
        eq = E.compare(run, reference)
        assert eq["equivalent"], (dtype, eq["failures"])
        assert eq["max_loss_rel_diff"] <= bound and eq["test_accuracy"] == pytest.approx(
            reference.test_accuracy, abs=0.02
        )
        if dtype == "float64":
            assert eq["final_weight_rel_diff"] <= 1e-10 and eq["first_exceed_step"] is None


class FlippedWeightGrad(NumpyBackend):
    """A classic bug: the conv weight gradient of a true convolution (kernel flipped)."""

    name = "flipped"

    def conv_backward(self, grad_out, x, w, b=None, **params):
        dx, dw, db = super().conv_backward(grad_out, x, w, b, **params)
        return dx, dw[..., ::-1, ::-1].copy(), db


def test_a_wrong_gradient_is_caught(digits, reference):
    cfg = T.TrainConfig(epochs=1, batch_size=4, lr=0.05, seed=0, max_steps=10)
    eq = E.compare(T.train(FlippedWeightGrad(), digits, cfg, dtype="float64", evaluate_epochs=False), reference)
    assert not eq["equivalent"] and eq["first_exceed_step"] == 2  # step 1's loss is before any update
    assert "at step 2" in eq["failures"][0]


def test_equivalence_check_record():
    b = torch_cpu()
    rec = equivalence_check(b, steps=8, seed=1)
    assert {
        "record",
        "backend",
        "case_id",
        "op",
        "source",
        "status",
        "bound_ratio",
        "checks",
        "seconds",
        "repro",
    } <= set(rec)
    assert (rec["record"], rec["backend"], rec["op"], rec["source"], rec["status"]) == (
        "case",
        "torch-cpu",
        "lenet",
        "lenet",
        "pass",
    )
    assert rec["bound_ratio"] < 1 and rec["lenet"]["steps"] == 8 and json.dumps(rec)
    assert rec["repro"].startswith("convspec train --backend torch-cpu --steps 8")

    class NoPool(NumpyBackend):
        name = "nopool"
        max_pool = None

    assert equivalence_check(NoPool(), steps=2, seed=1)["status"] == "unsupported"


# ---------------------------------------------------------------- the command
def test_train_command_writes_records(tmp_path):
    torch_cpu()
    out = tmp_path / "train.jsonl"
    args = [
        "train",
        "-p",
        "convspec.backends.torch_backend",
        "--backend",
        "torch-cpu",
        "--backend",
        "torch-cuda",
        "--steps",
        "6",
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--no-progress",
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    recs = results.read(out)
    assert recs[0]["record"] == "run" and recs[0]["profile"] == "train"
    train = [x for x in recs if x["record"] == "train"]
    by = {x["backend"]: x for x in train}
    assert by["torch-cuda"]["skipped"] in ("no CUDA device",) or "losses" in by["torch-cuda"]
    assert len(by["reference"]["losses"]) == 6 and by["reference"]["dtype"] == "float64"
    eq = by["torch-cpu"]["equivalence"]
    assert eq["equivalent"] and eq["steps"] == 6 and by["torch-cpu"]["dtype"] == "float32"
    r2 = CliRunner().invoke(main, args)  # appends, no second header
    assert r2.exit_code == 0 and [x["record"] for x in results.read(out)].count("run") == 1


def test_train_command_on_mnist_files_and_errors(tmp_path):
    d = _write_mnist(tmp_path / "mnist")
    out = tmp_path / "t.jsonl"
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--backend",
            "numpy",
            "--mnist",
            str(d),
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert [x["dataset"]["train"] for x in results.read(out) if x["record"] == "train"] == [12, 12]
    r = CliRunner().invoke(main, ["train", "--backend", "nope", "--out", str(out)])
    assert r.exit_code == 2 and "unknown backend 'nope'" in r.output
    (d / "train-images-idx3-ubyte").write_bytes(b"\x08\x03\x00\x00")
    r = CliRunner().invoke(main, ["train", "--backend", "numpy", "--mnist", str(d), "--out", str(out)])
    assert r.exit_code == 1 and "wrong magic number" in r.output


@pytest.mark.slow
def test_default_training_reaches_95_percent_on_torch_cpu(digits):
    """The default run (6 epochs, batch 32, lr 0.05) learns; torch-cpu is the fast backend here (the
    reference and numpy reach 0.969 and 0.975 with `convspec train`, ~3 minutes)."""
    run = T.train(torch_cpu(), digits, T.TrainConfig(), dtype="float32")
    assert run.steps == 270 and len(run.epoch_accuracy) == 6
    assert run.test_accuracy >= 0.95


def test_lenet_check_of_a_backend_whose_ops_are_stubs_is_unsupported():
    """A backend that has the methods but raises Unsupported (a fresh `convspec new-backend` scaffold): the
    LeNet check is unsupported, not an error, so a full-profile run of such a backend exits 0."""
    from convspec.backends.numpy_backend import NumpyBackend
    from convspec.conformance.lenet.check import equivalence_check

    from convspec.api import Unsupported

    class Stubbed(NumpyBackend):
        name = "stubbed"

        def conv(self, *a, **k):
            raise Unsupported("conv: not implemented yet")

    r = equivalence_check(Stubbed(), steps=2)
    assert r["status"] == "unsupported" and "conv: not implemented yet" in r["message"]
