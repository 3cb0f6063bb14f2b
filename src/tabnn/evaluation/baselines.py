"""The baselines a neural network has to beat, scored on the same rows: most frequent
class, label frequency (multilabel), logistic regression on the model's design matrix, and
LightGBM on the model's raw inputs when it is installed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from ..data.encoded import as_target
from ..errors import DataError, UsageError
from .metrics import compute_metrics

__all__ = [
    "baseline_scores",
    "lightgbm_available",
    "lightgbm_frame",
    "lightgbm_scores",
    "lightgbm_wanted",
]


def _as_design(X: ArrayLike, name: str, n_rows: int) -> np.ndarray:
    """Return X as a finite 2-D float matrix with n_rows rows."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a numeric matrix (encode it first): {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise UsageError(f"{name} must have shape ({n_rows}, n_features), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains missing or infinite values; fill them first")
    return arr


def _prior_proba(y_train: np.ndarray, task: str, n_eval: int, n_classes: int) -> np.ndarray:
    """Training class (or label) frequencies repeated for every evaluation row."""
    if task == "multiclass":
        prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
    else:
        prior = y_train.mean(axis=0)
    return np.tile(prior, (n_eval, 1)) if task != "binary" else np.full(n_eval, prior)


def _logistic_columns(
    X_train: np.ndarray, y_train: np.ndarray, X_eval: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """(n_eval, n_classes) probabilities of a logistic regression on one 1-D target."""
    proba = np.zeros((len(X_eval), n_classes))
    present = np.unique(y_train)
    if present.size == 1:
        # A target constant in training: predict that constant, as nothing else was seen.
        proba[:, present[0]] = 1.0
        return proba
    model = LogisticRegression(max_iter=1000, random_state=seed)
    # A baseline that has not fully converged after 1000 iterations is still a fair baseline.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    # Classes missing from training keep probability 0, in class-index order.
    proba[:, model.classes_] = model.predict_proba(X_eval)
    return proba


def _logistic_proba(
    task: str, X_train: np.ndarray, y_train: np.ndarray, X_eval: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """Logistic-regression probabilities in the task's layout (one model per label)."""
    if task == "binary":
        return _logistic_columns(X_train, y_train, X_eval, 2, seed)[:, 1]
    if task == "multiclass":
        return _logistic_columns(X_train, y_train, X_eval, k, seed)
    columns = [_logistic_columns(X_train, col, X_eval, 2, seed)[:, 1] for col in y_train.T]
    return np.column_stack(columns)


def _label_frequency_proba(y_train: np.ndarray, n_eval: int, seed: int) -> np.ndarray:
    """Random 0/1 labels, each drawn with its training frequency (hard 0/1 'probabilities')."""
    freq = y_train.mean(axis=0)
    draws = np.random.default_rng(seed).random((n_eval, len(freq)))
    return (draws < freq).astype(np.float64)


def baseline_scores(
    task: str,
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_eval: ArrayLike,
    y_eval: ArrayLike,
    *,
    seed: int = 0,
    threshold: float = 0.5,
    n_classes: int | None = None,
) -> dict[str, dict]:
    """Score the simple baselines a neural network has to beat, on the same rows.

    - ``"most_frequent"``: probabilities are the training class frequencies (scikit-learn's
      ``DummyClassifier(strategy="prior")``); the prediction is the most frequent class, so
      binary and multilabel use threshold 0.5 here whatever ``threshold`` is (a tuned threshold
      would make this baseline predict the minority class). A binary training set split exactly
      50/50 predicts class 1. Multilabel: per label.
    - ``"logistic_regression"``: ``LogisticRegression(max_iter=1000)`` on the given numeric
      design matrices (already filled, scaled and one-hot encoded by the caller), scored with
      ``threshold``. Multilabel: one model per label; a target constant in training predicts
      that constant. Convergence warnings are silenced.
    - ``"label_frequency"`` (multilabel only): each label drawn at random with its training
      frequency from a generator seeded with ``seed``; its hard 0/1 draws are scored as
      probabilities. This is the micro-F1 floor for multi-label models.

    Parameters
    ----------
    task : {"binary", "multiclass", "multilabel"}
        The kind of target.
    X_train, X_eval : array-like of shape (n, n_features)
        Numeric design matrices without missing values.
    y_train, y_eval : array-like
        Encoded targets of the training and evaluation rows.
    seed : int, default=0
        Seed of the logistic regressions and of the label-frequency draws.
    threshold : float, default=0.5
        Decision threshold for the logistic-regression baseline (binary, multilabel).
    n_classes : int, optional
        Multiclass: the number of classes K. Defaults to the largest class index seen in either
        target plus one; pass it when the last class may be absent from both.

    Returns
    -------
    dict of str to dict
        Baseline name to its :func:`compute_metrics` result on the evaluation rows. Multiclass
        probabilities always have K columns in class-index order, also when a class is missing
        from the training rows.

    Examples
    --------
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> scores = baseline_scores("binary", X, [0, 0, 0, 1], X, [0, 0, 0, 1])
    >>> scores["most_frequent"]["accuracy"]
    0.75
    """
    y_tr, y_ev = as_target(y_train, task, "y_train"), as_target(y_eval, task, "y_eval")
    if len(y_tr) == 0:
        raise DataError("cannot fit baselines on 0 training rows")
    X_tr = _as_design(X_train, "X_train", len(y_tr))
    X_ev = _as_design(X_eval, "X_eval", len(y_ev))
    if X_tr.shape[1] != X_ev.shape[1]:
        raise UsageError(f"X_train has {X_tr.shape[1]} columns but X_eval has {X_ev.shape[1]}")
    k = _baseline_classes(task, y_tr, y_ev, n_classes)
    # one BLAS thread: these are small solves, and on a busy machine extra threads made a
    # logistic regression on 200 rows take 100x longer
    with threadpool_limits(limits=1):
        scores = _baselines(task, X_tr, y_tr, X_ev, y_ev, k, seed, threshold)
    return scores


def _baselines(task, X_tr, y_tr, X_ev, y_ev, k, seed, threshold) -> dict:
    scores = {
        "most_frequent": compute_metrics(task, y_ev, _prior_proba(y_tr, task, len(y_ev), k)),
        "logistic_regression": compute_metrics(
            task, y_ev, _logistic_proba(task, X_tr, y_tr, X_ev, k, seed), threshold=threshold
        ),
    }
    if task == "multilabel":
        draws = _label_frequency_proba(y_tr, len(y_ev), seed)
        scores["label_frequency"] = compute_metrics(task, y_ev, draws)
    return scores


def _baseline_classes(task: str, y_tr: np.ndarray, y_ev: np.ndarray, n_classes: int | None) -> int:
    """Number of classes (K) or labels (L) of the baselines' probabilities, checked."""
    if task == "binary":
        return 2
    if task == "multilabel":
        if y_tr.shape[1] != y_ev.shape[1]:
            raise UsageError(f"y_train has {y_tr.shape[1]} labels but y_eval has {y_ev.shape[1]}")
        return y_tr.shape[1]
    seen = int(max(y_tr.max(), y_ev.max(initial=0))) + 1
    if n_classes is None:
        return seen
    if n_classes < seen:
        raise DataError(f"targets hold class index {seen - 1} but n_classes is {n_classes}")
    return n_classes


# --------------------------------------------------------------------------------------------
# LightGBM


def lightgbm_available() -> bool:
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


def lightgbm_wanted(task: str) -> bool:
    """LightGBM baselines: binary and multi-class targets, when it is installed."""
    return task != "multilabel" and lightgbm_available()


def lightgbm_frame(x_num: np.ndarray, x_cat: np.ndarray) -> pd.DataFrame:
    """The raw numbers (NaN allowed) and category codes as LightGBM's input columns."""
    columns = [pd.Series(x_num[:, j]) for j in range(x_num.shape[1])]
    columns += [pd.Series(x_cat[:, j]).astype("category") for j in range(x_cat.shape[1])]
    frame = pd.concat(columns, axis=1, keys=range(len(columns))) if columns else pd.DataFrame()
    frame.columns = [f"f{j}" for j in range(frame.shape[1])]
    return frame


def lightgbm_scores(task, frame: pd.DataFrame, y, fit_rows, held_out, seed) -> dict:
    """A LightGBM classifier fitted on one fold's rows, scored on its held-out rows."""
    import lightgbm

    model = lightgbm.LGBMClassifier(random_state=seed, verbose=-1, n_jobs=1)
    model.fit(frame.iloc[fit_rows], y[fit_rows])
    proba = np.zeros((len(held_out), int(y.max()) + 1 if task == "multiclass" else 2))
    proba[:, model.classes_.astype(int)] = model.predict_proba(frame.iloc[held_out])
    return compute_metrics(task, y[held_out], proba[:, 1] if task == "binary" else proba)
