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
    (the CPUs this process may run on, where the OS says), host, convspec, torch (when installed), and
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
    torch = _torch_version()
    if torch is not None:
        env["torch"] = torch
    if threads is not None:
        env["threads"] = threads
    return env


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
