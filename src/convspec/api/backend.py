"""The backend contract: everything the engine needs from a backend, documented in one place.

A backend is an object with

- ``name``: unique short name (``numpy``, ``torch-cpu``); ``device``: where it computes (``cpu``, ``cuda:0``).
- ``dtypes``: the dtype names it supports (``float32``, ``float64``, ...); other dtypes are "unsupported".
- ``version``: a string for the reports (the library version the backend wraps).
- ``availability()``: ``None`` when usable, else the reason it is not ("CUDA not available",
  "cupy not installed"). Called before anything else; must not raise.
- ``from_numpy(a)`` / ``to_numpy(t)``: conversion to and from the backend's array type, kept apart from
  the op calls so the engine's timings exclude transfers; ``synchronize()`` waits for queued work
  (GPU backends) so a timing or a timeout covers the computation.
- the ops, under the reference's names and signatures (``conv(x, w, b=None, *, stride, padding, ...)``,
  ``conv_backward(grad_out, x, w, b, ...) -> (dx, dw, db)``, ...; see convspec.reference.OPS), taking
  and returning backend arrays. ``padding`` arrives in every form the spec has (int, per-dim tuple,
  (begin, end) pairs, 'valid' / 'same' / 'full'). An op that is missing, or that raises
  :class:`Unsupported`, is reported "unsupported", never "failed".
- ``deviation(case)``: ``None``, or the reason this backend is known to differ from the spec on this case
  (e.g. which NaN max-pool picks): a string, or a :class:`Deviation` naming the checks it concerns
  (``"forward"``, ``"indices"``, ``"grad x"``, ...). A declared deviation that shows up is reported as a
  deviation, never hidden; a failure of a check the deviation does not name is a failure; a case
  declared deviant that matches the spec is reported as a pass.
- ``flushes_subnormals`` (optional, default False): a backend whose arithmetic flushes subnormal results
  (and inputs) to zero (a CPU in FTZ/DAZ mode, as XLA's and TensorFlow's CPU kernels run): every bound of
  its cases grows by the dtype's smallest normal number. A precision property the spec bounds, not a
  deviation.
- ``product_roundoff`` (optional, default 0): for a mixed-precision tier that rounds both factors of
  every product in its convolutions and matrix products to a narrower format (TF32: 2**-11), the
  unit roundoff of that format; the error bounds of those ops grow by (2u + u^2) * (|x| conv |w|).

:class:`Backend` is a convenient base class with these defaults; a backend does not have to inherit it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Unsupported(Exception):
    """Raised by a backend op for a feature it does not implement."""


@dataclass(frozen=True)
class Deviation:
    """A known difference from the spec: why, and which checks of the case it concerns (None: all)."""

    reason: str
    checks: tuple | None = None


def as_deviation(declared) -> Deviation | None:
    """A backend's deviation(case) answer as a Deviation (a plain string concerns every check)."""
    if declared is None or declared == "":
        return None
    return declared if isinstance(declared, Deviation) else Deviation(str(declared))


def flushes_subnormals(backend) -> bool:
    return bool(getattr(backend, "flushes_subnormals", False))


def product_roundoff(backend) -> float:
    return float(getattr(backend, "product_roundoff", 0.0) or 0.0)


class Backend:
    name: str = "unnamed"
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("float32", "float64")
    version: str = ""

    def availability(self) -> str | None:
        return None

    def from_numpy(self, a: np.ndarray):
        return a

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        pass

    product_roundoff: float = 0.0
    flushes_subnormals: bool = False

    def deviation(self, case) -> str | Deviation | None:
        return None

    def supports(self, op: str) -> bool:
        """Whether the backend has a forward and backward for `op` (index ops need only the forward)."""
        fwd = getattr(self, op, None)
        return callable(fwd) and (op.endswith("_indices") or callable(getattr(self, op + "_backward", None)))
