"""The CuPy backend (``cupy``, install ``convspec[cupy]``): every spec op on an NVIDIA GPU.

The ops are the shared array-module-generic kernels of convspec.backends._xp run with ``xp = cupy``
(convolution as channels-last im2col + cuBLAS GEMMs through cupy.matmul, col2im by per-tap strided
adds, so the backward is deterministic: no atomic scatter anywhere). Max pooling uses the two raw
kernels of convspec.backends._cupy.maxpool (forward with the smaller-index tie rule, backward as a
gather); their NumPy twins stand in for them when the backend is built over another array module,
which is how CI checks this backend's logic without a GPU (see `make_backend`).

cupy is imported lazily, and CUDA is first touched in a forked probe process, never in the calling
process: worker processes forked later can still initialise CUDA. ``convspec backends`` therefore
lists this backend as "unavailable: cupy not installed", "unavailable: no CUDA device" or
"unavailable: CUDA runtime error: ..." instead of failing.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp

import numpy as np

from convspec.api.backend import Backend
from convspec.api.hookspecs import hookimpl

from ._cupy import maxpool as _maxpool
from ._xp import ArrayOps
from ._xp.arrays import cast, common_dtype, grad

PROBE_TIMEOUT = 180.0  # seconds for the forked availability probe (first CUDA use compiles kernels)
_NO_DEVICE = 100  # cudaErrorNoDevice


def _import_cupy():
    return importlib.import_module("cupy")


def _cuda_error(exc) -> str:
    if getattr(exc, "status", None) == _NO_DEVICE or "cudaErrorNoDevice" in str(exc):
        return "no CUDA device"
    return f"CUDA runtime error: {exc}"


def probe(cp) -> str | None:
    """None when `cp` (the cupy module) can run on a device, else the reason. Never raises: the
    device count, then a first use (allocation, an elementwise kernel, a cuBLAS GEMM, the copy back)."""
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return _cuda_error(exc)
    try:
        if int(count) < 1:
            return "no CUDA device"
        a = cp.arange(6, dtype=cp.float64).reshape(2, 3)
        got = float(cp.asnumpy((a @ a.T * 2).sum()))
        if got != 166.0:
            return f"CUDA first use gave a wrong result ({got} for 166)"
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "cuda" in type(exc).__name__.lower():
            return _cuda_error(exc)
        return f"CUDA error at first use: {type(exc).__name__}: {exc}"
    return None


def _probe_child(conn):
    try:
        reason = probe(_import_cupy())
    except BaseException as exc:  # noqa: BLE001 - the child reports everything, the import included
        reason = f"CUDA error at first use: {type(exc).__name__}: {exc}"
    conn.send(reason)
    conn.close()


def probe_in_child(timeout: float = PROBE_TIMEOUT) -> str | None:
    """`probe` in a forked child, so this process never initialises CUDA."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_probe_child, args=(child,), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            return f"CUDA probe gave no answer within {timeout:g} s"
        return parent.recv()
    except (EOFError, OSError):
        proc.join(5)
        return f"CUDA probe crashed (exit code {proc.exitcode})"
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()


class CupyBackend(ArrayOps, Backend):
    """The spec ops over an array module: cupy by default (the real backend); `make_backend(numpy)`
    gives the same class over NumPy, with the max-pool kernels replaced by their NumPy twins."""

    name = "cupy"
    device = "cuda:0"
    dtypes = ("float32", "float64")
    col_limit = 1 << 30  # bytes of im2col columns per batch chunk: fewer, larger GEMMs on a GPU

    def __init__(self, xp=None):
        self._xp = xp
        self._reason = None
        self._checked = False

    @property
    def xp(self):
        if self._xp is None:
            self._xp = _import_cupy()
        return self._xp

    @property
    def version(self) -> str:
        if self._xp is not None and not _maxpool.on_gpu(self._xp):
            return f"host twin over {getattr(self._xp, '__name__', type(self._xp).__name__)}"
        try:
            return str(_import_cupy().__version__)
        except Exception:
            return ""

    # ------------------------------------------------------------------ contract
    def availability(self) -> str | None:
        if self._xp is not None and not _maxpool.on_gpu(self._xp):
            return None  # the host twin needs no device
        if self._checked:
            return self._reason
        try:
            _import_cupy()
        except ImportError:
            reason = "cupy not installed"
        except Exception as exc:  # a broken install
            reason = f"cupy failed to import: {type(exc).__name__}: {exc}"
        else:
            try:
                reason = probe_in_child()
            except Exception as exc:  # no fork on this platform, or the process could not start
                reason = f"CUDA probe failed to start: {type(exc).__name__}: {exc}"
            if reason and "cudaErrorInitializationError" in reason:
                reason = probe(_import_cupy())  # this process already uses CUDA: check it here
        self._reason, self._checked = reason, True
        return reason

    def from_numpy(self, a):
        a = np.asarray(a)
        if a.dtype.kind == "O":
            return a  # exact (Fraction) arrays stay on the host; the ops report them unsupported
        return self.xp.asarray(a)

    def to_numpy(self, a):
        if _maxpool.on_gpu(self.xp) and isinstance(a, self.xp.ndarray):
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def synchronize(self) -> None:
        if self._xp is not None and _maxpool.on_gpu(self._xp):
            self._xp.cuda.get_current_stream().synchronize()

    # ------------------------------------------------------------------ max pooling: own kernels
    def max_pool(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        return _maxpool.max_pool(self.xp, x, geo)[0]

    def max_pool_indices(self, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        return _maxpool.max_pool(self.xp, x, geo, want_indices=True)[2]

    def max_pool_backward(self, grad_out, x, kernel_size, *, stride=None, padding=0, dilation=1, ceil_mode=False):
        xp = self.xp
        x, geo = self._pool(x, kernel_size, stride, padding, dilation, ceil_mode)
        values, arg, _ = _maxpool.max_pool(xp, x, geo)
        g = grad(xp, grad_out, values.shape)
        g = cast(g, common_dtype(xp, g, x))
        return (_maxpool.gather_grad(xp, g, arg, x.shape, geo),)


def make_backend(xp=None) -> CupyBackend:
    """The CuPy backend over array module `xp` (default: cupy). Over NumPy (or a stand-in for it) the
    whole backend runs on the host, raw kernels replaced by their twins: the CI form of this backend."""
    return CupyBackend(xp)


__all__ = ["CupyBackend", "make_backend", "probe", "probe_in_child"]


@hookimpl
def register_backends(register):
    register(CupyBackend())
