"""Fault-injection backends, loaded with `-p fault_plugins`: each one is the reference (engine_plugins'
ReferenceBackend) with one fault in relu (or in its training ops): it raises, hangs, exits, segfaults,
leaks memory, returns junk, mutates its inputs, prints to stdout, or hangs in availability()."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
from convspec.backends.numpy_backend import NumpyBackend
from convspec.conformance.backend import Unsupported
from engine_plugins import ReferenceBackend

from convspec import hookimpl
from convspec import reference as R

_LEAK: list = []


class Raises(ReferenceBackend):
    name = "fault-raises"

    def relu(self, x):
        raise RuntimeError("backend exploded")


class HangsAlways(ReferenceBackend):
    name = "fault-hangs"

    def relu(self, x):
        time.sleep(3600)


class Exits(ReferenceBackend):
    name = "fault-exits"

    def relu(self, x):
        sys.exit(0)


class Segfaults(ReferenceBackend):
    name = "fault-segv"

    def relu(self, x):
        os.kill(os.getpid(), signal.SIGSEGV)


class Leaks(ReferenceBackend):
    name = "fault-leaks"

    def relu(self, x):
        _LEAK.append(np.ones(2**25))  # 256 MiB, touched, never freed
        return R.relu(x)


class ReturnsList(ReferenceBackend):
    name = "fault-list"

    def relu(self, x):
        return R.relu(x).tolist()


class ReturnsNone(ReferenceBackend):
    name = "fault-none"

    def relu(self, x):
        return None


class ReturnsStr(ReferenceBackend):
    name = "fault-str"

    def relu(self, x):
        return "relu"


class MutatesForward(ReferenceBackend):
    name = "fault-mutates"

    def relu(self, x):
        y = R.relu(x)
        x *= 2
        return y


class MutatesBackward(ReferenceBackend):
    name = "fault-mutates-bw"

    def relu_backward(self, g, x):
        out = R.relu_backward(g, x)
        g[...] = 0
        return out


class Prints(ReferenceBackend):
    name = "fault-prints"

    def relu(self, x):
        print("JUNK from the backend")
        os.write(1, b"C-level junk\n")
        return R.relu(x)


class AvailabilityHangs(ReferenceBackend):
    name = "fault-avail-hangs"

    def availability(self):
        time.sleep(3600)


class Slow(ReferenceBackend):
    """Every relu takes a while and leaves its process id in $CONVSPEC_FAULT_PIDS (Ctrl-C and orphan tests)."""

    name = "fault-slow"

    def relu(self, x):
        d = os.environ.get("CONVSPEC_FAULT_PIDS")
        if d:
            open(os.path.join(d, str(os.getpid())), "w").close()
        time.sleep(float(os.environ.get("CONVSPEC_FAULT_SLEEP", "0.3")))
        return R.relu(x)


class TrainExits(NumpyBackend):
    name = "fault-train-exits"

    def conv(self, *args, **kw):
        sys.exit(0)

    def availability(self):
        return None


class TrainHangs(NumpyBackend):
    name = "fault-train-hangs"

    def conv(self, *args, **kw):
        time.sleep(3600)


class HalfWritten(NumpyBackend):
    """Has every op name, but linear is a stub raising Unsupported (a scaffolded backend half done)."""

    name = "fault-half"

    def linear(self, *args, **kw):
        raise Unsupported("linear is not written yet")


class TrainWrong(NumpyBackend):
    """The NumPy backend with linear scaled by 1.05: trains, but not like the reference."""

    name = "fault-train-wrong"

    def linear(self, *args, **kw):
        return super().linear(*args, **kw) * 1.05


class TwoWays(ReferenceBackend):
    """relu wrong in two ways: the wrong shape on inputs of even size, wrong values on the others."""

    name = "fault-two-ways"

    def relu(self, x):
        y = R.relu(x)
        return y.reshape(-1) if x.size % 2 == 0 and x.ndim > 1 else y + 1


FAULTS = (
    TrainWrong,
    TwoWays,
    Raises,
    HangsAlways,
    Exits,
    Segfaults,
    Leaks,
    ReturnsList,
    ReturnsNone,
    ReturnsStr,
    MutatesForward,
    MutatesBackward,
    Prints,
    AvailabilityHangs,
    Slow,
    TrainExits,
    TrainHangs,
    HalfWritten,
)


@hookimpl
def register_backends(register):
    register(ReferenceBackend())
    for cls in FAULTS:
        register(cls())
