"""What the graph needs that ONNX (Runtime) lacks in float64: erf, the normal quantile and
a sorted search.

ONNX Runtime has no float64 ``Erf`` (GELU needs it), and ONNX has neither ``Erfinv`` nor
``searchsorted`` (quantile scaling needs both: the reason it did not export through
``torch.onnx``). Each is rebuilt here from plain operators, to float64 accuracy:

- erf and erfinv are Chebyshev interpolants, fitted when the graph is built (numpy's
  ``Chebyshev.interpolate`` of scipy's ``erf`` and ``erfinv``) and evaluated by Clenshaw's
  recurrence: within about 1e-13 of scipy on their domains (the tests check it).
- searchsorted is a binary search unrolled over the knots' halvings (binary lifting): one
  gather per step, so memory grows with rows x columns, not rows x columns x knots as a
  comparison of every value with every knot would.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import chebyshev
from onnx import TensorProto, helper

from .graph import Graph

ERF_DEGREE = 40
ERF_LIMIT = 6.0  # 1 - erf(6) = 2e-17: beyond it erf is +-1 in float64
QUANTILE_DEGREE = 24
# the normal quantile is fitted on [UNIFORM_FLOOR, 1 - UNIFORM_FLOOR]; InputEncoder clamps
# its uniforms to [1e-3, 1 - 1e-3], well inside
UNIFORM_FLOOR = 1e-4


def clenshaw(g: Graph, x: str, coefficients: np.ndarray, low: float, high: float) -> str:
    """The Chebyshev series sum(c_k T_k(t)), t = x mapped from [low, high] to [-1, 1]."""
    t = g.mul(g.sub(x, g.const((low + high) / 2)), g.const(2 / (high - low)))
    two_t = g.add(t, t)
    # b_k = c_k + 2t b_(k+1) - b_(k+2), from the highest k down to 1
    b1, b2 = g.const(coefficients[-1]), None
    for c in coefficients[-2:0:-1]:
        step = g.mul(two_t, b1)
        step = g.sub(step, b2) if b2 is not None else step
        b1, b2 = g.add(step, g.const(c)), b1
    last = g.mul(t, b1)
    last = g.sub(last, b2) if b2 is not None else last
    return g.add(last, g.const(coefficients[0]))


def erf(g: Graph, x: str) -> str:
    """erf(x) in float64: sign(x) times an interpolant of erf on [0, ERF_LIMIT]."""
    from scipy.special import erf as scipy_erf

    fit = chebyshev.Chebyshev.interpolate(scipy_erf, ERF_DEGREE, domain=[0.0, ERF_LIMIT])
    size = g.op("Min", g.op("Abs", x), g.const(ERF_LIMIT))
    return g.mul(g.op("Sign", x), clenshaw(g, size, fit.coef, 0.0, ERF_LIMIT))


def _erfinv_ratio(w: np.ndarray) -> np.ndarray:
    """erfinv(x) / x as a function of w = -log(1 - x^2): smooth on [0, inf), as in Giles'
    single-precision erfinv, so that a low-degree polynomial in w fits it."""
    from scipy.special import erfinv

    x = np.sqrt(-np.expm1(-w))
    return np.where(x > 0, erfinv(x) / np.where(x > 0, x, 1.0), math.sqrt(math.pi) / 2)


def normal_quantile(g: Graph, u: str) -> str:
    """sqrt(2) erfinv(2u - 1), the standard normal quantile, for u in
    [UNIFORM_FLOOR, 1 - UNIFORM_FLOOR]."""
    top = -math.log1p(-((1 - 2 * UNIFORM_FLOOR) ** 2))
    fit = chebyshev.Chebyshev.interpolate(_erfinv_ratio, QUANTILE_DEGREE, domain=[0.0, top])
    x = g.sub(g.add(u, u), g.const(1.0))
    w = g.op("Neg", g.op("Log", g.sub(g.const(1.0), g.mul(x, x))))
    ratio = clenshaw(g, w, fit.coef, 0.0, top)
    return g.mul(g.const(math.sqrt(2)), g.mul(x, ratio))


class Knots:
    """Sorted knots (members, features, q) as graph constants: flattened, with where each
    (member, feature)'s row starts, so that one ``Gather`` reads any knot of any column."""

    def __init__(self, g: Graph, knots: np.ndarray) -> None:
        members, features, self.q = knots.shape
        self.flat = g.const(knots.reshape(-1))
        starts = np.arange(members * features).reshape(members, 1, features) * self.q
        self.starts = g.const(starts, np.int64)  # (members, 1, features)

    def at(self, g: Graph, index: str) -> str:
        """knots[member, feature, index] for an int64 index (members, rows, features)."""
        return g.op("Gather", self.flat, g.add(self.starts, index), axis=0)


def searchsorted(g: Graph, knots: Knots, values: str, *, right: bool) -> str:
    """``torch.searchsorted(knots, values, right=right)`` for values (members, rows,
    features): per value, how many of its column's knots are below it (at or below it with
    ``right``), as int64 (members, rows, features)."""
    q = knots.q
    compare = "LessOrEqual" if right else "Less"
    zero = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    count = g.op("ConstantOfShape", g.op("Shape", values), value=zero)
    # binary lifting: step over the next 2^j knots when the last of them is below the
    # value, from the largest j down; sorted knots make the steps add up to the count
    for step in (1 << j for j in reversed(range(q.bit_length()))):
        candidate = g.add(count, g.const(step, np.int64))
        in_range = g.op("LessOrEqual", candidate, g.const(q, np.int64))
        last = g.sub(g.op("Min", candidate, g.const(q, np.int64)), g.const(1, np.int64))
        passes = g.op("And", in_range, g.op(compare, knots.at(g, last), values))
        count = g.where(passes, candidate, count)
    return count
