"""The NumPy backend's GEMMs split into fixed blocks over the calling thread and the pool's helpers
(backends/_xp/conv.py: mm, _map, _Job): the block boundaries come from the shapes alone, the result is the
same bit for bit whichever thread ran a block (inner-dimension pieces summed in piece order; blocks of the
longer output dimension written in place), the caller waits for a block a helper has started, and an error
in a block is re-raised in the calling thread. In float32 the output blocks are within rounding of one
matmul but not its bits (OpenBLAS rounds a block's edge columns differently), so the tests compare the
pooled result with the same blocks run inline."""

from __future__ import annotations

import threading

import conv_checks as C
import numpy as np
import pytest
from convspec.backends._xp import conv as K

_bits = C.bits


_ThreadPool = C.ThreadPool


class _StalledHelper:
    """A pool whose one helper takes the first block it can and then stalls (descheduled: its core busy)
    until `release` is set; submit() returns once it holds that block, so the caller gets the others."""

    def __init__(self):
        self.holding = threading.Event()
        self.release = threading.Event()
        self.threads = []

    def submit(self, fn):
        t = threading.Thread(target=fn)
        self.threads.append(t)
        t.start()
        assert self.holding.wait(10)

    def wrap(self, fn):
        """fn, stalled in the helper's thread until released."""

        def stalled(item):
            if threading.current_thread() in self.threads:
                self.holding.set()
                assert self.release.wait(10)
            return fn(item)

        return stalled

    def finish(self):
        self.release.set()
        for t in self.threads:
            t.join(10)
            assert not t.is_alive()


def test_the_caller_waits_for_a_block_a_helper_has_started(monkeypatch):
    """A block a helper holds is never run twice (blocks may write into the result): the call returns
    only once the helper has finished it, with every block run once."""
    monkeypatch.setitem(K._split_state, "workers", 2)
    pool = _StalledHelper()
    out = np.zeros(6)
    runs = []
    done = []

    def fill(i):
        runs.append(i)
        out[i] = i + 1

    t = threading.Thread(target=lambda: done.append(K._map(pool, pool.wrap(fill), list(range(6)))))
    t.start()
    assert pool.holding.wait(10)
    assert not done  # still waiting for the stalled helper's block
    pool.finish()
    t.join(10)
    assert done and list(out) == [1, 2, 3, 4, 5, 6] and sorted(runs) == list(range(6))


def test_an_error_in_a_block_is_raised_in_the_caller(monkeypatch):
    monkeypatch.setitem(K._split_state, "workers", 2)

    def boom(i):
        if i == 4:
            raise ValueError("block 4")
        return np.zeros(2)

    for _ in range(5):  # block 4 run by either thread
        pool = _ThreadPool()
        with pytest.raises(ValueError, match="block 4"):
            K._map(pool, boom, list(range(8)))
        pool.join()
    stalled = _StalledHelper()  # the helper's block raises after the caller has done its own

    def helper_raises(i):
        if threading.current_thread() not in stalled.threads:
            stalled.release.set()  # the caller's block lets the stalled helper go on
            return i
        raise ValueError(f"block {i}")

    with pytest.raises(ValueError, match="block 0"):
        K._map(stalled, stalled.wrap(helper_raises), [0, 1])
    stalled.finish()


def _blocks_seen(monkeypatch, a, b, workers, pool):
    """The items mm hands to _map (its block boundaries) with `workers` threads and `pool`."""
    seen = []
    real_map = K._map

    def spy(p, fn, items, *args, **kw):
        seen.append(list(items))
        return real_map(p, fn, items, *args, **kw)

    with monkeypatch.context() as m:
        m.setitem(K._split_state, "workers", workers)
        m.setattr(K, "_pool", lambda: pool)
        m.setattr(K, "_map", spy)
        K.mm(np, a, b)
    return seen


@pytest.mark.parametrize("shape", [(16, 5 * K.K_BLOCK, 24), (40, 4608, 96), (40, 700, 3000), (3000, 800, 64)])
def test_block_boundaries_come_from_the_shape_alone(monkeypatch, shape):
    M, Kd, N = shape
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((M, Kd)).astype(np.float32), rng.standard_normal((Kd, N)).astype(np.float32)
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 1 << 16)
    with K._blas_split(np):
        threads = _ThreadPool()
        runs = [_blocks_seen(monkeypatch, a, b, w, p) for w, p in ((1, None), (2, threads), (4, threads))]
        threads.join()
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) == 1 and len(runs[0][0]) > 1
    bounds = runs[0][0]
    assert bounds[0][0] == 0 and bounds[-1][1] == (Kd if Kd >= 4 * max(M, N) else max(M, N))
    assert all(hi == lo for (_, hi), (lo, _) in zip(bounds, bounds[1:]))


THIN = [(16, 5 * K.K_BLOCK, 24), (40, 4608, 96), (8, 9000, 8)]  # split along the inner dimension


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", THIN)
def test_thin_products_are_the_same_whichever_thread_ran_a_piece(monkeypatch, dtype, shape):
    """mm's inner-dimension pieces: the in-order sum of the pieces' products, bit for bit, inline and with
    a helper (single-threaded BLAS inside a conv call)."""
    M, Kd, N = shape
    rng = np.random.default_rng(M + Kd + N)
    a, b = rng.standard_normal((M, Kd)).astype(dtype), rng.standard_normal((Kd, N)).astype(dtype)
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 1 << 16)
    with K._blas_split(np):
        monkeypatch.setitem(K._split_state, "workers", 2)
        monkeypatch.setattr(K, "_pool", lambda: None)
        inline = K.mm(np, a, b)
        step = K.K_BLOCK if Kd >= 4 * K.K_BLOCK else K._block(Kd, 4, 256)
        want = a[:, :step] @ b[:step]
        for lo in range(step, Kd, step):
            want += a[:, lo : lo + step] @ b[lo : lo + step]
        threads = _ThreadPool()
        monkeypatch.setattr(K, "_pool", lambda: threads)
        pooled = [K.mm(np, a, b) for _ in range(5)]
        out = np.empty((M, N), dtype)
        assert K.mm(np, a, b, out=out) is out
        threads.join()
    assert inline.dtype == dtype
    np.testing.assert_array_equal(_bits(inline), _bits(want))
    for r in pooled + [out]:
        np.testing.assert_array_equal(_bits(r), _bits(inline))
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(inline, a.astype(np.float64) @ b, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40, 700, 3000), (3000, 800, 64)])
def test_output_blocks_are_the_same_whichever_thread_ran_them(monkeypatch, dtype, shape):
    """Blocks of the longer output dimension, written in place: the same bits inline and with a helper,
    within rounding of one matmul."""
    M, Kd, N = shape
    rng = np.random.default_rng(M + N)
    a, b = rng.standard_normal((M, Kd)).astype(dtype), rng.standard_normal((Kd, N)).astype(dtype)
    monkeypatch.setattr(K, "SPLIT_MIN_FLOPS", 1 << 16)
    with K._blas_split(np):
        monkeypatch.setitem(K._split_state, "workers", 2)
        monkeypatch.setattr(K, "_pool", lambda: None)
        inline = K.mm(np, a, b)
        threads = _ThreadPool()
        monkeypatch.setattr(K, "_pool", lambda: threads)
        pooled = [K.mm(np, a, b) for _ in range(3)]
        threads.join()
    for p in pooled:
        np.testing.assert_array_equal(_bits(p), _bits(inline))
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(inline, a.astype(np.float64) @ b, rtol=1e-4, atol=tol)
