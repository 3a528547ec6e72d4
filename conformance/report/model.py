"""Aggregating merged results into what a report shows: the op x backend matrix, per-feature detail,
bound ratios, declared deviations, failures, LeNet training curves and the runs. It computes, it does not
format: format.py turns what it computes into text, markdown.py and html.py into documents."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..ops import GROUPS, OPS
from . import signature as sig
from .load import BAD, Merged, verdicts_of

LENET = "LeNet"
GROUP_ORDER = GROUPS + (LENET, "other")
# the order counts are listed in a cell, worst first
STATUS_ORDER = ("fail", "error", "timeout", "crashed", "invalid", "deviation", "unsupported", "skipped", "pass")
SPATIAL_OPS = ("conv", "convolve", "conv_transpose", "max_pool", "avg_pool", "global_max_pool", "global_avg_pool")
NOT_RUN = "not run"
UNAVAILABLE = "unavailable"
NO_PART = "none"  # a part the op does not have (no index output), or no case of it got that far


def group_of(op: str, source: str = "") -> str:
    if op == "lenet" or source == "lenet":
        return LENET
    info = OPS.get(op)
    return info.group if info else "other"


@dataclass
class Cell:
    """One op on one backend: how many cases ended in each status."""

    counts: Counter = field(default_factory=Counter)
    unavailable: str | None = None  # the reason, when the backend could not run at all
    verdicts: dict = field(default_factory=lambda: defaultdict(Counter))  # part -> Counter of its verdicts

    def part(self, name: str) -> "Cell":
        """The counts of one part's verdicts (forward, indices, backward) as a cell of its own: a case
        counts under a part only where that part got a verdict."""
        if self.unavailable is not None:
            return Cell(unavailable=self.unavailable)
        counts = Counter(self.verdicts.get(name, {}))
        return Cell(counts) if counts or not self.counts else Cell(Counter(), part_missing=True)

    part_missing: bool = False  # a part cell of an op that ran but never got this part

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def kind(self) -> str:
        """The cell's headline: unavailable, not run, none (a part the op lacks), fail, invalid,
        deviation, unsupported, skipped or pass."""
        if self.unavailable is not None:
            return UNAVAILABLE
        if self.part_missing:
            return NO_PART
        if not self.counts:
            return NOT_RUN
        if any(self.counts[s] for s in BAD):
            return "fail"
        for s in ("invalid", "deviation", "unsupported", "skipped", "pass"):
            if self.counts[s]:
                return s
        return "ran"  # only statuses this report does not know (a provisional training record)

    @property
    def parts(self) -> list:
        """[(status, count)] in STATUS_ORDER, non-zero only."""
        return [(s, self.counts[s]) for s in STATUS_ORDER if self.counts[s]] + [
            (s, n) for s, n in sorted(self.counts.items()) if s not in STATUS_ORDER and n
        ]


@dataclass
class TrainCurve:
    backend: str
    run: str
    losses: list  # [(step, loss)]
    reference: list  # [(step, loss)] of the reference, when the record carries it
    weight_diff: list  # [(step, diff)]
    scalars: dict  # every other plain field (accuracy, epochs, ...), shown as-is


@dataclass
class Report:
    title: str
    spec_version: str
    columns: list  # backend names, in the order runs listed them
    backends: dict  # name -> merged availability / versions / devices / plugins
    matrix: list  # [(group, [(op, {backend: Cell})])]
    totals: dict  # backend -> Cell over every op
    features: list  # [(feature, {backend: Cell})]
    ratios: dict  # op -> backend -> [bound ratios of the cases that have one]
    deviations: list  # [{backend, op, reason, count, cases}]
    failures: list  # case records with status fail/error/timeout/crashed/invalid
    failure_groups: list  # [(signature, [records])]: failures grouped by signature.signature, worst-known order
    trains: list  # [TrainCurve]
    reference_train: list  # [(step, loss)] from a train record of backend 'reference', if any
    runs: list  # [RunFile]
    notes: list
    conflicts: list
    plugin_errors: list
    benches: list = field(default_factory=list)  # [perf.BenchRun] from `convspec report --bench FILE`


# ---------------------------------------------------------------------------------------------------
# features of a case, derived from its recipe


def _seq(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _flat_ints(v):
    out = []
    for x in _seq(v):
        out += _flat_ints(x) if isinstance(x, (list, tuple)) else [x]
    return [x for x in out if isinstance(x, (int, float)) and not isinstance(x, bool)]


def padding_form(p) -> str:
    if isinstance(p, str):
        return f"'{p}'"
    if isinstance(p, (list, tuple)):
        return "(begin, end) pairs" if any(isinstance(x, (list, tuple)) for x in p) else "per-dim"
    return "int"


FEATURE_ORDER = (
    "padding: int",
    "padding: per-dim",
    "padding: (begin, end) pairs",
    "padding: 'valid'",
    "padding: 'same'",
    "padding: 'full'",
    "stride > 1",
    "dilation > 1",
    "groups > 1",
    "output_padding > 0",
    "ceil_mode",
    "1-d",
    "2-d",
    "3-d",
)


def features(rec: dict) -> list:
    """The features a case exercises, as labels (see FEATURE_ORDER; dtypes and data kinds follow)."""
    spec = rec.get("case") or {}
    params = spec.get("params") or {}
    op = rec.get("op", spec.get("op", ""))
    out = []
    if "padding" in params:
        out.append(f"padding: {padding_form(params['padding'])}")
    stride = params.get("stride")
    if stride is None and "kernel_size" in params:  # pooling: the stride defaults to the window
        stride = params["kernel_size"]
    if any(s > 1 for s in _flat_ints(stride)):
        out.append("stride > 1")
    if any(d > 1 for d in _flat_ints(params.get("dilation", 1))):
        out.append("dilation > 1")
    if any(g > 1 for g in _flat_ints(params.get("groups", 1))):
        out.append("groups > 1")
    if any(o > 0 for o in _flat_ints(params.get("output_padding", 0))):
        out.append("output_padding > 0")
    if params.get("ceil_mode") is True:
        out.append("ceil_mode")
    if op in SPATIAL_OPS and op in OPS:
        shape = (spec.get("shapes") or {}).get(OPS[op].arrays[0])
        if isinstance(shape, list) and len(shape) >= 3:
            out.append(f"{len(shape) - 2}-d")
    dtype = rec.get("dtype") or spec.get("dtype")
    if dtype:
        out.append(f"dtype {dtype}")
    data = spec.get("data")
    if data == "ties":
        out.append("data: ties")
    elif data == "nan":
        out.append("data: NaN")
    return out


def _feature_key(label: str):
    if label in FEATURE_ORDER:
        return (0, FEATURE_ORDER.index(label), label)
    if label.startswith("dtype "):
        return (1, 0, label)
    return (2, 0, label)


# ---------------------------------------------------------------------------------------------------
# LeNet training records: the format is provisional, so read it generously


_LOSS_KEYS = ("losses", "loss", "steps", "loss_curve")
_REF_KEYS = ("reference_losses", "reference_loss", "reference")
_DIFF_KEYS = ("weight_diff", "weight_diffs", "weight_difference", "weight_differences")
_VALUE_KEYS = ("loss", "value", "diff", "max", "max_abs", "weight_diff")


def series(value) -> list:
    """[(step, y)] from a list of numbers, or of {step, <value>} objects; [] for anything else."""
    if isinstance(value, dict):
        for k in _LOSS_KEYS + _VALUE_KEYS:
            if isinstance(value.get(k), list):
                return series(value[k])
        return []
    if not isinstance(value, list):
        return []
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            y = next((item[k] for k in _VALUE_KEYS if _is_num(item.get(k))), None)
            step = item.get("step", i)
        else:
            y, step = item, i
        if _is_num(y) and _is_num(step):
            out.append((step, float(y)))
    return out


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def train_curve(rec: dict) -> TrainCurve:
    def first(keys):
        for k in keys:
            s = series(rec.get(k))
            if s:
                return k, s
        return None, []

    lk, losses = first(_LOSS_KEYS)
    rk, ref = first(_REF_KEYS)
    dk, diff = first(_DIFF_KEYS)
    used = {lk, rk, dk, "record", "backend", "_run"}
    scalars = {k: v for k, v in rec.items() if k not in used and (isinstance(v, (str, bool)) or _is_num(v))}
    return TrainCurve(rec["backend"], rec.get("_run", ""), losses, ref, diff, scalars)


# ---------------------------------------------------------------------------------------------------


def build(merged: Merged, title: str = "convspec compatibility report") -> Report:
    columns = []
    for r in merged.runs:
        for name in r.header.get("backends", []):
            if name not in columns and name != "reference":
                columns.append(name)
    for name in merged.backends:
        if name not in columns and name != "reference":
            columns.append(name)
    unavailable = {
        n: "; ".join(info["reasons"]) or "unavailable" for n, info in merged.backends.items() if not info["available"]
    }

    cells: dict = defaultdict(lambda: defaultdict(Cell))
    feats: dict = defaultdict(lambda: defaultdict(Cell))
    ratios: dict = defaultdict(lambda: defaultdict(list))
    totals = {b: Cell() for b in columns}
    groups: dict = defaultdict(list)
    for c in merged.cases:
        op, b, st = c["op"], c["backend"], c["status"]
        g = group_of(op, c.get("source", ""))
        if op not in groups[g]:
            groups[g].append(op)
        cells[op][b].counts[st] += 1
        totals[b].counts[st] += 1
        for part, v in verdicts_of(c).items():
            cells[op][b].verdicts[part][v] += 1
            totals[b].verdicts[part][v] += 1
        for f in features(c):
            feats[f][b].counts[st] += 1
        if _is_num(c.get("bound_ratio")):
            ratios[op][b].append(float(c["bound_ratio"]))
    trained = {t["backend"]: t for t in merged.trains if t["backend"] != "reference"}
    if trained and not groups[LENET]:  # a LeNet training run shows as a LeNet row even without case records
        groups[LENET].append("lenet")

    matrix = []
    for g in sorted(groups, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER)):
        order = list(OPS)
        ops = sorted(groups[g], key=lambda op: (order.index(op) if op in order else len(order), op))
        rows = []
        for op in ops:
            row = {}
            for b in columns:
                cell = cells[op][b] if b in cells[op] else Cell()
                if b in unavailable:
                    cell = Cell(unavailable=unavailable[b])
                elif op == "lenet" and not cell.counts and b in trained:
                    st = trained[b].get("status")
                    cell = Cell(Counter({st if isinstance(st, str) and st else "trained": 1}))
                row[b] = cell
            rows.append((op, row))
        matrix.append((g, rows))
    for b in unavailable:
        totals[b] = Cell(unavailable=unavailable[b])

    features_rows = [
        (f, {b: feats[f].get(b, Cell(unavailable=unavailable.get(b))) for b in columns})
        for f in sorted(feats, key=_feature_key)
    ]

    dev = {}
    for c in merged.cases:
        if c["status"] == "deviation":
            key = (c["backend"], c["op"], c.get("deviation", ""))
            d = dev.setdefault(key, {"backend": key[0], "op": key[1], "reason": key[2], "count": 0, "cases": []})
            d["count"] += 1
            d["cases"].append(c)
    deviations = sorted(
        dev.values(),
        key=lambda d: (columns.index(d["backend"]) if d["backend"] in columns else 99, d["op"], d["reason"]),
    )

    order = list(OPS)
    failures = sorted(
        (c for c in merged.cases if c["status"] in BAD or c["status"] == "invalid"),
        key=lambda c: (
            columns.index(c["backend"]) if c["backend"] in columns else 99,
            order.index(c["op"]) if c["op"] in order else 99,
            c["case_id"],
        ),
    )

    kinds = sig.KINDS

    def sig_key(s):
        b, op, check, kind = s
        return (
            columns.index(b) if b in columns else 99,
            order.index(op) if op in order else 99,
            op,
            check != "forward",
            check,
            kinds.index(kind.split(":")[0]) if kind.split(":")[0] in kinds else 99,
            kind,
        )

    # each group's example (its first record) is one whose shrunk minimal case fails the same way, if any
    failure_groups = [
        (k, sorted(recs, key=lambda r: not sig.reproduces(r))) for k, recs in sig.group(failures, order=sig_key)
    ]

    curves = [train_curve(t) for t in merged.trains]
    reference = next((c.losses for c in curves if c.backend == "reference"), [])
    if not reference:
        reference = next((c.reference for c in curves if c.reference), [])
    curves = [c for c in curves if c.backend != "reference"]

    return Report(
        title=title,
        spec_version=merged.spec_version,
        columns=columns,
        backends=merged.backends,
        matrix=matrix,
        totals=totals,
        features=features_rows,
        ratios={op: dict(v) for op, v in ratios.items()},
        deviations=deviations,
        failures=failures,
        failure_groups=failure_groups,
        trains=curves,
        reference_train=reference,
        runs=merged.runs,
        notes=merged.notes,
        conflicts=merged.conflicts,
        plugin_errors=merged.plugin_errors,
    )


def ratio_summary(values: list) -> tuple:
    """(max, median) of bound ratios, or None."""
    if not values:
        return None
    return max(values), statistics.median(values)
