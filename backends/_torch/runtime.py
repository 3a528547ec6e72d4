"""torch, imported lazily, and the process-wide settings the backends depend on."""

from __future__ import annotations

import contextlib
import os

THREADS_ENV = "CONVSPEC_TORCH_THREADS"

_torch = None


def import_torch():
    """Import torch once and set its intra-op thread count: CONVSPEC_TORCH_THREADS, else 1.

    One thread by default: conformance cases and LeNet-sized batches are too small to gain from more,
    and conformance workers (-j) and pytest-xdist run processes side by side; with several OpenMP
    threads per process the spinning workers oversubscribe the cores (measured on a loaded 2-core
    machine: LeNet training 15x slower with 2 threads than with 1). Benchmarks set it explicitly."""
    global _torch
    if _torch is None:
        import torch

        want = os.environ.get(THREADS_ENV, "1")
        try:
            n = int(want)
        except ValueError:
            n = 1
        if n >= 1 and torch.get_num_threads() != n:
            torch.set_num_threads(n)
        _torch = torch
    return _torch


def imported():
    """torch if import_torch() has run, else None (never imports it)."""
    return _torch


def torch_version() -> str:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return ""


@contextlib.contextmanager
def precision(device: str, tf32: bool):
    """TF32 on for the tf32 tier, off otherwise, while the block runs on a CUDA device (cuDNN's own
    default for convolutions is ON, so torch-cuda must switch it off to be a float32 tier)."""
    torch = import_torch()
    if not device.startswith("cuda"):
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
