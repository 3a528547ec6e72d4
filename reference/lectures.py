"""Golden cases: every worked example of the lecture notes, as data.

Each GoldenCase names the lecture (LECTURES: author, course, year) and the slide it comes from -- or, for
the layers the lectures name without numbers (LRN, dropout, batch norm, concat), the original paper
(PAPERS) and its section -- the
reference op that reproduces it, the op's inputs (channels-first nested lists of ints/Fractions; N=1, C=1
unless the example has channels), and the value the slides compute -- the right value, where the slide
text has an error; the text's version is kept in `errata`. The numbers were copied from the seed texts
into this file: nothing here reads the lecture notes at run time.

Conventions for `inputs`/`params`:
- a `list` is an array (evaluate() turns it into an object array of Fractions, so results are exact);
  tuples, ints and strings are passed as they are (kernel sizes, paddings, ...);
- a `tuple` of lists is a sequence of arrays (concat's `xs`);
- `arithmetic` "exact" (default) evaluates on Fractions; "float64" on float64 arrays, for ops whose
  reference is floating point by definition (batch norm's sqrt): such cases use data whose result is
  exactly representable, so the comparison is still equality;
- `expected` is nested lists, an int, a tuple of those (for *_backward ops, None for an absent
  gradient), or an exception class the call must raise (e.g. ParameterError for an illegal stride);
- `note` says what was read how, and marks numbers that are constructed (the slide states a rule
  without numbers) or taken from the figure/paper the slide shows rather than from the slide text.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import ParameterError


@dataclass(frozen=True)
class Erratum:
    says: str  # what the seed text says
    correct: str  # what is right
    why: str  # why


@dataclass(frozen=True)
class GoldenCase:
    id: str  # short kebab id, e.g. 'box-filter-1d-shrink'
    seed: str  # the lecture's key in LECTURES (cite it with citation(seed), not by this key)
    slide: str  # the slide's title as in the text
    op: str  # name of a convspec.reference function
    inputs: tuple  # positional args; arrays as nested lists of ints/Fractions in the op's layout
    params: dict  # keyword args
    expected: object  # nested lists (exact ints/Fractions) or int/tuple for size helpers
    errata: tuple = ()
    note: str = ""
    arithmetic: str = "exact"  # or "float64" (see the module docstring)


F = Fraction
S000 = "000_ad4448b0529a36da.txt"
S001 = "001_c49ca718e2f99475.txt"
S002 = "002_ef517354ceaa3187.txt"
S003 = "003_fffa955db1b57f2a.txt"
S004 = "004_9ed2c276c74e4917.txt"


@dataclass(frozen=True)
class Lecture:
    """Who gave a lecture, where and when, as far as its own text says (`year` None where it says no year)."""

    title: str
    course: str
    author: str
    year: int | None = None
    url: str = ""  # given only where the lecture names its own page
    note: str = ""  # what the text says about its origin, where it names no author or year

    def citation(self, *, note: bool = False) -> str:
        """'author, "title", course, year <url>': the lecture as a reader can find it; note: with the note."""
        year = str(self.year) if self.year else "undated"
        text = f'{self.author}, "{self.title}", {self.course}, {year}'
        return text + (f" <{self.url}>" if self.url else "") + (f" ({self.note})" if note and self.note else "")


#: the lecture each seed text is (the seed file names are this project's own keys: cite these instead)
LECTURES = {
    S000: Lecture(
        "Convolutional Neural Networks",
        "Data Mining & Machine Learning",
        "author not named",
        note="the slides name no author or year; 'most slides adapted from "
        "[the] Visual Computing Group'; their newest reference is Goodfellow et al. 2016",
    ),
    S001: Lecture(
        "Convolutional Neural Network",
        "Applied Deep Learning, National Taiwan University",
        "Yun-Nung (Vivian) Chen",
        2019,
        "http://adl.miulab.tw",
        note="7 May 2019; slides credited from Mark Chang and Hung-Yi Lee",
    ),
    S002: Lecture(
        "Lecture 4 - Convolutional Neural Networks 1",
        "Deep Learning, Uppsala University",
        "Joakim Lindblad",
        note="the slides give no year; their newest reference is from 2020",
    ),
    S003: Lecture(
        "CNNs",
        "Deep Learning (SURF, High Performance Machine Learning Group)",
        "Bryan Cardenas, Caspar van Leeuwen, Monica Rotulo and Robert Jan Schlimbach",
        note="the slides give no year; their newest reference is from 2016",
    ),
    S004: Lecture(
        "Convolutional Neural Networks",
        "COMP 551 Applied Machine Learning (McGill University)",
        "Isabeau Prémont-Schwarz",
        2023,
        note="Fall 2023",
    ),
}


@dataclass(frozen=True)
class Paper:
    """An original paper a golden case takes its constants or construction from (the lectures name the layer
    but give no numbers for it)."""

    authors: str
    title: str
    venue: str
    year: int
    url: str = ""
    note: str = ""

    def citation(self, *, note: bool = False) -> str:
        text = f'{self.authors}, "{self.title}", {self.venue}, {self.year}' + (f" <{self.url}>" if self.url else "")
        return text + (f" ({self.note})" if note and self.note else "")


KRIZHEVSKY2012 = "krizhevsky2012"
IOFFE2015 = "ioffe2015"
SZEGEDY2015 = "szegedy2015"

#: papers behind the lectures' AlexNet, GoogLeNet and ResNet slides, for the layers those slides only name
PAPERS = {
    KRIZHEVSKY2012: Paper(
        "Alex Krizhevsky, Ilya Sutskever and Geoffrey E. Hinton",
        "ImageNet Classification with Deep Convolutional Neural Networks",
        "NeurIPS",
        2012,
        note="the AlexNet of the lectures' 'AlexNet (2012)' slides (seed texts 001 and 003)",
    ),
    IOFFE2015: Paper(
        "Sergey Ioffe and Christian Szegedy",
        "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
        "ICML",
        2015,
        url="https://arxiv.org/abs/1502.03167",
        note="the batch normalization of the ResNet blocks",
    ),
    SZEGEDY2015: Paper(
        "Christian Szegedy et al.",
        "Going Deeper with Convolutions",
        "CVPR",
        2015,
        url="https://arxiv.org/abs/1409.4842",
        note="the GoogLeNet of the lectures' 'GoogLeNet (2014)' slide (seed text 001)",
    ),
}

#: every source a golden case can name
SOURCES = {**LECTURES, **PAPERS}


def citation(seed: str) -> str:
    """The lecture or paper a golden case comes from, cited by author, title, venue or course, and year."""
    return SOURCES[seed].citation()


def _sig(values):
    """A 1-D signal as (N=1, C=1, L)."""
    return [[list(values)]]


def _img(rows):
    """A 2-D single-channel image as (N=1, C=1, H, W)."""
    return [[[list(r) for r in rows]]]


def _ker(rows):
    """A single 2-D filter as (C_out=1, C_in=1, kh, kw)."""
    return [[[list(r) for r in rows]]]


def _const(shape, value):
    if not shape:
        return value
    return [_const(shape[1:], value) for _ in range(shape[0])]


# --- numbers copied from the seeds -----------------------------------------------------------------

BOX_F = [4, 3, 2, -5, 3, 5, 2, 5, 5, 6]
THIRD = F(1, 3)

SHARPEN = [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
LAPLACE = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
IDENTITY3 = [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
BOX9 = [[F(1, 9)] * 3 for _ in range(3)]
IMAGE_5X5 = [[-5, 3, 2, -5, 3], [4, 3, 2, 1, -3], [1, 0, 3, 3, 5], [-2, 0, 1, 4, 4], [5, 6, 7, 9, -1]]
IMAGE_8X8 = [  # seed 003, 'Convolutions': the source layer
    [2, 2, 6, 8, 2, 0, 1, 2],
    [4, 3, 4, 5, 1, 9, 6, 3],
    [3, 9, 4, 4, 7, 7, 6, 9],
    [1, 3, 4, 6, 8, 2, 2, 1],
    [8, 4, 6, 2, 3, 1, 8, 8],
    [5, 8, 9, 0, 1, 0, 2, 3],
    [9, 2, 6, 6, 3, 6, 2, 1],
    [9, 8, 8, 2, 6, 3, 4, 5],
]
POOL_A = [[3, 1, 3, 5], [6, 0, 7, 9], [3, 2, 1, 4], [0, 2, 4, 3]]  # seed 000
POOL_B = [[1, 3, 2, 4], [5, 7, 6, 8], [0, 0, 3, 3], [5, 5, 0, 0]]  # seed 001

# seed 001 'Example' (the cs231n conv demo): the 5x5x3 interior of the padded input volume, depth-major
CS231N_X = [
    [[0, 0, 0, 1, 0], [2, 1, 2, 2, 0], [2, 0, 2, 0, 1], [1, 0, 0, 0, 1], [1, 1, 0, 2, 1]],  # x[:, :, 0]
    [[2, 1, 0, 1, 2], [0, 1, 0, 1, 1], [1, 2, 0, 0, 2], [1, 1, 1, 2, 1], [2, 0, 0, 0, 2]],  # x[:, :, 1]
    [[2, 0, 1, 0, 1], [0, 0, 1, 1, 1], [1, 0, 2, 2, 2], [0, 0, 2, 2, 2], [1, 2, 1, 1, 2]],  # x[:, :, 2]
]
CS231N_W0 = [
    [[-1, 0, 0], [1, 1, -1], [1, -1, -1]],
    [[1, 0, 1], [-1, 1, 1], [0, 0, -1]],
    [[-1, -1, 1], [1, 0, -1], [-1, -1, 1]],
]
CS231N_W1 = [
    [[1, 1, 1], [1, 1, -1], [1, 0, -1]],
    [[1, -1, 1], [1, -1, 0], [-1, 0, 0]],
    [[1, 1, -1], [-1, 0, 1], [-1, 0, -1]],
]

# seed 002 'Interpreting a Linear Classifier: Visual Viewpoint' (the cs231n 4-pixel cat figure)
CAT_PIXELS = [56, 231, 24, 2]
CAT_W = [
    [F("0.2"), F("-0.5"), F("0.1"), F("2.0")],
    [F("1.5"), F("1.3"), F("2.1"), F("0.0")],
    [F(0), F("0.25"), F("0.2"), F("-0.3")],
]
CAT_B = [F("1.1"), F("3.2"), F("-1.2")]

# a ramp with distinct digits: output digits show which inputs each output sums (constructed)
RAMP = [1, 2, 3, 4, 5]
DIGITS = [1, 10, 100]
# AlexNet LRN on channels 1..7 (size 5): sum of squares of channels max(0, c-2) .. min(6, c+2)
LRN_SUMS = [sum(j * j for j in range(max(1, c - 2), min(7, c + 2) + 1)) for c in range(1, 8)]
INCEPTION_3A = (64, 128, 32, 32)  # GoogLeNet Table 1, inception (3a): #1x1, #3x3, #5x5, pool proj


CASES: tuple[GoldenCase, ...] = (
    # ============================ 000: Data Mining & Machine Learning =============================
    GoldenCase(
        id="box-filter-1d-shrink",
        seed=S000,
        slide="What are Convolutions?",
        op="convolve",
        inputs=(_sig(BOX_F), [[[THIRD, THIRD, THIRD]]]),
        params={},
        expected=_sig([3, 0, 0, 1, F(10, 3), 4, 4, F(16, 3)]),
        note="Discrete box filter g = [1/3, 1/3, 1/3] slid over f; 'Option 1: Shrink' keeps the 8 full windows. "
        "The kernel is symmetric, so convolution and cross-correlation agree.",
    ),
    GoldenCase(
        id="box-filter-1d-zero-pad",
        seed=S000,
        slide="What are Convolutions?",
        op="convolve",
        inputs=(_sig(BOX_F), [[[THIRD, THIRD, THIRD]]]),
        params={"padding": 1},
        expected=_sig([F(7, 3), 3, 0, 0, 1, F(10, 3), 4, 4, F(16, 3), F(11, 3)]),
        note="'Option 2: Pad (often 0's)': one zero each side; 0*1/3 + 4*1/3 + 3*1/3 = 7/3 and 5/3 + 6/3 + 0 = 11/3.",
    ),
    GoldenCase(
        id="sharpen-5x5",
        seed=S000,
        slide="Convolutions on Images",
        op="conv",
        inputs=(_img(IMAGE_5X5), _ker(SHARPEN)),
        params={},
        expected=_img([[6, 1, 8], [-7, 9, 2], [-5, -9, 3]]),
        errata=(
            Erratum(
                says="Image 5x5 bottom row '5 3 7 9 1' (on the slide whose output reads '6 1 8')",
                correct="bottom row '5 6 7 9 -1', as on every other slide of the sequence",
                why="the row changes on one slide only; the last output row uses the original values "
                "(-5 = 2 - 7 uses 6, -9 uses 7, 3 = 20 - 17 uses 9), so the changed row is a slide/extraction error",
            ),
        ),
        note="Sharpen kernel [[0,-1,0],[-1,5,-1],[0,-1,0]] on the 5x5 image, valid (no padding), stride 1 -> 3x3. "
        "Symmetric kernel: convolution = cross-correlation.",
    ),
    GoldenCase(
        id="conv-7x7-3x3-stride-1",
        seed=S000,
        slide="Convolution Layers: Stride",
        op="output_size",
        inputs=(7, 3),
        params={"stride": 1},
        expected=5,
        note="Input 7x7, filter 3x3, stride 1 -> output 5x5; "
        "(7-3)/1 + 1 = 5. Also seed 002 'A closer look at spatial dimensions:'.",
    ),
    GoldenCase(
        id="conv-7x7-3x3-stride-2",
        seed=S000,
        slide="Convolution Layers: Stride",
        op="output_size",
        inputs=(7, 3),
        params={"stride": 2},
        expected=3,
        note="(7-3)/2 + 1 = 3. Also seed 002 'A closer look at spatial dimensions:' ('=> 3x3 output!').",
    ),
    GoldenCase(
        id="conv-7x7-3x3-stride-3-illegal",
        seed=S000,
        slide="Convolution Layers: Dimensions",
        op="output_size",
        inputs=(7, 3),
        params={"stride": 3, "strict": True},
        expected=ParameterError,
        errata=(
            Erratum(
                says="N = 7, F = 3, S = 3: (7-3)/3 + 1 = 2.3",
                correct="(7-3)/3 + 1 = 7/3 = 2.33...",
                why="4/3 + 1 = 7/3 exactly; 2.3 truncates it (the conclusion 'fractions are illegal' stands)",
            ),
        ),
        note="'Does not really fit (remainder left) -> Illegal stride for input & filter size!': under strict=True "
        "the reference raises ParameterError.",
    ),
    GoldenCase(
        id="conv-7x7-3x3-stride-3-floor",
        seed=S000,
        slide="Convolution Layers: Padding",
        op="output_size",
        inputs=(7, 3),
        params={"stride": 3},
        expected=2,
        note="Without strict the floor formula of the padding slide applies: floor((7 + 2*0 - 3)/3) + 1 = 2 "
        "('as in practice an integer division is performed').",
    ),
    GoldenCase(
        id="pad-1-7x7-keeps-size",
        seed=S000,
        slide="Convolution Layers: Padding",
        op="output_size",
        inputs=(7, 3),
        params={"padding": 1, "stride": 1},
        expected=7,
        note="Input 7x7, filter 3x3, padding 1, stride 1 -> output 7x7. Also seed 002 'In practice: Common to zero pad "
        "the border' (F = 3 => zero pad with 1).",
    ),
    GoldenCase(
        id="same-convolution-mode",
        seed=S000,
        slide="Convolution Layers: Padding",
        op="output_size",
        inputs=(7, 3),
        params={"padding": "same"},
        expected=7,
        note="'Same convolution: output=input size; set padding to P = (F-1)/2'.",
    ),
    GoldenCase(
        id="valid-convolution-mode",
        seed=S000,
        slide="Convolution Layers: Padding",
        op="output_size",
        inputs=(7, 3),
        params={"padding": "valid"},
        expected=5,
        note="'Valid convolution: using no padding'.",
    ),
    GoldenCase(
        id="rgb-32-5x5-valid-28",
        seed=S000,
        slide="Convolutions on RGBImages",
        op="output_size",
        inputs=(32, 5),
        params={},
        expected=28,
        note="32x32x3 image, 5x5x3 filter, no padding: 28x28 locations. Also seed 002 'Convolution Layer' "
        "(six 5x5 filters -> 28x28x6) and the first layer of LeNet-5.",
    ),
    GoldenCase(
        id="shrink-28-to-24",
        seed=S000,
        slide="Convolution Layers: Dimensions",
        op="output_size",
        inputs=(28, 5),
        params={},
        expected=24,
        note="'Shrinking down so quickly (32 -> 28 -> 24 -> 20)': second 5x5 valid conv.",
    ),
    GoldenCase(
        id="shrink-24-to-20",
        seed=S000,
        slide="Convolution Layers: Dimensions",
        op="output_size",
        inputs=(24, 5),
        params={},
        expected=20,
        note="Third 5x5 valid conv of the 32 -> 28 -> 24 -> 20 chain.",
    ),
    GoldenCase(
        id="rgb-filter-75-dot-product",
        seed=S000,
        slide="Convolutions on RGBImages",
        op="conv",
        inputs=(_const((1, 3, 5, 5), 1), _const((1, 3, 5, 5), 1), [1]),
        params={},
        expected=[[[[76]]]],
        note="One 5x5x3 filter on one 5x5x3 chunk: a 5*5*3 = 75-dim dot product + bias (z = w^T x + b). "
        "All-ones x and w (constructed) make the output count the terms: 75 + b = 76.",
    ),
    GoldenCase(
        id="cs231n-32x32x3-10-filters-size",
        seed=S000,
        slide="Convolution Layers: Dimensions",
        op="output_size",
        inputs=(32, 5),
        params={"stride": 1, "padding": 2},
        expected=32,
        note="Input 32x32x3, 10 filters 5x5, stride 1, pad 2: (32 + 2*2 - 5)/1 + 1 = 32, i.e. 32x32x10. "
        "Also seed 002 'Examples time:'.",
    ),
    GoldenCase(
        id="cs231n-32x32x3-10-filters-params",
        seed=S000,
        slide="Convolution Layers: Dimensions",
        op="param_count",
        inputs=(3, 10, (5, 5)),
        params={},
        expected=760,
        note="Each filter has 5*5*3 + 1 = 76 params (+1 for bias) -> 76*10 = 760. Also seed 002 'Examples time:'.",
    ),
    GoldenCase(
        id="rgb-4-filters-weight-shape",
        seed=S000,
        slide="Example",
        op="conv",
        inputs=(_const((1, 3, 5, 5), 1), _const((4, 3, 5, 5), 1)),
        params={"stride": 1, "padding": 0},
        expected=[[[[75]], [[75]], [[75]], [[75]]]],
        note="Q1: 4 filters, kernel 5, stride 1, no padding, RGB input: the weight tensor is 4-D, (4, 3, 5, 5) in "
        "convspec's (C_out, C_in, kh, kw) layout; this call only accepts that shape. A1 (3, 4, 5, 5) is the "
        "(M, M', K1, K2) order of seed 004 'Channels' -- the same tensor, other axis order; A2 (4, 5, 5) drops "
        "the input depth; A3 is wrong, the weights do not depend on the image size. All-ones data (constructed).",
    ),
    GoldenCase(
        id="rgb-4-filters-weight-count",
        seed=S000,
        slide="Example",
        op="param_count",
        inputs=(3, 4, (5, 5)),
        params={"bias": False},
        expected=300,
        note="Entries of the (4, 3, 5, 5) weight tensor: 4*3*5*5 = 300 (plus 4 biases = 304 parameters).",
    ),
    GoldenCase(
        id="max-pool-2x2-a",
        seed=S000,
        slide="Pooling Layer: Max Pooling",
        op="max_pool",
        inputs=(_img(POOL_A), 2),
        params={"stride": 2},
        expected=_img([[6, 9], [3, 4]]),
        note="Max pool with 2x2 filters and stride 2 on a single depth slice.",
    ),
    GoldenCase(
        id="avg-pool-2x2-a",
        seed=S000,
        slide="Pooling Layer: Average Pooling",
        op="avg_pool",
        inputs=(_img(POOL_A), 2),
        params={"stride": 2},
        expected=_img([[F(5, 2), 6], [F(7, 4), 3]]),
        note="Average pool 2x2, stride 2: the slide's 2.5, 6, 1.75, 3 exactly.",
    ),
    GoldenCase(
        id="pool-output-size-4-2-2",
        seed=S000,
        slide="Pooling Layer",
        op="output_size",
        inputs=(4, 2),
        params={"stride": 2},
        expected=2,
        note="W_out = (W_in - F)/S + 1 with the common setting F = 2, S = 2: the 4x4 slices above pool to 2x2.",
    ),
    GoldenCase(
        id="receptive-field-one-3x3",
        seed=S000,
        slide="Receptive Field",
        op="receptive_field",
        inputs=([3],),
        params={},
        expected=3,
        note="'3x3 receptive field = 1 output pixel is connected to 9 input pixels'. Also seed 004 'Locality & "
        "sparse weight' ('one layer: the output units see 3 neighbouring inputs').",
    ),
    GoldenCase(
        id="receptive-field-two-3x3",
        seed=S000,
        slide="Receptive Field",
        op="receptive_field",
        inputs=([3, 3],),
        params={},
        expected=5,
        note="Two stacked 3x3 layers on the 7x7 input: '5x5 receptive field on the original input: one output value is "
        "connected to 25 input pixels'. Also seed 004 ('two layers: ... see 5 neighbouring inputs').",
    ),
    # ============================ 001: Applied Deep Learning (NTU) ================================
    GoldenCase(
        id="cs231n-conv-demo",
        seed=S001,
        slide="Example",
        op="conv",
        inputs=([CS231N_X], [CS231N_W0, CS231N_W1], [1, 0]),
        params={"stride": 2, "padding": 1},
        expected=[
            [
                [[0, -4, 3], [5, -2, -2], [2, 4, 5]],
                [[-3, -3, 0], [5, 10, -3], [1, 0, 6]],
            ]
        ],
        errata=(
            Erratum(
                says="the padded input rows have 8 numbers each (e.g. '0 2 1 2 2 0 0 0') "
                "for a 7x7x3 volume, and x[:, :, 0] "
                "row '0 1 0 0 0 0 1 0' puts a 1 into the zero border",
                correct="7 numbers per padded row (a stray trailing 0); "
                "that row is '0 1 0 0 0 1 0', i.e. the 5x5 interior "
                "row [1, 0, 0, 0, 1]",
                why="a 7x7 volume with pad 1 has 7 columns and a zero border; of the readings tried (stray column "
                "dropped at either end, the 1 kept in the border, zeroed, or moved in by one), this one reproduces "
                "the most printed outputs (16 of 18, all 9 of filter W1)",
            ),
            Erratum(
                says="w0[:, :, 2] lists six rows: '-1 -1 1 / 1 0 -1 / -1 -1 1 / 1 -1 1 / -1 0 1 / -1 0 -1'",
                correct="w0[:, :, 2] = [[-1, -1, 1], [1, 0, -1], [-1, -1, 1]] (the first three rows)",
                why="a 3x3x3 filter has three 3x3 slices; the last three rows are stray (a near-copy of w1[:, :, 2]); "
                "choosing any other 9 of those 12 weight rows matches fewer printed outputs",
            ),
            Erratum(
                says="o[:, :, 0] middle row '5 -4 -2'",
                correct="o[:, :, 0] middle row [5, -2, -2]",
                why="window rows 2-4, cols 2-4 of the padded input: "
                "depth 0 gives 1, depth 1 gives -2, depth 2 gives -2, "
                "+ b0 = 1 -> -2 (the printed numbers disagree with each other; no single edit of the input or "
                "weights reconciles -4 with the other 16 outputs)",
            ),
            Erratum(
                says="o[:, :, 0] bottom row '2 0 5'",
                correct="o[:, :, 0] bottom row [2, 4, 5]",
                why="window rows 4-6, cols 2-4 of the padded input with W0 and b0 = 1 sums to 4",
            ),
        ),
        note="cs231n conv demo: input 5x5x3 (shown padded by 1 to 7x7x3), "
        "two 3x3x3 filters W0 (b0 = 1) and W1 (b1 = 0), "
        "stride 2 -> output 3x3x2. The text's x[:, :, d] / w[:, :, d] slices are stored depth-first (C, H, W). "
        "With these readings o[:, :, 1] matches the slide exactly and o[:, :, 0] in 7 of 9 entries.",
    ),
    GoldenCase(
        id="cs231n-conv-demo-size",
        seed=S001,
        slide="Example",
        op="output_size",
        inputs=(5, 3),
        params={"stride": 2, "padding": 1},
        expected=3,
        note="Output volume (3x3x2): (5 + 2*1 - 3)/2 + 1 = 3.",
    ),
    GoldenCase(
        id="convolution-sum-indices",
        seed=S001,
        slide="Relationship with Convolution",
        op="convolve",
        inputs=(_sig(RAMP), [[DIGITS]]),
        params={"padding": "full"},
        expected=_sig([1, 12, 123, 234, 345, 450, 500]),
        errata=(
            Erratum(
                says="y[1] = x[-1]w[2] + x[0]w[1] + x[2]w[0]",
                correct="y[1] = x[-1]w[2] + x[0]w[1] + x[1]w[0]",
                why="y[n] = sum_k x[k] w[n-k]: the w[0] term needs k = n = 1 "
                "(the y[0], y[2], y[4] lines follow this rule)",
            ),
        ),
        note="y[n] = sum_k x[k] w[n-k] with x[k] = 0 outside 0..4 (y[0] starts at x[-2]w[2]): true convolution with "
        "'full' padding. Constructed x = [1..5], w = [1, 10, 100], so each output's digits name its terms: "
        "y[1] = 12 = x[0]w[1] + x[1]w[0] (the slide's x[2]w[0] would give 13), y[2] = 123, y[4] = 345.",
    ),
    GoldenCase(
        id="max-pool-2x2-b",
        seed=S001,
        slide="Pooling Layer",
        op="max_pool",
        inputs=(_img(POOL_B), 2),
        params={"stride": 2},
        expected=_img([[7, 8], [5, 3]]),
        note="Max(1,3,5,7) = 7, Max(0,0,5,5) = 5.",
    ),
    GoldenCase(
        id="avg-pool-2x2-b",
        seed=S001,
        slide="Pooling Layer",
        op="avg_pool",
        inputs=(_img(POOL_B), 2),
        params={"stride": 2},
        expected=_img([[4, 5], [F(5, 2), F(3, 2)]]),
        errata=(
            Erratum(
                says="Average Pooling output '4 5 / 5 3'",
                correct="[[4, 5], [5/2, 3/2]]",
                why="Avg(0,0,5,5) = 10/4 = 2.5 and Avg(3,3,0,0) = 6/4 = 1.5; the bottom row repeats the max-pooling "
                "result (Max(0,0,5,5) = 5, Max(3,3,0,0) = 3)",
            ),
        ),
        note="Avg(1,3,5,7) = 4, Avg(2,4,6,8) = 5.",
    ),
    GoldenCase(
        id="max-pool-ties-smaller-index",
        seed=S001,
        slide="Max-Pooling Layers during Training",
        op="max_pool_indices",
        inputs=(_img(POOL_B), 2),
        params={"stride": 2},
        expected=_img([[5, 7], [12, 10]]),
        note="'if a1 = a2?? Choose the node with smaller index', applied to the pooling example: the windows "
        "(0,0,5,5) and (3,3,0,0) tie; the first 5 (row 3, col 0 -> flat 12) and the first 3 (row 2, col 2 -> 10) win.",
    ),
    GoldenCase(
        id="max-pool-backward-routes-to-max",
        seed=S001,
        slide="Max-Pooling Layers during Training",
        op="max_pool_backward",
        inputs=(_img([[1, 2], [3, 4]]), _img(POOL_B), 2),
        params={"stride": 2},
        expected=(_img([[0, 0, 0, 0], [0, 1, 0, 2], [0, 0, 4, 0], [3, 0, 0, 0]]),),
        note="'Propagate to the previous layer': each window's gradient goes to its (first) maximum only. "
        "Gradients [[1,2],[3,4]] are constructed.",
    ),
    GoldenCase(
        id="avg-pool-backward-half",
        seed=S001,
        slide="Avg-Pooling Layers during Training",
        op="avg_pool_backward",
        inputs=(_sig([1]), _sig([3, 5]), 2),
        params={},
        expected=(_sig([F(1, 2), F(1, 2)]),),
        note="b2 = (a2 + a3)/2: db2/da2 = db2/da3 = 1/2. "
        "Inputs a2 = 3, a3 = 5 (constructed; the gradient does not depend on them).",
    ),
    GoldenCase(
        id="relu-derivative",
        seed=S001,
        slide="ReLU during Training",
        op="relu_backward",
        inputs=(_sig([1, 1, 1, 1, 1, 1]), _sig([-2, -1, 0, F(1, 2), 1, 2])),
        params={},
        expected=(_sig([0, 0, 0, 1, 1, 1]),),
        errata=(
            Erratum(
                says="dn_out/dn_in = 1 if n_in > 1, 0 otherwise",
                correct="dn_out/dn_in = 1 if n_in > 0, 0 otherwise",
                why="ReLU(n) = max(0, n) has slope 1 for every positive input "
                "(e.g. n_in = 1/2 and n_in = 1), not only above 1",
            ),
        ),
        note="Upstream gradient 1 at inputs -2, -1, 0, 1/2, 1, 2 (constructed). "
        "At 0 the derivative is 0 ('otherwise').",
    ),
    GoldenCase(
        id="vgg-one-5x5-params",
        seed=S001,
        slide="VGGNet",
        op="param_count",
        inputs=(1, 1, (5, 5)),
        params={"bias": False},
        expected=25,
        note="One 5x5 filter: 5*5 = 25 parameters, 1 non-linearity.",
    ),
    GoldenCase(
        id="vgg-3x3-layer-params",
        seed=S001,
        slide="VGGNet",
        op="param_count",
        inputs=(1, 1, (3, 3)),
        params={"bias": False},
        expected=9,
        note="Two 3x3 filters: 3*3*2 = 18 parameters (two layers of this 9), 2 non-linearities; fewer than 25.",
    ),
    GoldenCase(
        id="vgg-one-5x5-receptive-field",
        seed=S001,
        slide="VGGNet",
        op="receptive_field",
        inputs=([5],),
        params={},
        expected=5,
        note="One 5x5 layer sees 5x5 -- the same as two stacked 3x3 layers (case receptive-field-two-3x3).",
    ),
    GoldenCase(
        id="alphago-layer-1-size",
        seed=S001,
        slide="Why CNN for Go?",
        op="output_size",
        inputs=(19, 5),
        params={"padding": 2, "stride": 1},
        expected=19,
        note="19x19x48 input zero-padded into 23x23 (pad 2), k filters 5x5 stride 1 -> 19x19xk.",
    ),
    GoldenCase(
        id="alphago-hidden-layer-size",
        seed=S001,
        slide="Why CNN for Go?",
        op="output_size",
        inputs=(19, 3),
        params={"padding": 1, "stride": 1},
        expected=19,
        note="Hidden layers 2 to 12: zero pad to 21x21 (pad 1), k filters 3x3 stride 1 -> 19x19xk.",
    ),
    GoldenCase(
        id="alphago-final-1x1-size",
        seed=S001,
        slide="Why CNN for Go?",
        op="output_size",
        inputs=(19, 1),
        params={"stride": 1},
        expected=19,
        note="Final layer: 1 filter 1x1 stride 1 -> 19x19x1 (then a position-dependent bias and a softmax).",
    ),
    GoldenCase(
        id="alphago-layer-1-params-k128",
        seed=S001,
        slide="Why CNN for Go?",
        op="param_count",
        inputs=(48, 128, (5, 5)),
        params={},
        expected=153728,
        note="Derived: layer 1 with k = 128 filters of 5x5x48 plus biases: 128*(5*5*48 + 1) = 153728.",
    ),
    GoldenCase(
        id="kmax-pool-keeps-order",
        seed=S001,
        slide="k-max Pooling",
        op="kmax_pool",
        inputs=(_sig([1, 5, 3, 2, 4]), 3),
        params={},
        expected=_sig([5, 3, 4]),
        note="'choose the k-max values; preserve the order of input values'. "
        "Constructed numbers (the slide gives none).",
    ),
    GoldenCase(
        id="dynamic-kmax-layer-1",
        seed=S001,
        slide="Dynamic k-max Pooling",
        op="dynamic_k",
        inputs=(1, 3, 18, 3),
        params={},
        expected=12,
        note="k_l = max(k_top, ceil((L - l)/L * s)). Numbers from the DCNN paper's example that the slide figure "
        "shows (Kalchbrenner et al. 2014: s = 18, L = 3, k_top = 3 -> k1 = 12, k2 = 6).",
    ),
    GoldenCase(
        id="dynamic-kmax-layer-2",
        seed=S001,
        slide="Dynamic k-max Pooling",
        op="dynamic_k",
        inputs=(2, 3, 18, 3),
        params={},
        expected=6,
        note="Second layer of the same example: max(3, ceil(1/3 * 18)) = 6.",
    ),
    # ============================ 002: Deep Learning Lecture 4 (Uppsala) ==========================
    GoldenCase(
        id="relu-max-0-x",
        seed=S002,
        slide="Recap – Activation functions $\\sigma(x)$",
        op="relu",
        inputs=(_sig([-3, F(-1, 2), 0, F(1, 2), 3]),),
        params={},
        expected=_sig([0, 0, 0, F(1, 2), 3]),
        note="ReLU(x) = max(0, x). Constructed inputs.",
    ),
    GoldenCase(
        id="linear-classifier-cat-scores",
        seed=S002,
        slide="Interpreting a Linear Classifier: Visual Viewpoint",
        op="linear",
        inputs=([CAT_PIXELS], CAT_W, CAT_B),
        params={},
        expected=[[F("-96.8"), F("437.9"), F("60.75")]],
        errata=(
            Erratum(
                says="scores -96.8, 437.9, 61.95",
                correct="scores -96.8, 437.9, 60.75",
                why="third row: 0*56 + 0.25*231 + 0.2*24 - 0.3*2 - 1.2 = 57.75 + 4.8 - 0.6 - 1.2 = 60.75",
            ),
        ),
        note="f(x, W) = Wx + b for the 4-pixel cat. The text keeps only the biases (1.1, 3.2, -1.2) and scores; "
        "x = [56, 231, 24, 2] and W are those of the cs231n figure the slide shows. The first two scores "
        "reproduce exactly, which confirms the reading of x and W.",
    ),
    GoldenCase(
        id="filter-3x3-weights",
        seed=S002,
        slide="2d filtering",
        op="param_count",
        inputs=(1, 1, (3, 3)),
        params={},
        expected=10,
        note="'3 x 3 + 1 = 10 weights for processing the whole image (of any size)'.",
    ),
    GoldenCase(
        id="fc-5x5-image-weights",
        seed=S002,
        slide="2d filtering",
        op="param_count",
        inputs=(25, 25, 1),
        params={},
        expected=650,
        errata=(
            Erratum(
                says="Cf. 25 x 9 + 1 = 226 weights for a Fully connected layer for 5x5 images",
                correct="(25 + 1) x 25 = 650 parameters for a fully connected layer from a 5x5 image to a 5x5 output",
                why="fully connected means every one of the 25 outputs sees all 25 inputs (the deck's own summary: "
                "'(Input size plus one) x output size'); 25 x 9 counts 3x3 local connections without weight sharing",
            ),
        ),
        note="The figure maps a 5x5 layer to a 5x5 layer, 'preserving the spatial shape'. FC = kernel_size 1 on the "
        "flattened input.",
    ),
    GoldenCase(
        id="unsharp-smoothed-impulse",
        seed=S002,
        slide="Sharpening an image",
        op="conv",
        inputs=(_img(IDENTITY3), _ker(BOX9)),
        params={"padding": 1},
        expected=_img(BOX9),
        note="The 'original' impulse [[0,0,0],[0,1,0],[0,0,0]] smoothed by the 1/9 box gives the 'smoothed' kernel; "
        "9 * (original - smoothed) is the slide's '9 * diff.' kernel [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] "
        "(sharpened = original + alpha * (original - smoothed)).",
    ),
    GoldenCase(
        id="same-pad-f5",
        seed=S002,
        slide="In practice: Common to zero pad the border",
        op="output_size",
        inputs=(7, 5),
        params={"padding": 2},
        expected=7,
        note="Stride 1, F = 5 => zero pad with 2 preserves the size (shown on the 7x7 input of the slide).",
    ),
    GoldenCase(
        id="same-pad-f7",
        seed=S002,
        slide="In practice: Common to zero pad the border",
        op="output_size",
        inputs=(7, 7),
        params={"padding": 3},
        expected=7,
        note="Stride 1, F = 7 => zero pad with 3 preserves the size.",
    ),
    GoldenCase(
        id="conv-1x1-64-to-32-params",
        seed=S002,
        slide="(btw, 1x1 convolution layers make perfect sense)",
        op="param_count",
        inputs=(64, 32, (1, 1)),
        params={},
        expected=2080,
        note="1x1 CONV with 32 filters, each of size 1x1x64 (a 64-dimensional dot product): 32*64 + 32 biases.",
    ),
    GoldenCase(
        id="conv-1x1-channel-dot-product",
        seed=S002,
        slide="(btw, 1x1 convolution layers make perfect sense)",
        op="conv",
        inputs=(
            [[[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]]],
            [[[[1]], [[0]], [[-1]]], [[[1]], [[1]], [[1]]]],
        ),
        params={},
        expected=[[[[-8, -8], [-8, -8]], [[15, 18], [21, 24]]]],
        note="A 1x1 conv is a per-pixel dot product across the depth: filter (1, 0, -1) gives R - B, filter (1, 1, 1) "
        "gives R + G + B; the spatial size is kept. Constructed numbers (the slide's volume is 56x56x64).",
    ),
    GoldenCase(
        id="convnetjs-conv-params",
        seed=S002,
        slide="ConvNetJS demo: training on CIFAR-10",
        op="param_count",
        inputs=(3, 16, (5, 5)),
        params={},
        expected=1216,
        note="conv (32x32x16), filter size 5x5x3, stride 1: parameters 16x5x5x3 + 16 = 1216.",
    ),
    GoldenCase(
        id="convnetjs-conv-size",
        seed=S002,
        slide="ConvNetJS demo: training on CIFAR-10",
        op="output_size",
        inputs=(32, 5),
        params={"stride": 1, "padding": 2},
        expected=32,
        note="input (32x32x3) -> conv (32x32x16) with 5x5 filters, stride 1: the size is kept, so the padding is 2.",
    ),
    GoldenCase(
        id="correlation-1d-sum-over-i",
        seed=S002,
        slide="Convolutional neural network",
        op="conv",
        inputs=(_sig(RAMP), [[DIGITS]], [0]),
        params={"padding": 1},
        expected=_sig([210, 321, 432, 543, 54]),
        errata=(
            Erratum(
                says="y_j = sum_{i=-k}^{k} W_k x_{j+k} + b_j",
                correct="y_j = sum_{i=-k}^{k} W_i x_{j+i} + b",
                why="the sum runs over i, so the weight and input offset must use i; "
                "with weight sharing the bias is one "
                "shared b, not one per output position",
            ),
        ),
        note="Local filter with k = 1 (taps W_{-1}, W_0, W_1 = 1, 10, 100, constructed) on x = [1..5], zero-padded: "
        "cross-correlation, e.g. y_1 = 1*1 + 10*2 + 100*3 = 321.",
    ),
    GoldenCase(
        id="lenet5-c1-size",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="output_size",
        inputs=(32, 5),
        params={},
        expected=28,
        note="LeNet-5 (Fig. 2 of LeCun et al. 1998, named on the slide; the sizes are the figure's): "
        "32x32 input, C1: 6@28x28 (5x5 conv).",
    ),
    GoldenCase(
        id="lenet5-s2-size",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="output_size",
        inputs=(28, 2),
        params={"stride": 2},
        expected=14,
        note="S2: 6@14x14 (2x2 subsampling, stride 2).",
    ),
    GoldenCase(
        id="lenet5-c3-size",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="output_size",
        inputs=(14, 5),
        params={},
        expected=10,
        note="C3: 16@10x10 (5x5 conv).",
    ),
    GoldenCase(
        id="lenet5-s4-size",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="output_size",
        inputs=(10, 2),
        params={"stride": 2},
        expected=5,
        note="S4: 16@5x5.",
    ),
    GoldenCase(
        id="lenet5-c5-size",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="output_size",
        inputs=(5, 5),
        params={},
        expected=1,
        note="C5: 120@1x1 (5x5 conv on 5x5), then F6: 84, output: 10.",
    ),
    GoldenCase(
        id="lenet5-c1-params",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="param_count",
        inputs=(1, 6, (5, 5)),
        params={},
        expected=156,
        note="C1: 6*(5*5 + 1) = 156 trainable parameters (as in the paper).",
    ),
    GoldenCase(
        id="lenet5-c3-params-dense",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="param_count",
        inputs=(6, 16, (5, 5)),
        params={},
        expected=2416,
        note="C3 fully connected across depth: 16*(6*5*5 + 1) = 2416. The paper's C3 has 1516, because its connection "
        "table links each C3 map to only 3, 4 or 6 of the S2 maps (not a standard conv).",
    ),
    GoldenCase(
        id="lenet5-c5-params",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="param_count",
        inputs=(16, 120, (5, 5)),
        params={},
        expected=48120,
        note="C5: 120*(16*5*5 + 1) = 48120 (as in the paper).",
    ),
    GoldenCase(
        id="lenet5-f6-params",
        seed=S002,
        slide="Deep convolutional neural networks - born in 1998",
        op="param_count",
        inputs=(120, 84, 1),
        params={},
        expected=10164,
        note="F6 fully connected: 84*(120 + 1) = 10164 (as in the paper).",
    ),
    # ============================ 003: Deep Learning: CNNs (SURF) =================================
    GoldenCase(
        id="output-size-8-3",
        seed=S003,
        slide="Convolutions Compute",
        op="output_size",
        inputs=(8, 3),
        params={},
        expected=6,
        note="'Output_size = inputSize - (KernelSize - 1)': the 8x8 source layer with a 3x3 kernel -> 6x6 feature map.",
    ),
    GoldenCase(
        id="identity-kernel-8x8",
        seed=S003,
        slide="Convolutions",
        op="conv",
        inputs=(_img(IMAGE_8X8), _ker(IDENTITY3)),
        params={},
        expected=_img([r[1:7] for r in IMAGE_8X8[1:7]]),
        note="The 'Identity' kernel of the kernel table returns the image (its 6x6 interior, no padding). The source "
        "layer is the 8x8 image of the 'Convolutions' slides.",
    ),
    GoldenCase(
        id="sharpen-kernel-8x8",
        seed=S003,
        slide="Convolutions",
        op="conv",
        inputs=(_img(IMAGE_8X8), _ker(SHARPEN)),
        params={},
        expected=_img(
            [
                [-4, 2, 8, -18, 31, 11],
                [32, -1, -2, 15, 11, 6],
                [-3, 1, 12, 22, -8, -7],
                [-5, 11, -5, 3, -8, 27],
                [20, 25, -18, -1, -10, -3],
                [-21, 5, 19, -4, 22, -3],
            ]
        ),
        errata=(
            Erratum(
                says="third kernel table: 'Sharpen' next to [[0, 1, 0], [1, -4, 1], [0, 1, 0]]",
                correct="Sharpen is [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]; [[0, 1, 0], [1, -4, 1], [0, 1, 0]] is the "
                "Laplacian, an 'Edge detection' kernel",
                why="the first two tables of the slide list both kernels with these labels; "
                "sharpen = identity - Laplacian "
                "(its weights sum to 1 and keep the image), while the Laplacian's sum to 0 (flat regions -> 0)",
            ),
        ),
        note="Sharpen kernel on the 8x8 source layer (valid); values computed independently (direct loop) and by the "
        "reference. The kernel is symmetric, so the slide's convolution formula gives the same.",
    ),
    GoldenCase(
        id="vgg16-fc6-params",
        seed=S003,
        slide="VGG16 and ResNet (2014, 2015)",
        op="param_count",
        inputs=(7 * 7 * 512, 4096, 1),
        params={},
        expected=102764544,
        errata=(
            Erratum(
                says="VGG16: construct large and deep models (120M params)",
                correct="VGG16 has 138,357,544 parameters (about 138M)",
                why="summing param_count over its 13 3x3 conv layers and 3 FC layers (configuration D of seed 001's "
                "table, 224x224 input) gives 138,357,544; this first FC layer alone has 102,764,544",
            ),
        ),
        note="fc6 of VGG16: the 7x7x512 output of the last max pool, fully connected to 4096 units.",
    ),
    # ============================ 004: COMP 551 (McGill) ==========================================
    GoldenCase(
        id="correlation-1d-same",
        seed=S004,
        slide="Cross-correlation (1D)",
        op="conv",
        inputs=(_sig(RAMP), [[DIGITS]]),
        params={"padding": "same"},
        expected=_sig([210, 321, 432, 543, 54]),
        errata=(
            Erratum(
                says="y_c = g(sum_{k=1}^K w_k x_{c - floor(K/2) + k})",
                correct="y_c = g(sum_{k=1}^K w_k x_{c - floor(K/2) + k - 1})",
                why="w_1 = W_{c, c-floor(K/2)} multiplies x_{c-floor(K/2)}, "
                "so with k counted from 1 the offset needs -1 "
                "(the slide's own pooling formula x_{d+k-1} has it)",
            ),
        ),
        note="The parameter-sharing matrix row W_{c, c-1..c+1} = w = [1, 10, 100] (constructed) on x = [1..5] with "
        "zeros outside: y_c = x_{c-1} + 10 x_c + 100 x_{c+1}.",
    ),
    GoldenCase(
        id="padding-full-size",
        seed=S004,
        slide="Convolution (2D)",
        op="output_size",
        inputs=(5, 3),
        params={"padding": "full"},
        expected=7,
        note="'zero-pad the input, and produce all non-zero outputs (full): the output is larger than the input': "
        "5 + 3 - 1 = 7 (sizes of the Dumoulin & Visin figure the slide credits).",
    ),
    GoldenCase(
        id="padding-same-size",
        seed=S004,
        slide="Convolution (2D)",
        op="output_size",
        inputs=(5, 3),
        params={"padding": "same"},
        expected=5,
        note="'zero-pad the input, to keep the output dims similar to input (same)'.",
    ),
    GoldenCase(
        id="padding-valid-size",
        seed=S004,
        slide="Convolution (2D)",
        op="output_size",
        inputs=(5, 3),
        params={"padding": "valid"},
        expected=3,
        note="'no padding at all (valid): the output is smaller than the input': 5 - 3 + 1 = 3.",
    ),
    GoldenCase(
        id="mnist-vectorize-784",
        seed=S004,
        slide="MLP and image data",
        op="flatten",
        inputs=([[[list(range(28 * r, 28 * r + 28)) for r in range(28)]]],),
        params={},
        expected=[list(range(784))],
        note="'first vectorize the input x -> vec(x) in R^784': a 28x28 image (pixels numbered row by row, "
        "constructed) flattens row-major to 784 values.",
    ),
    GoldenCase(
        id="conv-backward-1d",
        seed=S004,
        slide="Training: backpropagation through convolution",
        op="conv_backward",
        inputs=(_sig([1, 2]), _sig([1, 2, 3, 4]), [[DIGITS]]),
        params={},
        expected=(_sig([1, 12, 120, 200]), [[[5, 8, 11]]], None),
        errata=(
            Erratum(
                says="using backprop. we have dJ/du_d so far",
                correct="we have dJ/dy_d so far",
                why="the op is y_d = sum_k w_k x_{d+k-1}; the gradient arriving from the next layer is with respect to "
                "its output y_d (both chain-rule sums that follow are over dJ/dy_d')",
            ),
        ),
        note="y_d = sum_k w_k x_{d+k-1} with x = [1, 2, 3, 4], w = [1, 10, 100], dJ/dy = [1, 2] (constructed): "
        "dJ/dw_k = sum_d' dJ/dy_d' x_{d'+k-1} = [1+4, 2+6, 3+8]; dJ/dx is the transposed convolution of dJ/dy.",
    ),
    GoldenCase(
        id="conv-transpose-1d",
        seed=S004,
        slide="Transposed convolution",
        op="conv_transpose",
        inputs=(_sig([1, 2]), [[DIGITS]]),
        params={},
        expected=_sig([1, 12, 120, 200]),
        note="'Transposed convolution produces a larger output from a smaller input' and recovers the shape of the "
        "original input: the length-2 output of a valid 3-tap conv of a length-4 input maps back to length 4 "
        "(= full padding + flipped kernel). Constructed numbers.",
    ),
    GoldenCase(
        id="conv-transpose-2d-shape",
        seed=S004,
        slide="Transposed convolution",
        op="conv_transpose",
        inputs=(_const((1, 1, 5, 5), 1), _const((1, 1, 3, 3), 1)),
        params={},
        expected=_img([[a * b for b in (1, 2, 3, 3, 3, 2, 1)] for a in (1, 2, 3, 3, 3, 2, 1)]),
        note="A 7x7 -> 5x5 valid 3x3 conv, transposed: 5x5 -> 7x7. All-ones data (constructed): each output counts "
        "the windows covering that input pixel.",
    ),
    # --- the layers the lectures name without numbers: constants and constructions from the papers ---------
    GoldenCase(
        id="lrn-alexnet-seven-channels",
        seed=KRIZHEVSKY2012,
        slide="Section 3.3, Local Response Normalization, b = a / (k + alpha sum a^2)^beta",
        op="local_response_norm",
        inputs=([[[[c]] for c in range(1, 8)]],),
        params={"size": 5, "alpha": F(1, 10**4), "beta": 1, "k": 2},
        expected=[[[[F(c) / (2 + F(s, 10**4))]] for c, s in zip(range(1, 8), LRN_SUMS)]],
        note="AlexNet's k = 2, n = 5, alpha = 1e-4 (not divided by n: the paper's formula), with beta = 1 instead "
        "of 0.75 so that the value is rational. Channels 1..7 at one position (constructed): channel c sums the "
        "squares of channels max(0, c-2) .. min(6, c+2), clipped at the edges as the paper's sum bounds are.",
    ),
    GoldenCase(
        id="lrn-even-window",
        seed=KRIZHEVSKY2012,
        slide="Section 3.3, Local Response Normalization, b = a / (k + alpha sum a^2)^beta",
        op="local_response_norm",
        inputs=([[[[c]] for c in RAMP]],),
        params={"size": 4, "alpha": 1, "beta": 1, "k": 1},
        expected=[[[[F(1, 6)]], [[F(2, 15)]], [[F(3, 31)]], [[F(4, 55)]], [[F(5, 51)]]]],
        note="The paper's n is odd (5); for an even size the spec takes size // 2 channels before c and "
        "(size - 1) // 2 after (PyTorch's placement; ONNX's is the mirror). Constructed numbers: channel 0 sums "
        "1 + 4, channel 2 sums channels 0..3 (1 + 4 + 9 + 16), channel 4 sums channels 2..4 (9 + 16 + 25).",
    ),
    GoldenCase(
        id="dropout-alexnet-half",
        seed=KRIZHEVSKY2012,
        slide="Section 4.2, Dropout",
        op="dropout",
        inputs=([[1, -2, 3, 5]], [[1, 0, 1, 1]]),
        params={"p": F(1, 2)},
        expected=[[2, 0, 6, 10]],
        note="AlexNet drops each hidden unit with probability 0.5 and multiplies the outputs by 0.5 at test time; "
        "the spec's inverted dropout scales the kept units by 1 / (1 - p) = 2 during training instead (the "
        "same expectation), with the mask given: units 0, 2, 3 kept (constructed).",
    ),
    GoldenCase(
        id="batch-norm-training-step",
        seed=IOFFE2015,
        slide="Algorithm 1, Batch Normalizing Transform, applied to activation x over a mini-batch",
        op="batch_norm",
        inputs=([[[1, 2]], [[3, 4]]], [2], [1]),
        params={"eps": 2.75},
        expected=[[[-0.5, 0.5]], [[1.5, 2.5]]],
        arithmetic="float64",
        note="One channel holding 1, 2, 3, 4 (N = 2, L = 2; constructed): mu_B = 5/2, sigma_B^2 = 5/4 (the biased "
        "mini-batch variance of Algorithm 1), eps = 11/4 so that sqrt(sigma^2 + eps) = 2 and every value is exact "
        "in binary: y = gamma (x - 5/2) / 2 + beta = x - 3/2.",
    ),
    GoldenCase(
        id="batch-norm-inference",
        seed=IOFFE2015,
        slide="Algorithm 2, Training a Batch-Normalized Network, step 11 (inference)",
        op="batch_norm_inference",
        inputs=([[4, 1], [6, 3]], [1, 3], [0, -1], [2, 1], [3, 8]),
        params={"eps": 1},
        expected=[[1.0, -1.0], [2.0, 1.0]],
        arithmetic="float64",
        note="y = gamma / sqrt(Var[x] + eps) * x + (beta - gamma E[x] / sqrt(Var[x] + eps)) with the population "
        "statistics given: channel 0 mean 2, var 3; channel 1 mean 1, var 8; eps = 1 makes the roots 2 and 3 "
        "(constructed numbers, exact in binary).",
    ),
    GoldenCase(
        id="batch-norm-running-variance-unbiased",
        seed=IOFFE2015,
        slide="Algorithm 2, Training a Batch-Normalized Network, step 10: Var[x] = m / (m - 1) E_B[sigma_B^2]",
        op="batch_norm_running_stats",
        inputs=([0], [1], [[[1, 2]], [[3, 4]]]),
        params={"momentum": F(1, 10)},
        expected=([F(1, 4)], [F(16, 15)]),
        note="The paper's inference statistics use the unbiased variance m/(m-1) sigma_B^2 (5/3 for 1, 2, 3, 4); "
        "the running estimate moves a fraction momentum = 1/10 towards the batch (constructed numbers): "
        "mean 0.9 * 0 + 0.1 * 5/2 = 1/4, var 0.9 * 1 + 0.1 * 5/3 = 16/15.",
    ),
    GoldenCase(
        id="concat-inception-3a",
        seed=SZEGEDY2015,
        slide="Table 1, inception (3a): #1x1 64, #3x3 128, #5x5 32, pool proj 32 -> 256 channels",
        op="concat",
        inputs=(tuple(_const((1, c, 1, 1), i) for i, c in enumerate(INCEPTION_3A, start=1)),),
        params={"axis": 1},
        expected=[[[[i]] for i, c in enumerate(INCEPTION_3A, start=1) for _ in range(c)]],
        note="The four branch outputs of inception (3a) at one position, each filled with its branch number "
        "(constructed): the filter concatenation stacks them along the channel axis in the order 1x1, 3x3, 5x5, "
        "pool projection, 64 + 128 + 32 + 32 = 256 channels.",
    ),
)


def by_id(case_id) -> GoldenCase:
    for case in CASES:
        if case.id == case_id:
            return case
    raise KeyError(case_id)


# --- evaluation helpers (used by the tests and `python -m convspec.reference`) ---------------------


def exact(value):
    """A nested list of ints/Fractions -> an object array of Fractions; anything else unchanged."""
    import numpy as np

    if isinstance(value, list):
        arr = np.array(value, dtype=object)
        return np.vectorize(Fraction, otypes=[object])(arr) if arr.size else arr
    if isinstance(value, tuple) and value and all(isinstance(v, list) for v in value):
        return tuple(exact(v) for v in value)  # a sequence of arrays
    return value


def floating(value):
    """Like exact(), into float64 arrays (for the cases whose `arithmetic` is "float64")."""
    import numpy as np

    if isinstance(value, list):
        return np.array(value, dtype=np.float64)
    if isinstance(value, tuple) and value and all(isinstance(v, list) for v in value):
        return tuple(floating(v) for v in value)
    return value


def call(case: GoldenCase) -> str:
    """The op call as text, arrays abbreviated to their shapes."""
    import numpy as np

    def show(v):
        if isinstance(v, list):
            return "array" + str(tuple(np.shape(np.array(v, dtype=object))))
        return repr(v)

    args = [show(v) for v in case.inputs] + [f"{k}={show(v)}" for k, v in case.params.items()]
    return f"{case.op}({', '.join(args)})"


def evaluate(case: GoldenCase):
    """Run the case's op on exact (Fraction) inputs; returns the op's result as plain nested lists/ints."""
    import importlib

    ref = importlib.import_module(__package__)
    fn = getattr(ref, case.op)
    args, kwargs = arguments(case)
    return plain(fn(*args, **kwargs))


def arguments(case: GoldenCase):
    """The case's (args, kwargs) as the op takes them: Fraction arrays, or float64 arrays for the cases
    whose `arithmetic` is "float64"."""
    convert = floating if case.arithmetic == "float64" else exact
    return [convert(v) for v in case.inputs], {k: convert(v) for k, v in case.params.items()}


def plain(value):
    """ndarray -> nested lists; numpy scalars -> Python numbers; tuples kept."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def is_exact(value) -> bool:
    """True if no float hides in the value (the comparison then is exact arithmetic). A "float64" case's
    result is floats by definition: check `case.arithmetic` first."""
    if isinstance(value, (list, tuple)):
        return all(is_exact(v) for v in value)
    return not isinstance(value, float)


def expects_error(case: GoldenCase) -> bool:
    return isinstance(case.expected, type) and issubclass(case.expected, Exception)
