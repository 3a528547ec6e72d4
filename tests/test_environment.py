"""The run environment records NumPy's BLAS kernels as the process runs them (a speed figure without them is
unexplained: on an AVX-512 CPU a pinned OPENBLAS_CORETYPE=Haswell halves the GEMM rate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from convspec.conformance.environment import blas, environment


def test_blas_names_the_environment_pins():
    info = blas()
    assert info["openblas_coretype"] == os.environ.get("OPENBLAS_CORETYPE", "")
    assert info["openblas_l2_size"] == os.environ.get("OPENBLAS_L2_SIZE", "")
    assert environment()["blas"] == info


def test_blas_reports_the_kernel_family_the_process_uses():
    pytest.importorskip("threadpoolctl")
    code = "import json; from convspec.conformance.environment import blas; print(json.dumps(blas()))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    pinned = json.loads(
        subprocess.check_output([sys.executable, "-c", code], env={**env, "OPENBLAS_CORETYPE": "Haswell"})
    )
    if pinned.get("library") != "openblas":
        pytest.skip(f"NumPy's BLAS is {pinned.get('library')!r}, not OpenBLAS")
    assert pinned["openblas_coretype"] == "Haswell" and pinned["architecture"] == "Haswell"
    free = json.loads(subprocess.check_output([sys.executable, "-c", code], env=env))
    assert free["openblas_coretype"] == "" and free["architecture"]  # OpenBLAS's own pick for this CPU
