"""A conformance case: one op, its parameters, a dtype and a recipe for its input data.

A case is plain data and serialises to one line of JSON; `convspec run --backend B --case '<json>'`
re-creates exactly the same inputs, so every failure carries a one-line reproduction.

Data recipes (`data`):
- ``normal``: standard-normal values (scaled by ``scale``) from ``seed``;
- ``ints``: small integers in [-3, 3] from ``seed``, for exact cases (every partial sum representable);
- ``ties``: integers in [0, 2] from ``seed``, so pooling windows often hold equal maxima;
- ``nan``: like ``normal`` with about a quarter of the values NaN;
- ``explicit``: the arrays are given in ``values`` (lecture examples, crafted corner cases).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from convspec import SpecError

from . import registry
from .registry import OPS


@dataclass(frozen=True)
class Case:
    op: str
    shapes: dict  # input name -> shape (list of ints), or None for an absent optional input (bias)
    params: dict
    dtype: str = "float64"
    data: str = "normal"
    seed: int = 0
    scale: float = 1.0
    values: dict | None = None  # explicit data: input name -> nested list
    exact: bool = False  # forward and backward must match the reference bit for bit
    source: str = "property"
    name: str = ""  # a readable label (golden/corner id)

    # -- identity -------------------------------------------------------------------------------
    def spec(self) -> dict:
        """The case as plain JSON data (non-finite values as the strings "nan", "inf", "-inf")."""
        d = asdict(self)
        return jsonable({k: v for k, v in d.items() if v not in (None, "", False) or k in ("shapes",)})

    def to_json(self) -> str:
        return json.dumps(self.spec(), separators=(",", ":"), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "Case":
        """Parse and validate a case (e.g. a repro command's); a CaseError says what is wrong."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaseError("case", f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        _validate(d)
        d["params"] = _untuple(d.get("params", {}))
        return cls(**d)

    @property
    def id(self) -> str:
        """Readable and unique: op[dims, key params, dtype, data]#hash."""
        p = self.params
        bits = []
        info = registry.get(self.op)
        x = self.shapes.get(info.arrays[0])
        if info.spatial and x:
            bits.append(f"{len(x) - 2}d")
        for k in registry.ID_PARAMS:
            if k in p:
                bits.append(f"{k}={_short(p[k])}")
        bits += [self.dtype, self.data]
        digest = hashlib.sha1(self.to_json().encode()).hexdigest()[:8]
        label = f"{self.source}:{self.name}:" if self.name else f"{self.source}:"
        return f"{label}{self.op}[{','.join(bits)}]#{digest}"

    # -- data -----------------------------------------------------------------------------------
    def inputs(self) -> list:
        """The op's positional inputs as NumPy arrays in the case dtype (None for an absent bias)."""
        info = OPS[self.op]
        rng = np.random.default_rng(self.seed)
        out = []
        for name in info.arrays:
            shape = self.shapes.get(name)
            if info.special_inputs.get(name) == "labels":
                out.append(self._labels(rng, name, info))
                continue
            if shape is None:
                out.append(None)
                continue
            if self.values is not None:
                a = _floats(self.values[name]).reshape(shape)
            else:
                a = _draw(rng, self.data, tuple(shape), self.scale)
            out.append(a.astype(self.dtype))
        return out

    def _labels(self, rng, name, info):
        """Class indices in [0, K), K = axis 1 of the op's first input."""
        if self.values is not None and name in self.values:
            return np.asarray(self.values[name], dtype=np.int64)
        k = self.shapes[info.arrays[0]][1]
        return rng.integers(0, k, size=self.shapes[name]).astype(np.int64)

    def grad_output(self, shape) -> np.ndarray:
        """The incoming gradient for the backward check (integers for exact cases)."""
        rng = np.random.default_rng(self.seed + 1_000_003)
        if self.values is not None and "grad_out" in self.values:
            return _floats(self.values["grad_out"]).reshape(shape).astype(self.dtype)
        kind = "ints" if self.exact or self.data == "ties" else "normal"
        return _draw(rng, kind, tuple(shape), 1.0).astype(self.dtype)


DATA_KINDS = ("normal", "ints", "ties", "nan", "explicit")
DTYPES = ("float16", "float32", "float64")


class CaseError(SpecError, ValueError):
    """A case specification that is not well formed."""


def jsonable(v):
    """v with every non-finite float written as the string "nan", "inf" or "-inf" (strict JSON)."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (float, np.floating)) and not np.isfinite(v):
        return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _floats(nested) -> np.ndarray:
    """Explicit values (numbers, or "nan"/"inf"/"-inf" strings) as a float64 array."""
    return np.asarray(nested, dtype=object).astype(np.float64)


def _validate(d) -> None:
    if not isinstance(d, dict):
        raise CaseError("case", f"must be a JSON object, got {type(d).__name__}")
    known = {f.name for f in fields(Case)}
    if set(d) - known:
        raise CaseError("case", f"unknown fields {sorted(set(d) - known)}; a case has {sorted(known)}")
    op = d.get("op")
    if op not in OPS:
        raise CaseError("case", f"op must be one of {', '.join(OPS)}, got {op!r}")
    shapes = d.get("shapes")
    if not isinstance(shapes, dict):
        raise CaseError("case", f"shapes must be an object mapping input names to shapes, got {shapes!r}")
    allowed = set(OPS[op].arrays)
    if set(shapes) - allowed - {"grad_out"}:
        raise CaseError("case", f"shapes names {sorted(set(shapes) - allowed)}, which {op} does not take (its inputs: {', '.join(OPS[op].arrays)})")
    for name, shape in shapes.items():
        if shape is not None and not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise CaseError("case", f"shape of {name} must be a list of non-negative ints or null, got {shape!r}")
    if not isinstance(d.get("params", {}), dict):
        raise CaseError("case", f"params must be an object, got {d.get('params')!r}")
    if d.get("dtype", "float64") not in DTYPES:
        raise CaseError("case", f"dtype must be one of {', '.join(DTYPES)}, got {d.get('dtype')!r}")
    if d.get("data", "normal") not in DATA_KINDS:
        raise CaseError("case", f"data must be one of {', '.join(DATA_KINDS)}, got {d.get('data')!r}")
    if (d.get("data") == "explicit") != isinstance(d.get("values"), dict):
        raise CaseError("case", "data 'explicit' goes with a values object (and values only with it)")
    if not isinstance(d.get("seed", 0), int):
        raise CaseError("case", f"seed must be an int, got {d.get('seed')!r}")


def _draw(rng, kind, shape, scale):
    if kind == "ints":
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    if kind == "ties":
        return rng.integers(0, 3, size=shape).astype(np.float64)
    a = rng.standard_normal(shape) * scale
    if kind == "nan":
        a[rng.random(shape) < 0.25] = np.nan
    return a


def _short(v) -> str:
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(_short(x) for x in v) + ")"
    return str(v)


def _untuple(p):
    """JSON turns tuples into lists; the spec's parameters are tuples (pairs of pads etc.)."""
    if isinstance(p, dict):
        return {k: _untuple(v) for k, v in p.items()}
    if isinstance(p, list):
        return tuple(_untuple(v) for v in p)
    return p
