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
  (e.g. which NaN max-pool picks). A declared deviation that shows up is reported as a deviation, never
  hidden; a case declared deviant that matches the spec is reported as a pass.

:class:`Backend` is a convenient base class with these defaults; a backend does not have to inherit it.
"""
from __future__ import annotations

import numpy as np


class Unsupported(Exception):
    """Raised by a backend op (or ``Backend.unsupported``) for a feature it does not implement."""


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

    def deviation(self, case) -> str | None:
        return None

    def supports(self, op: str) -> bool:
        """Whether the backend has a forward and backward for `op` (index ops need only the forward)."""
        fwd = getattr(self, op, None)
        return callable(fwd) and (op.endswith("_indices") or callable(getattr(self, op + "_backward", None)))
