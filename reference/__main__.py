"""`python -m convspec.reference`: print every lecture golden case, evaluated by the reference.

For each case: id, provenance (the lecture by author, title, course and year, and the slide), the op call, what
the reference computes, what the lectures expect (corrected where the slide text is wrong) and the errata. Exits 1
if any case disagrees.
"""

from __future__ import annotations

import sys
from fractions import Fraction

from .lectures import CASES, SOURCES, call, citation, evaluate, expects_error, is_exact

WIDTH = 160


def fmt(value) -> str:
    """Nested lists/tuples with Fractions written as 10/3; long values shortened."""
    if isinstance(value, type):
        return f"raises {value.__name__}"
    if isinstance(value, Fraction):
        text = str(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(fmt(v) for v in value) + "]"
    elif isinstance(value, tuple):
        text = "(" + ", ".join(fmt(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    else:
        text = repr(value)
    return text if len(text) <= WIDTH else text[: WIDTH - 5] + " ...]"


def main() -> int:
    failures = 0
    for case in CASES:
        if expects_error(case):
            try:
                got = evaluate(case)
                ok = False
            except case.expected as err:
                got, ok = case.expected, True
                got_text = f"raises {type(err).__name__}: {err}"
            except Exception as err:  # a different error is a failure too
                got, ok = None, False
                got_text = f"raises {type(err).__name__}: {err}"
            else:
                got_text = fmt(got)
        else:
            try:
                got = evaluate(case)
                ok = got == case.expected and (is_exact(got) or case.arithmetic == "float64")
                got_text = fmt(got)
            except Exception as err:
                ok, got_text = False, f"raises {type(err).__name__}: {err}"
        failures += not ok
        print(f"{case.id}  [{'ok' if ok else 'MISMATCH'}]")
        print(f"  from:      {citation(case.seed)}, slide '{case.slide}'")
        print(f"  call:      {call(case)}")
        print(f"  reference: {got_text}")
        print(f"  expected:  {fmt(case.expected)}")
        for e in case.errata:
            print(f"  erratum:   text says: {e.says}")
            print(f"             correct:   {e.correct}")
            print(f"             why:       {e.why}")
        if case.note:
            print(f"  note:      {case.note}")
        print()
    print("Lectures and papers:")
    for lecture in dict.fromkeys(SOURCES[c.seed] for c in CASES):
        print(f"  {lecture.citation(note=True)}")
    print()
    n_errata = sum(len(c.errata) for c in CASES)
    print(f"{len(CASES)} golden cases, {len(CASES) - failures} agree with the reference, {n_errata} errata recorded.")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into `head`: stop quietly
        sys.stderr.close()
        sys.exit(0)
