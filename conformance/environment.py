"""The machine and software a run happened on: the one `environment()` that results files (the `run`
record's "environment") and bench files (their "environment") both record.

Every field is plain JSON. Importing this module imports no array library beyond NumPy: torch's version
is read from the module when it is already imported, else from its installed distribution's metadata.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy as np

import convspec


def environment(threads: dict | None = None) -> dict:
    """python, numpy, platform, machine, processor (the CPU model where the OS names it), cpus, cpus_usable
    (the CPUs this process may run on, where the OS says), host, convspec, blas (see blas()), torch (when
    installed), and
    `threads` (what `convspec bench` set: torch intra-op and BLAS threads) when given."""
    env = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpus": os.cpu_count(),
        "host": socket.gethostname(),
        "convspec": getattr(convspec, "__version__", "0.1.0"),
    }
    try:
        env["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        pass
    env["blas"] = blas()
    torch = _torch_version()
    if torch is not None:
        env["torch"] = torch
    if threads is not None:
        env["threads"] = threads
    return env


def blas() -> dict:
    """NumPy's BLAS as it runs in this process: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE as the environment sets
    them ("" when unset: OpenBLAS picks its kernels from the CPU), and, where threadpoolctl is installed (the
    bench extra), the library and the kernel family in use (e.g. openblas 'Haswell' or 'SkylakeX'). Some
    machines pin older kernels this way; on an AVX-512 CPU the Haswell (AVX2) kernels halve the GEMM rate,
    which a speed comparison with a framework using AVX-512 (PyTorch's oneDNN) must state."""
    info = {
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE", ""),
    }
    libs = blas_libraries()
    if libs:
        info.update(library=str(libs[0]["library"] or ""), architecture=str(libs[0]["architecture"] or ""))
    return info


def blas_libraries() -> list | None:
    """Every BLAS threadpoolctl finds in this process (library, version, kernel architecture, threading layer,
    threads), or None where threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [
        {
            "library": p.get("internal_api"),
            "version": p.get("version"),
            "architecture": p.get("architecture"),
            "threading_layer": p.get("threading_layer"),
            "threads": p.get("num_threads"),
        }
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_version() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    try:
        return version("torch")
    except PackageNotFoundError:
        return None
