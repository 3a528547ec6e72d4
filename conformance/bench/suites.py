"""The benchmark's layer suites: conv layers of real networks (LeNet-5, ResNet-50, VGG-16, the AlphaGo
policy network from the lectures, a 1-D sentence CNN), each with its multiplicity in the network, and the
seeded inputs a layer is timed on.

GFLOP counts are the dense ones: forward ``2*N*C_out*prod(out)*(C_in/groups)*prod(kernel)``, backward twice
that (input gradient and weight gradient; the bias gradient is negligible and not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from math import prod

import numpy as np
from convspec.reference.conv import ConvGeometry

from convspec import SpecError


@dataclass(frozen=True)
class Layer:
    """One conv layer at batch 1: x (1, c_in, *size), w (c_out, c_in/groups, *kernel)."""

    name: str
    c_in: int
    c_out: int
    size: tuple
    kernel: tuple
    stride: int | tuple = 1
    padding: int | tuple | str = 0
    dilation: int | tuple = 1
    groups: int = 1
    count: int = 1  # how many times the network has this exact layer (for weighted totals)

    def shapes(self, batch: int):
        """(x_shape, w_shape, b_shape) at `batch`."""
        x = (batch, self.c_in) + tuple(self.size)
        return x, (self.c_out, self.c_in // self.groups) + tuple(self.kernel), (self.c_out,)

    def params(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    def out_sizes(self, batch: int = 1) -> tuple:
        x, w, b = self.shapes(batch)
        return tuple(ConvGeometry(x, w, b, **self.params()).out_sizes)

    def flops(self, batch: int) -> dict:
        """Dense multiply-add count x2: forward, backward (input + weight gradients) and their sum."""
        fwd = 2 * batch * self.c_out * prod(self.out_sizes(batch)) * (self.c_in // self.groups) * prod(self.kernel)
        return {"forward": fwd, "backward": 2 * fwd, "total": 3 * fwd}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    batch: int  # CPU backends
    gpu_batch: int  # GPU backends: the same shapes at a larger batch
    layers: tuple = field(default_factory=tuple)


def _l(name, c_in, c_out, size, k, **kw) -> Layer:
    nd = len(size)
    return Layer(name, c_in, c_out, tuple(size), (k,) * nd if isinstance(k, int) else tuple(k), **kw)


def _resnet50() -> tuple:
    """ResNet-50 (torchvision / v1.5: the stride-2 of a stage's first block is in its 3x3) conv
    layers, each distinct shape once with its multiplicity in the network."""
    layers = [_l("conv1 7x7/2 3-64", 3, 64, (224, 224), 7, stride=2, padding=3)]
    stages = [(64, 256, 56, 3, 1), (128, 512, 28, 4, 2), (256, 1024, 14, 6, 2), (512, 2048, 7, 3, 2)]
    c_prev = 64
    for i, (mid, out, size, blocks, stride) in enumerate(stages, start=2):
        in_size = size * stride
        layers.append(_l(f"s{i} 1x1 {c_prev}-{mid}", c_prev, mid, (in_size, in_size), 1))
        layers.append(
            _l(
                f"s{i} 3x3/{stride} {mid}-{mid}" if stride > 1 else f"s{i} 3x3 {mid}-{mid}",
                mid,
                mid,
                (in_size, in_size),
                3,
                stride=stride,
                padding=1,
                count=1 if stride > 1 else blocks,
            )
        )
        layers.append(_l(f"s{i} 1x1 {mid}-{out}", mid, out, (size, size), 1, count=blocks))
        layers.append(
            _l(
                f"s{i} down 1x1/{stride} {c_prev}-{out}" if stride > 1 else f"s{i} down 1x1 {c_prev}-{out}",
                c_prev,
                out,
                (in_size, in_size),
                1,
                stride=stride,
            )
        )
        if stride > 1:
            layers.append(_l(f"s{i} 3x3 {mid}-{mid}", mid, mid, (size, size), 3, padding=1, count=blocks - 1))
        layers.append(_l(f"s{i} 1x1 {out}-{mid}", out, mid, (size, size), 1, count=blocks - 1))
        c_prev = out
    # stage 2's first 1x1 (64-64) and its later ones (256-64) differ; stage 2's downsample 64-256 has the
    # shape of its 1x1 64-256: merge exact duplicates, adding their counts
    merged: dict = {}
    for layer in layers:
        key = (layer.c_in, layer.c_out, layer.size, layer.kernel, layer.stride, layer.padding)
        if key in merged:
            old = merged[key]
            merged[key] = Layer(
                old.name,
                old.c_in,
                old.c_out,
                old.size,
                old.kernel,
                old.stride,
                old.padding,
                old.dilation,
                old.groups,
                old.count + layer.count,
            )
        else:
            merged[key] = layer
    return tuple(merged.values())


def _vgg16() -> tuple:
    cfg = [
        (3, 64, 224, 1),
        (64, 64, 224, 1),
        (64, 128, 112, 1),
        (128, 128, 112, 1),
        (128, 256, 56, 1),
        (256, 256, 56, 2),
        (256, 512, 28, 1),
        (512, 512, 28, 2),
        (512, 512, 14, 3),
    ]
    return tuple(_l(f"3x3 {a}-{b} @{s}", a, b, (s, s), 3, padding=1, count=c) for a, b, s, c in cfg)


SUITES = {
    s.name: s
    for s in (
        Suite(
            "lenet",
            "LeNet-5 (LeCun et al. 1998): C1, C3 and C5 on 32x32 digits",
            64,
            1024,
            (
                _l("C1 5x5 1-6 @32", 1, 6, (32, 32), 5),
                _l("C3 5x5 6-16 @14", 6, 16, (14, 14), 5),
                _l("C5 5x5 16-120 @5", 16, 120, (5, 5), 5),
            ),
        ),
        Suite("resnet50", "ResNet-50 (v1.5) conv layers, each distinct shape once, at batch 32", 32, 256, _resnet50()),
        Suite("vgg", "VGG-16's 3x3 conv layers (pad 1), each distinct shape once", 4, 64, _vgg16()),
        Suite(
            "alphago",
            "AlphaGo policy network (Silver et al. 2016, lecture 'Why CNN for Go?'): 48 planes 19x19, k=192",
            16,
            256,
            (
                _l("L1 5x5 48-192 @19", 48, 192, (19, 19), 5, padding=2),
                _l("L2-12 3x3 192-192 @19", 192, 192, (19, 19), 3, padding=1, count=11),
                _l("L13 1x1 192-1 @19", 192, 1, (19, 19), 1),
            ),
        ),
        Suite(
            "text1d",
            "Sentence CNN (Kim 2014): 300-d embeddings, 64 words, 100 maps per width; a wide (full) conv",
            50,
            512,
            (
                _l("k3 300-100 @64", 300, 100, (64,), 3),
                _l("k4 300-100 @64", 300, 100, (64,), 4),
                _l("k5 300-100 @64", 300, 100, (64,), 5),
                _l("wide k5 300-100 @64", 300, 100, (64,), 5, padding="full"),
            ),
        ),
    )
}


def tiny_suite() -> Suite:
    """Two small layers for tests and smoke runs (seconds)."""
    return Suite(
        "tiny",
        "two small layers (tests)",
        2,
        4,
        (
            _l("3x3 3-4 @8", 3, 4, (8, 8), 3, padding=1),
            _l("k3/2 2-3 @9", 2, 3, (9,), 3, stride=2),
        ),
    )


def resolve_suites(names) -> list:
    out = []
    for name in names:
        if name == "all":
            out.extend(s for s in SUITES.values() if s not in out)
        elif name == "tiny":
            out.append(tiny_suite())
        elif name in SUITES:
            if SUITES[name] not in out:
                out.append(SUITES[name])
        else:
            raise SpecError("suite", f"unknown suite {name!r}; expected one of {sorted(SUITES) + ['all', 'tiny']}")
    return out


def layer_inputs(layer: Layer, batch: int, seed: int, dtype: str):
    """Seeded (x, w, b, grad_out) NumPy arrays of `layer` at `batch`: w scaled by 1/sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    xs, ws, bs = layer.shapes(batch)
    fan_in = ws[1] * prod(ws[2:])
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) / math.sqrt(fan_in)).astype(dtype)
    b = rng.standard_normal(bs).astype(dtype)
    g = rng.standard_normal((batch, layer.c_out) + layer.out_sizes(batch)).astype(dtype)
    return x, w, b, g
