"""A conformance case: one op, its parameters, a dtype and a recipe for its input data.

A case is plain data and serialises to one line of JSON; `convspec run --backend B --case '<json>'`
re-creates exactly the same inputs, so every failure carries a one-line reproduction.

Data recipes (`data`):
- ``normal``: standard-normal values (scaled by ``scale``) from ``seed``;
- ``ints``: small integers in [-3, 3] from ``seed``, for exact cases (every partial sum representable);
- ``ties``: integers in [0, 2] from ``seed``, so pooling windows often hold equal maxima;
- ``nan``: like ``normal`` with about a quarter of the values NaN;
- ``special``: like ``normal`` with about half of the values replaced by NaN, +inf, -inf, -0.0 or +0.0;
- ``large``: magnitudes around exp's overflow and underflow thresholds: ``scale`` is the threshold
  (strategies set it to the case dtype's EXP_LIMIT) and the values are +-scale times multipliers on
  both sides of 1 and of the underflow limit (0.5, 0.97, 1.005, 1.02, 1.04, 1.15, 1.25);
- ``explicit``: the arrays are given in ``values`` (lecture examples, crafted corner cases).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from functools import cached_property

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
        """The case as plain JSON data (non-finite values as the strings "nan", "inf", "-inf"); a fresh dict."""
        return json.loads(self._json)

    def to_json(self) -> str:
        return self._json

    @cached_property
    def _json(self) -> str:
        # computed once per case (the id, the record and the repro all need it); a case is never mutated
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d = jsonable({k: v for k, v in d.items() if v not in (None, "", False) or k in ("shapes",)})
        return json.dumps(d, separators=(",", ":"), sort_keys=True, allow_nan=False)

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

    @cached_property
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
            kind = info.special_inputs.get(name)
            if kind == "labels":
                out.append(self._labels(rng, name, info))
            elif shape is None:
                out.append(None)
            elif name == info.variadic:  # a sequence of arrays (concat's xs): one shape per array
                values = self.values[name] if self.values is not None else [None] * len(shape)
                out.append([self._array(rng, s, v, kind) for s, v in zip(shape, values)])
            else:
                out.append(self._array(rng, shape, self.values[name] if self.values is not None else None, kind))
        return out

    def _array(self, rng, shape, values, kind):
        """One input array: explicit values, or drawn by the case's recipe; special inputs: "mask" (0/1,
        about half kept) or "positive" (variances: in [0.25, 4) times scale^2, never 0)."""
        if values is not None:
            a = _floats(values).reshape(shape)
        elif kind == "mask":
            a = (rng.random(tuple(shape)) < 0.5).astype(np.float64)
        elif kind == "positive":
            a = (0.25 + 3.75 * rng.random(tuple(shape))) * self.scale * self.scale
        else:
            a = _draw(rng, self.data, tuple(shape), self.scale)
        return a.astype(self.dtype)

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


DATA_KINDS = ("normal", "ints", "ties", "nan", "special", "large", "explicit")
#: log of the largest finite value per dtype: exp overflows just above it (float32 88.72, float64 709.78),
#: and exp(-x) underflows to a subnormal just above it and to 0 a little further (float32 87.3 / 103.3,
#: float64 708.4 / 744.4): the scale of the "large" data kind
EXP_LIMIT = {"float16": 11.09, "float32": 88.72, "float64": 709.78}
LARGE_MULTIPLIERS = (0.5, 0.97, 1.005, 1.02, 1.04, 1.15, 1.25)
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
        raise CaseError(
            "case",
            f"shapes names {sorted(set(shapes) - allowed)}, "
            f"which {op} does not take (its inputs: {', '.join(OPS[op].arrays)})",
        )
    for name, shape in shapes.items():
        if name == OPS[op].variadic and isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
            bad = [s for s in shape if not _is_shape(s)]
            if bad:
                raise CaseError("case", f"shapes of {name} must be lists of non-negative ints, got {bad[0]!r}")
        elif shape is not None and not _is_shape(shape):
            raise CaseError("case", f"shape of {name} must be a list of non-negative ints or null, got {shape!r}")
    if not isinstance(d.get("params", {}), dict):
        raise CaseError("case", f"params must be an object, got {d.get('params')!r}")
    if d.get("dtype", "float64") not in DTYPES:
        raise CaseError("case", f"dtype must be one of {', '.join(DTYPES)}, got {d.get('dtype')!r}")
    if d.get("data", "normal") not in DATA_KINDS:
        raise CaseError("case", f"data must be one of {', '.join(DATA_KINDS)}, got {d.get('data')!r}")
    if (d.get("data") == "explicit") != isinstance(d.get("values"), dict):
        raise CaseError("case", "data 'explicit' goes with a values object (and values only with it)")
    seed = d.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise CaseError("seed", f"must be an integer in [0, 2**63), got {seed!r}")
    scale = d.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not np.isfinite(scale):
        raise CaseError("scale", f"must be a finite number, got {scale!r}")
    for key in ("exact",):
        if not isinstance(d.get(key, False), bool):
            raise CaseError(key, f"must be true or false, got {d.get(key)!r}")
    for key in ("source", "name"):
        if not isinstance(d.get(key, ""), str):
            raise CaseError(key, f"must be a string, got {d.get(key)!r}")
    total = sum(int(np.prod(shape, dtype=object)) for shape in shapes.values() if shape is not None)
    if total > MAX_ELEMENTS:
        raise CaseError("shapes", f"the inputs hold {total} elements, more than a case may ({MAX_ELEMENTS})")
    known_params = _param_names(op)
    if known_params is not None:
        unknown = sorted(set(d.get("params", {})) - known_params)
        if unknown:
            raise CaseError(
                "params",
                f"{op} takes no parameter {', '.join(map(repr, unknown))}; its parameters: "
                f"{', '.join(sorted(known_params)) or '(none)'}",
            )
    values = d.get("values")
    if isinstance(values, dict):
        for name, v in values.items():
            shape = shapes.get(name)
            if name not in shapes or (shape is None and name != "grad_out"):
                raise CaseError(f"values.{name}", f"has no shape in shapes (inputs given: {', '.join(shapes)})")
            if name == OPS[op].variadic and isinstance(shape, list) and shape and isinstance(shape[0], list):
                # a sequence of arrays (concat's xs): one value list per shape
                if not isinstance(v, list) or len(v) != len(shape):
                    raise CaseError(f"values.{name}", f"must be a list of {len(shape)} value lists, one per shape")
                for i, (vi, si) in enumerate(zip(v, shape)):
                    _check_values(f"values.{name}[{i}]", vi, si)
            else:
                _check_values(f"values.{name}", v, shape)


def _check_values(where, v, shape):
    try:
        a = np.asarray(v, dtype=object)
        if not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) or x in ("nan", "inf", "-inf")
            for x in a.reshape(-1).tolist()
        ):
            raise ValueError
        n = a.size
    except (ValueError, TypeError):
        raise CaseError(where, 'must be a nested list of numbers (or "nan", "inf", "-inf")') from None
    if shape is not None and n != int(np.prod(shape)):
        raise CaseError(where, f"has {n} numbers, but its shape {shape} holds {int(np.prod(shape))}")


#: the most input elements a case may have (a --case with a huge shape is refused, not allocated)
MAX_ELEMENTS = 2**26


def _param_names(op):
    """The keyword parameters of the op's reference forward, or None when it takes **kwargs."""
    import inspect

    try:
        sig = inspect.signature(OPS[op].forward)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {
        n
        for n, p in sig.parameters.items()
        if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and n not in OPS[op].arrays)
    }


def _is_shape(shape) -> bool:
    return isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)


def _draw(rng, kind, shape, scale):
    if kind == "ints":
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    if kind == "ties":
        return rng.integers(0, 3, size=shape).astype(np.float64)
    if kind == "large":
        m = rng.choice(LARGE_MULTIPLIERS, size=shape) * (1 + 0.003 * rng.uniform(-1, 1, size=shape))
        return np.where(rng.random(shape) < 0.5, -1.0, 1.0) * m * scale
    a = rng.standard_normal(shape) * scale
    if kind == "nan":
        a[rng.random(shape) < 0.25] = np.nan
    if kind == "special":
        a = np.where(rng.random(shape) < 0.5, rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], size=shape), a)
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
