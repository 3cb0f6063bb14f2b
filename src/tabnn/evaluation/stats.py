"""Statistics of per-fold scores: the corrected resampled t-test of two designs scored on
the same cross-validation folds. scipy is imported only when the test runs.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ..errors import UsageError
from .metrics import mean_std

__all__ = ["corrected_paired_t_test"]


def corrected_paired_t_test(
    scores_a: ArrayLike, scores_b: ArrayLike, *, n_train: int, n_test: int
) -> dict:
    """Compare two designs scored on the same folds: Nadeau and Bengio's corrected
    resampled t-test.

    The folds of (repeated) k-fold cross-validation share most of their training rows,
    so the per-fold differences are correlated and a plain paired t-test is far too
    confident. The correction inflates the variance of the mean difference from
    ``var / J`` to ``(1 / J + n_test / n_train) * var`` (Nadeau and Bengio, 2003,
    "Inference for the generalization error"; the test scikit-learn's model-comparison
    example uses).

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (J,)
        Scores of the two designs on the same J folds, in the same order.
    n_train, n_test : int
        Rows a fold trains on and is scored on.

    Returns
    -------
    dict
        ``difference`` (mean of a - b), ``difference_std`` (over folds), ``t``,
        ``p_value`` (two-sided, J - 1 degrees of freedom) and ``folds``.

    Examples
    --------
    >>> result = corrected_paired_t_test([0.8, 0.9, 0.85], [0.7, 0.8, 0.8], n_train=80, n_test=20)
    >>> round(result["difference"], 3), result["folds"]
    (0.083, 3)
    """
    from scipy import stats

    diff = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    if diff.ndim != 1 or diff.size < 2:
        raise UsageError(f"A paired test needs two or more folds; got {diff.size}.")
    mean, std = mean_std(diff)
    corrected = (1 / diff.size + n_test / n_train) * std**2
    if corrected == 0:
        t, p = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / math.sqrt(corrected)
        p = float(2 * stats.t.sf(abs(t), df=diff.size - 1))
    return {"difference": mean, "difference_std": std, "t": t, "p_value": p, "folds": diff.size}
