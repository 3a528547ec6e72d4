"""The lecture notes' worked examples (convspec.reference.lectures) against the reference, exactly."""

from __future__ import annotations

import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from convspec.reference import lectures
from convspec.reference.lectures import (
    CASES,
    Erratum,
    GoldenCase,
    by_id,
    evaluate,
    exact,
    expects_error,
    is_exact,
)

from convspec import reference as ref

SEEDS = {
    "000_ad4448b0529a36da.txt",
    "001_c49ca718e2f99475.txt",
    "002_ef517354ceaa3187.txt",
    "003_fffa955db1b57f2a.txt",
    "004_9ed2c276c74e4917.txt",
}
PAPERS = {"krizhevsky2012", "ioffe2015", "szegedy2015"}


def _has_fraction(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_has_fraction(v) for v in value)
    return isinstance(value, Fraction) and value.denominator != 1


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_case(case: GoldenCase):
    if expects_error(case):
        with pytest.raises(case.expected):
            evaluate(case)
        return
    got = evaluate(case)
    if case.arithmetic == "exact":
        assert is_exact(got), f"{case.id}: the reference returned floats on exact inputs: {got!r}"
    else:  # floating point by definition; the data make every value exact in binary, so still equality
        assert case.arithmetic == "float64" and not is_exact(got), case.id
    if isinstance(got, list):
        assert np.shape(np.array(got, dtype=object)) == np.shape(np.array(case.expected, dtype=object))
    assert got == case.expected, f"{case.id}: reference {got!r} != expected {case.expected!r}"


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CASES
        if not expects_error(c) and c.op not in ("output_size", "param_count", "receptive_field", "dynamic_k")
    ],
    ids=lambda c: c.id,
)
def test_array_cases_as_fraction_object_arrays(case: GoldenCase):
    """The same comparison done the numpy way: object arrays of Fractions, elementwise equality."""
    args, kwargs = lectures.arguments(case)
    got = getattr(ref, case.op)(*args, **kwargs)
    results = got if isinstance(got, tuple) else (got,)
    wanted = case.expected if isinstance(case.expected, tuple) else (case.expected,)
    assert len(results) == len(wanted)
    for r, w in zip(results, wanted):
        if w is None:
            assert r is None
            continue
        r = np.asarray(r)
        want = np.array(w, dtype=object)
        assert r.shape == want.shape
        assert r.dtype == object or r.dtype.kind in "iu" or (case.arithmetic == "float64" and r.dtype == np.float64)
        assert bool(np.all(r == want))


def test_fraction_cases_really_have_fractions():
    """Box filter and average pooling must be compared as fractions, not rounded decimals."""
    for cid in (
        "box-filter-1d-shrink",
        "box-filter-1d-zero-pad",
        "avg-pool-2x2-a",
        "avg-pool-2x2-b",
        "avg-pool-backward-half",
    ):
        assert _has_fraction(by_id(cid).expected), cid


def test_every_case_has_provenance_and_complete_errata():
    for case in CASES:
        assert case.id and case.seed and case.slide and case.op, case
        assert case.seed in SEEDS | PAPERS, case.seed
        assert hasattr(ref, case.op), f"{case.id}: unknown reference op {case.op!r}"
        assert isinstance(case.inputs, tuple) and isinstance(case.params, dict)
        assert isinstance(case.errata, tuple)
        for e in case.errata:
            assert isinstance(e, Erratum)
            assert e.says.strip() and e.correct.strip() and e.why.strip(), (case.id, e)
            assert e.says != e.correct


def test_ids_are_unique_kebab_case():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for i in ids:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i), i


def test_by_id():
    assert by_id("sharpen-5x5").slide == "Convolutions on Images"
    with pytest.raises(KeyError):
        by_id("no-such-case")


def test_cases_are_frozen():
    with pytest.raises(Exception):
        CASES[0].id = "x"  # type: ignore[misc]


def test_every_seed_contributes():
    assert {c.seed for c in CASES} == SEEDS | PAPERS


def test_papers_give_the_new_layers_their_numbers():
    """LRN, dropout, batch norm and concat (the lectures name them without numbers) have golden cases from the
    papers: AlexNet's LRN constants and alpha not divided by n, the even-window rule, Algorithm 2's unbiased
    running variance, inception (3a)'s 256 channels."""
    assert set(lectures.PAPERS) == PAPERS
    by_op = {c.op for c in CASES if c.seed in PAPERS}
    assert by_op == {
        "local_response_norm",
        "dropout",
        "batch_norm",
        "batch_norm_inference",
        "batch_norm_running_stats",
        "concat",
    }
    lrn = by_id("lrn-alexnet-seven-channels")
    assert (lrn.params["size"], lrn.params["k"], lrn.params["alpha"]) == (5, 2, Fraction(1, 10**4))
    # alpha divided by n (PyTorch's and ONNX's convention) would give another value: the case tells them apart
    divided = lectures.GoldenCase(**{**lrn.__dict__, "params": {**lrn.params, "alpha": Fraction(1, 5 * 10**4)}})
    assert evaluate(divided) != lrn.expected
    assert by_id("batch-norm-running-variance-unbiased").expected[1] == [Fraction(16, 15)]  # biased: 9/10 + 1/8
    assert len(by_id("concat-inception-3a").expected[0]) == 256
    for lecture in lectures.PAPERS.values():
        assert lecture.authors and lecture.title and lecture.venue and lecture.year


def test_known_errata_are_recorded():
    """The errors the seed texts are known to have, each next to its case."""

    def said(cid):
        return " ".join(e.says for e in by_id(cid).errata)

    assert "5 3 7 9 1" in said("sharpen-5x5")
    assert "4 5 / 5 3" in said("avg-pool-2x2-b")
    assert "n_in > 1" in said("relu-derivative")
    assert len(by_id("cs231n-conv-demo").errata) >= 2
    assert "x[2]w[0]" in said("convolution-sum-indices")


# --- slide claims that take more than one reference call ----------------------------------------------


def test_two_3x3_vs_one_5x5():
    """VGGNet: two 3x3 layers have 3*3*2 = 18 parameters < 25 and the same 5x5 receptive field."""
    assert 2 * ref.param_count(1, 1, (3, 3), bias=False) == 18 < ref.param_count(1, 1, (5, 5), bias=False) == 25
    assert ref.receptive_field([3, 3]) == ref.receptive_field([5]) == 5


def test_shrinking_chain_32_28_24_20():
    sizes = [32]
    for _ in range(3):
        sizes.append(ref.output_size(sizes[-1], 5))
    assert sizes == [32, 28, 24, 20]


def test_lenet5_chain():
    n = 32
    for k, s in ((5, 1), (2, 2), (5, 1), (2, 2), (5, 1)):
        n = ref.output_size(n, k, stride=s)
    assert n == 1


def test_alphago_keeps_19x19_through_13_layers():
    n = ref.output_size(19, 5, padding=2)
    for _ in range(11):
        n = ref.output_size(n, 3, padding=1)
    assert ref.output_size(n, 1) == 19
    assert 19 + 2 * 2 == 23 and 19 + 2 * 1 == 21  # the text's padded sizes


def test_vgg16_total_parameters():
    """Seed 003 says 120M; configuration D (seed 001's table) has 138,357,544."""
    widths = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    conv = sum(ref.param_count(a, b, (3, 3)) for a, b in zip(widths, widths[1:]))
    fc = ref.param_count(7 * 7 * 512, 4096, 1) + ref.param_count(4096, 4096, 1) + ref.param_count(4096, 1000, 1)
    assert conv + fc == 138_357_544


def test_rgb_weight_shape_does_not_depend_on_image_size():
    """4 filters, kernel 5, RGB: w is (4, 3, 5, 5) for any image size; the (3, 4, 5, 5) order is rejected."""
    w = np.zeros((4, 3, 5, 5))
    for hw in (5, 32, 57):
        assert ref.conv(np.zeros((1, 3, hw, hw)), w).shape == (1, 4, hw - 4, hw - 4)
    with pytest.raises(ref.ShapeError):
        ref.conv(np.zeros((1, 3, 32, 32)), np.zeros((3, 4, 5, 5)))
    assert ref.param_count(3, 4, (5, 5)) == 304


def test_unsharp_diff_kernel():
    """Seed 002: 9 * (original - smoothed) is the [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] kernel."""
    case = by_id("unsharp-smoothed-impulse")
    original = np.array(case.inputs[0], dtype=object)
    smoothed = np.array(evaluate(case), dtype=object)
    diff = 9 * (original - smoothed)
    assert diff[0, 0].tolist() == [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]


def test_sharpen_is_identity_minus_laplacian():
    """Seed 003's kernel table: sharpen = identity - Laplacian, so the outputs subtract likewise."""
    img = exact([[lectures.IMAGE_8X8]])

    def run(k):
        return ref.conv(img, exact([[k]]))

    assert np.all(run(lectures.SHARPEN) == run(lectures.IDENTITY3) - run(lectures.LAPLACE))


def test_convolution_is_flipped_correlation_and_transpose_is_full_convolution():
    """Seed 002/003: convolution mirrors the filter; seed 004: the transposed conv of a valid conv is a 'full' conv."""
    x, w = exact([[lectures.RAMP]]), exact([[lectures.DIGITS]])
    assert np.all(ref.convolve(x, w, padding="full") == ref.conv(x, w[..., ::-1], padding="full"))
    y = exact([[[1, 2]]])
    assert np.all(ref.conv_transpose(y, w) == ref.convolve(y, w, padding="full"))


def test_conv_transpose_is_the_adjoint():
    """Seed 004: 'the transpose of a transposed convolution is the original convolution'."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (1, 2, 7, 7)).astype(float)
    w = rng.integers(-3, 4, (3, 2, 3, 3)).astype(float)
    y = rng.integers(-3, 4, (1, 3, 3, 3)).astype(float)
    lhs = float(np.sum(ref.conv(x, w, stride=2) * y))
    rhs = float(np.sum(x * ref.conv_transpose(y, w, stride=2)))
    assert lhs == rhs


def test_cs231n_demo_reading_matches_most_printed_outputs():
    """The printed output volume (with its two bad entries) vs the reference on the stored reading."""
    printed = [[[0, -4, 3], [5, -4, -2], [2, 0, 5]], [[-3, -3, 0], [5, 10, -3], [1, 0, 6]]]
    got = np.array(evaluate(by_id("cs231n-conv-demo")), dtype=object)[0]
    assert int(np.sum(got == np.array(printed, dtype=object))) == 16


def test_printer_runs_and_prints_every_id():
    proc = subprocess.run([sys.executable, "-m", "convspec.reference"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for case in CASES:
        assert case.id in proc.stdout
        for e in case.errata:
            assert e.correct in proc.stdout
    assert "MISMATCH" not in proc.stdout
    # lectures are cited by author, title, course and year, never by this project's seed file names
    assert ".txt" not in proc.stdout
    for seed in SEEDS | PAPERS:
        assert lectures.citation(seed) in proc.stdout
    assert (
        'Yun-Nung (Vivian) Chen, "Convolutional Neural Network", Applied Deep Learning, National Taiwan University, '
        "2019 <http://adl.miulab.tw>" in proc.stdout
    )
    assert "Isabeau Prémont-Schwarz" in proc.stdout and "Joakim Lindblad" in proc.stdout


def test_every_lecture_is_cited_with_course_author_and_year_or_undated():
    assert set(lectures.LECTURES) == SEEDS
    for lecture in lectures.LECTURES.values():
        assert lecture.course and lecture.author and lecture.title
        assert lecture.year or "year" in lecture.note  # undated: the note says so
