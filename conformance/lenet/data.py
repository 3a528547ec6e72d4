"""Handwritten digits for LeNet-5, without any download at run time.

- `load_digits_32()`: scikit-learn's bundled `load_digits` (1,797 8x8 images, 16 grey levels, classes
  0-9, shipped inside the scikit-learn package), each pixel repeated into a 4x4 block so an image is
  LeNet's 32x32 (nearest-neighbour scaling: exact, no interpolation choices). A fixed split: a
  permutation from SPLIT_SEED puts 360 images (20 %) in the test set.
- `load_mnist(dir)`: MNIST's IDX files for users who have them (train-images-idx3-ubyte, ...,
  optionally gzipped); the 28x28 images are zero-padded to 32x32, as in LeCun et al. (1998).
- `read_idx(path)`: the IDX format: 2 zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
  0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 per
  dimension, then the data (big-endian, row-major). A malformed file raises IdxError naming the file
  and what is wrong (bad magic, unknown type, truncated header or data, trailing bytes).

Pixels are scaled to [0, 1] and standardised with the training set's mean and standard deviation.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convspec import SpecError

SPLIT_SEED = 0
TEST_FRACTION = 0.2

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxError(SpecError, ValueError):
    """An IDX file that cannot be read; `param` is the file's path."""


class DataError(SpecError, ValueError):
    """A data set that cannot be used (missing files, mismatched images and labels)."""


@dataclass
class Dataset:
    """float64 images (N, 1, 32, 32), standardised, and int64 labels, split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str

    def describe(self) -> dict:
        return {
            "name": self.name,
            "train": int(len(self.y_train)),
            "test": int(len(self.y_test)),
            "image": list(self.x_train.shape[1:]),
        }


def _standardise(x_train, x_test):
    mean, std = float(x_train.mean()), float(x_train.std())
    return (x_train - mean) / std, (x_test - mean) / std


def load_digits_32(*, test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is in the test and digits extras
        raise DataError(
            "digits",
            "needs scikit-learn: pip install scikit-learn (in a convspec checkout: "
            'pip install ".[digits]"), or pass --mnist DIR',
        ) from exc
    d = load_digits()
    images = d.images.astype(np.float64) / 16.0  # (1797, 8, 8), grey levels 0..16
    images = np.kron(images, np.ones((1, 4, 4)))[:, None]  # (1797, 1, 32, 32): 4x4 blocks
    labels = d.target.astype(np.int64)
    perm = np.random.default_rng(split_seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = perm[:n_test], perm[n_test:]
    x_train, x_test = _standardise(images[train], images[test])
    return Dataset(x_train, labels[train], x_test, labels[test], "sklearn-digits-8x8-to-32x32")


def read_idx(path) -> np.ndarray:
    """The array stored in one IDX file (gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as exc:
        raise IdxError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) < 4:
        raise IdxError(str(path), f"truncated header: {len(raw)} bytes, an IDX file starts with a 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise IdxError(
            str(path),
            f"wrong magic number 0x{raw[:4].hex()}: an IDX file starts with two zero bytes, "
            "a type code and the number of dimensions",
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise IdxError(
            str(path),
            f"unknown IDX type code 0x{code:02x} in the magic number; "
            f"expected one of {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}",
        )
    if ndim < 1:
        raise IdxError(str(path), "the magic number declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(str(path), f"truncated header: {ndim} dimensions need {header} bytes, the file has {len(raw)}")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    want = int(np.prod(shape)) * dtype.itemsize
    have = len(raw) - header
    if have < want:
        raise IdxError(
            str(path),
            f"truncated data: shape {shape} of {dtype.name} needs {want} bytes after the header, the file has {have}",
        )
    if have > want:
        raise IdxError(str(path), f"{have - want} unexpected bytes after the data of shape {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


_MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(directory: Path, names) -> Path:
    for name in names:
        for candidate in (directory / name, directory / (name + ".gz")):
            if candidate.is_file():
                return candidate
    raise DataError("--mnist", f"{directory} has no {names[0]} (or {names[0]}.gz, {names[1]})")


def load_mnist(directory) -> Dataset:
    """MNIST from its four IDX files in `directory`: images zero-padded from 28x28 to 32x32."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError("--mnist", f"{directory} is not a directory")
    arrays = {key: read_idx(_find(directory, names)) for key, names in _MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3:
            raise DataError("--mnist", f"{split} images must be (N, rows, cols), got shape {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError("--mnist", f"{split}: {images.shape[0]} images but labels of shape {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(
                "--mnist", f"{split} labels must lie in 0..9, got values in [{labels.min()}, {labels.max()}]"
            )
    out = {}
    for split in ("train", "test"):
        img = arrays[f"{split}_images"].astype(np.float64) / 255.0
        rows, cols = img.shape[1:]
        if rows > 32 or cols > 32:
            raise DataError("--mnist", f"images of {rows}x{cols} do not fit LeNet's 32x32 input")
        top, left = (32 - rows) // 2, (32 - cols) // 2
        out[split] = np.pad(img, ((0, 0), (top, 32 - rows - top), (left, 32 - cols - left)))[:, None]
    x_train, x_test = _standardise(out["train"], out["test"])
    return Dataset(
        x_train,
        arrays["train_labels"].astype(np.int64),
        x_test,
        arrays["test_labels"].astype(np.int64),
        f"mnist:{directory}",
    )


def write_idx(path, array: np.ndarray) -> None:
    """Write `array` as an IDX file (the inverse of read_idx; used by the tests)."""
    array = np.asarray(array)
    code = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_TYPES.items()}[array.dtype.newbyteorder("=").str]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(np.dtype(_IDX_TYPES[code])).tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)
