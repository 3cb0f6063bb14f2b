"""The plots of one split's predictions for the HTML report: confusion matrix, ROC and
precision-recall curves, calibration (reliability diagram) and the binary decision
threshold.

Drawn like every report figure (:mod:`tabnn.report.plots`: object API, Agg canvas, no
``pyplot``). Target and probability conventions are those of
:func:`tabnn.evaluation.metrics.compute_metrics`: binary ``y`` is ``(n,)`` of 0/1 with
``proba`` ``(n,)`` P(class 1); multiclass ``y`` holds class indices with ``proba``
``(n, K)``; multilabel ``y`` and ``proba`` are ``(n, L)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    auc,
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_curve,
)

from .plots import HEIGHT, LEGEND_INSIDE, WIDTH, add_legend, add_note, new_figure, palette, shorten

__all__ = [
    "CURVE_SCOPE",
    "plot_calibration",
    "plot_confusion",
    "plot_precision_recall",
    "plot_roc",
    "plot_temperature_scaling",
    "plot_threshold",
]

CURVE_SCOPE = {"binary": "", "multiclass": " (one class vs rest)", "multilabel": " per label"}


def _height(legend_entries: int) -> float:
    """Height of a one-panel figure whose legend has this many entries."""
    if legend_entries <= LEGEND_INSIDE:
        return HEIGHT
    return HEIGHT + 0.3 + 0.2 * math.ceil(legend_entries / 2)


def _one_vs_rest(y_true, proba, task: str, class_names: Sequence[str]) -> list[tuple]:
    """(name, 0/1 targets, scores) for every curve a task draws: the positive class of a
    binary task, each class of a multiclass task, each label of a multilabel task."""
    y, p = np.asarray(y_true), np.asarray(proba, dtype=float)
    if task == "binary":
        return [(str(class_names[-1]), (y == 1).astype(int), p)]
    if task == "multiclass":
        return [(str(c), (y == k).astype(int), p[:, k]) for k, c in enumerate(class_names)]
    return [(str(c), y[:, k].astype(int), p[:, k]) for k, c in enumerate(class_names)]


def _both_present(y01: np.ndarray) -> bool:
    """Whether a 0/1 target has positives and negatives (curves need both)."""
    return 0 < int(y01.sum()) < len(y01)


def _absent_entry(ax, names: list[str]) -> None:
    """A legend line naming the classes a curve could not be drawn for."""
    if names:
        ax.plot([], [], " ", label=f"not drawn (one value only): {shorten(', '.join(names), 48)}")


def _predicted(proba, task: str, threshold: float) -> np.ndarray:
    """Predicted classes (binary, multiclass) or 0/1 labels (multilabel)."""
    p = np.asarray(proba, dtype=float)
    if task == "multiclass":
        return p.argmax(axis=1)
    return (p >= threshold).astype(int)


def _matrix_panel(ax, matrix: np.ndarray, text: np.ndarray, names: list[str], title: str) -> None:
    """A heat map with a label in each cell, true classes down, predictions across."""
    shown = np.nan_to_num(matrix, nan=0.0)
    # aspect auto: square cells fight the layout engine and push labels off the figure
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=max(shown.max(), 1e-12), aspect="auto")
    k = len(names)
    if k <= 25:  # beyond that the numbers no longer fit their cells
        for (i, j), label in np.ndenumerate(text):
            dark = shown[i, j] > 0.6 * shown.max()
            ax.text(
                j,
                i,
                label,
                ha="center",
                va="center",
                fontsize="small" if k > 8 else None,
                color="white" if dark else "black",
            )
    labels = [shorten(n, 16) for n in names]
    crowded = k > 4 or k * max(len(label) for label in labels) > 24
    ax.set_xticks(
        range(k), labels, rotation=35 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set_yticks(range(k), labels)
    noun = "" if names == ["no", "yes"] else " class"  # a multilabel label's 2 x 2
    ax.set_xlabel("predicted" + noun)
    ax.set_ylabel("true" + noun)
    ax.set_title(title)


def _row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row as shares of its total (NaN for a class with no rows)."""
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


def _share_text(shares: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: "\u2013" if np.isnan(v) else f"{v:.0%}")(shares)


def _multilabel_confusion(fig: Figure, y: np.ndarray, pred: np.ndarray, names) -> None:
    """One 2 x 2 matrix per label, each cell 'count (row share)', coloured by row share."""
    n = len(names)
    cols = min(n, 4)
    axes = np.atleast_1d(fig.subplots((n + cols - 1) // cols, cols)).ravel()
    for k, ax in enumerate(axes):
        if k >= n:
            ax.set_visible(False)
            continue
        counts = confusion_matrix(y[:, k], pred[:, k], labels=[0, 1])
        shares = _row_normalised(counts)
        text = np.array(
            [[f"{c}\n({s})" for c, s in zip(cr, sr)] for cr, sr in zip(counts, _share_text(shares))]
        )
        _matrix_panel(ax, shares, text, ["no", "yes"], shorten(names[k], 24))


def plot_confusion(
    y_true, proba, task: str, class_names: Sequence[str], *, threshold: float = 0.5
) -> Figure:
    """Confusion matrix as counts and as row shares (recall of each true class).

    Binary and multiclass: two panels over every class, absent ones included. Multilabel:
    a small 2 x 2 matrix per label (label absent / present), each cell showing the count
    and its share of the row.

    Examples
    --------
    >>> fig = plot_confusion([0, 1, 1], [0.2, 0.7, 0.4], "binary", ["R", "M"])
    >>> [ax.get_title() for ax in fig.axes]
    ['Counts', 'Row shares (recall)']
    """
    names = [str(c) for c in class_names]
    y, pred = np.asarray(y_true), _predicted(proba, task, threshold)
    if task == "multilabel":
        cols = min(len(names), 4)
        rows = (len(names) + cols - 1) // cols
        fig = new_figure(2.4 * cols + 0.4, 2.4 * rows + 0.5)
        _multilabel_confusion(fig, y, pred, names)
        fig.suptitle(f"Confusion matrix per label (threshold {threshold:g})")
        return fig
    side = min(max(3.2, 0.5 * len(names) + 1.6), 9.0)  # cells stay legible as K grows
    fig = new_figure(2 * side, side + 1.0)
    count_ax, share_ax = fig.subplots(1, 2)
    counts = confusion_matrix(y, pred, labels=range(len(names)))
    shares = _row_normalised(counts)
    _matrix_panel(count_ax, counts.astype(float), counts.astype(str), names, "Counts")
    _matrix_panel(share_ax, shares, _share_text(shares), names, "Row shares (recall)")
    share_ax.tick_params(labelleft=False)  # the same rows as the left panel: room for cells
    share_ax.set_ylabel("")
    rule = "highest probability" if task == "multiclass" else f"threshold {threshold:g}"
    fig.suptitle(f"Confusion matrix (predicted class: {rule})")
    return fig


def plot_roc(y_true, proba, task: str, class_names: Sequence[str]) -> Figure:
    """ROC curve of the positive class, or one-vs-rest per class or label, with the AUC of
    each in the legend and the chance diagonal.

    Examples
    --------
    >>> fig = plot_roc([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4], "binary", ["R", "M"])
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['M (AUC 1.000)', 'chance (AUC 0.5)']
    """
    curves = _one_vs_rest(y_true, proba, task, class_names)
    fig = new_figure(height=_height(len(curves) + 1))
    ax = fig.subplots()
    absent = []
    for (name, y01, score), color in zip(curves, palette(len(curves))):
        if not _both_present(y01):
            absent.append(name)
            continue
        fpr, tpr, _ = roc_curve(y01, score)
        ax.plot(fpr, tpr, color=color, label=f"{shorten(name)} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUC 0.5)")
    _absent_entry(ax, absent)
    ax.set_title("ROC curve" + CURVE_SCOPE[task])
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    add_legend(ax, "lower right")
    return fig


def plot_precision_recall(y_true, proba, task: str, class_names: Sequence[str]) -> Figure:
    """Precision-recall curve per positive class or label, average precision in the legend,
    and each curve's chance level (its prevalence) as a dotted line of its colour.

    Examples
    --------
    >>> fig = plot_precision_recall([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4], "binary", ["R", "M"])
    >>> fig.axes[0].get_xlabel()
    'recall'
    """
    curves = _one_vs_rest(y_true, proba, task, class_names)
    fig = new_figure(height=_height(len(curves) + 1))
    ax = fig.subplots()
    absent = []
    for (name, y01, score), color in zip(curves, palette(len(curves))):
        if not _both_present(y01):
            absent.append(name)
            continue
        precision, recall, _ = precision_recall_curve(y01, score)
        ap = average_precision_score(y01, score)
        ax.plot(
            recall,
            precision,
            color=color,
            label=f"{shorten(name)} (AP {ap:.3f})",
            drawstyle="steps-post",
        )
        ax.axhline(y01.mean(), color=color, linestyle=":", linewidth=1)
    ax.add_line(Line2D([], [], color="grey", linestyle=":", label="chance (prevalence)"))
    _absent_entry(ax, absent)
    ax.set_title("Precision-recall curve" + CURVE_SCOPE[task])
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.05)
    ax.grid(alpha=0.3)
    add_legend(ax, "lower left")
    return fig


def _calibrated(y_true, proba, task: str, class_names) -> tuple[np.ndarray, np.ndarray, str, str]:
    """0/1 outcomes, the probabilities they are compared with, and the two axis labels.
    Multiclass uses the top label (the probability of the predicted class against whether it
    was right); multilabel pools every label's probabilities, so each bin has enough rows."""
    y, p = np.asarray(y_true), np.asarray(proba, dtype=float)
    if task == "multiclass":
        right = (p.argmax(axis=1) == y).astype(int)
        return right, p.max(axis=1), "predicted probability of the predicted class", "accuracy"
    if task == "multilabel":
        return (
            y.ravel().astype(int),
            p.ravel(),
            "predicted probability of a label",
            "share of labels present",
        )
    name = shorten(class_names[-1])
    return y.astype(int), p, f"predicted probability of {name}", f"share that are {name}"


def plot_calibration(
    y_true, proba, task: str, class_names: Sequence[str], *, n_bins: int | None = None
) -> Figure:
    """Reliability diagram over a histogram of the predicted probabilities.

    The probabilities are cut into bins holding equal numbers of rows; each bin is a point
    at its mean predicted probability and the observed frequency, so points on the diagonal
    mean the probabilities can be read as frequencies. Binary: P(positive class);
    multiclass: the probability of the predicted class against accuracy; multilabel: all
    labels pooled.

    Parameters
    ----------
    n_bins : int, optional
        By default one bin per 20 probabilities, between 3 and 10, so that small test sets
        do not draw noise.

    Examples
    --------
    >>> fig = plot_calibration([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4], "binary", ["R", "M"])
    >>> fig.get_suptitle()
    'Calibration (reliability diagram)'
    """
    outcome, p, xlabel, ylabel = _calibrated(y_true, proba, task, class_names)
    n_bins = n_bins or int(np.clip(len(p) // 20, 3, 10))
    fig = new_figure(WIDTH, HEIGHT + 0.8)
    curve_ax, hist_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    curve_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    observed, predicted = calibration_curve(outcome, p, n_bins=n_bins, strategy="quantile")
    curve_ax.plot(predicted, observed, marker="o", label=f"model ({n_bins} bins of equal counts)")
    hist_ax.hist(p, bins=20, range=(0, 1), color="tab:blue", alpha=0.8)
    fig.suptitle("Calibration (reliability diagram)")
    curve_ax.set_ylabel(ylabel)
    curve_ax.set_xlim(-0.01, 1.01)
    curve_ax.set_ylim(-0.01, 1.01)
    curve_ax.grid(alpha=0.3)
    add_legend(curve_ax, "upper left")
    hist_ax.set_xlabel(xlabel)
    hist_ax.set_ylabel("rows")
    return fig


def plot_temperature_scaling(calibration: Mapping, task: str) -> Figure:
    """Temperature scaling's reliability diagram, before and after, over the rows per bin.

    ``calibration`` is ``ReportData.calibration``: each side's ``reliability`` holds the
    mean confidence, accuracy and count of each of the expected calibration error's
    equal-width bins (:func:`tabnn.estimator.calibration.reliability`); a point per bin with rows,
    its ECE in the legend. Confidence is the probability of the predicted class (of each
    label's predicted value for multi-label, all labels pooled).

    Examples
    --------
    >>> side = {"ece": 0.1, "reliability": {"confidence": [0.6, 0.9], "accuracy": [0.5, 1.0],
    ...     "count": [3, 5]}}
    >>> fig = plot_temperature_scaling({"before": side, "after": side, "bins": 2}, "binary")
    >>> fig.get_suptitle()
    'Temperature scaling: reliability before and after'
    """
    fig = new_figure(WIDTH, HEIGHT + 0.8)
    curve_ax, hist_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    curve_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    bins = int(calibration.get("bins") or 15)
    edges = np.linspace(0, 1, bins + 1)
    width = 0.4 / bins
    styles = {"before": ("tab:red", "s", "--", -1), "after": ("tab:blue", "o", "-", 1)}
    for side, (color, marker, line, shift) in styles.items():
        points = calibration.get(side) or {}
        curve = points.get("reliability") or {}
        pairs = [
            (c, a)
            for c, a, n in zip(curve.get("confidence", []), curve.get("accuracy", []),
                               curve.get("count", []))
            if n and c is not None and a is not None
        ]  # fmt: skip
        name = "before (T = 1)" if side == "before" else "after temperature scaling"
        ece = points.get("ece")
        label = f"{name}, ECE {ece:.3f}" if isinstance(ece, int | float) else name
        if pairs:
            x, y = zip(*pairs)
            curve_ax.plot(x, y, marker=marker, linestyle=line, color=color, label=label)
        counts = list(curve.get("count", []))[:bins]
        centers = (edges[:-1] + edges[1:])[: len(counts)] / 2 + shift * width / 2
        hist_ax.bar(centers, counts, width=width, color=color, alpha=0.8)
    fig.suptitle("Temperature scaling: reliability before and after")
    curve_ax.set_ylabel("accuracy" if task != "multilabel" else "share predicted right")
    curve_ax.set_xlim(0.0 if task == "multiclass" else 0.45, 1.01)
    curve_ax.set_ylim(-0.01, 1.01)
    curve_ax.grid(alpha=0.3)
    add_legend(curve_ax, "lower right")  # high confidence, low accuracy: rarely a point
    what = "label's predicted value" if task == "multilabel" else "predicted class"
    hist_ax.set_xlabel(f"confidence: probability of the {what} ({bins} bins)")
    hist_ax.set_ylabel("rows" if task != "multilabel" else "row-labels")
    return fig


def plot_threshold(y_true, proba, *, threshold: float = 0.5, method: str = "") -> Figure:
    """Binary only: precision, recall and F1 of the positive class for every decision
    threshold, with the chosen threshold marked.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 targets.
    proba : array-like of shape (n,)
        P(class 1).
    threshold : float, default=0.5
        The threshold the model uses.
    method : str, optional
        How it was chosen ("default", "best F1 on validation rows"), shown in the legend.

    Examples
    --------
    >>> fig = plot_threshold([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4], threshold=0.5)
    >>> fig.axes[0].get_xlabel()
    'decision threshold (predict the positive class when P >= threshold)'
    """
    fig = new_figure()
    ax = fig.subplots()
    y, p = np.asarray(y_true).astype(int), np.asarray(proba, dtype=float)
    if _both_present(y):
        precision, recall, cuts = precision_recall_curve(y, p)
        precision, recall = precision[:-1], recall[:-1]  # the last pair has no threshold
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
        # scored as compute_metrics does, so the legend matches the report's tables
        chosen = precision_recall_fscore_support(
            y, (p >= threshold).astype(int), average="binary", zero_division=0
        )
        for values, at, name in zip((precision, recall, f1), chosen, ("precision", "recall", "F1")):
            # cuts[i] holds for thresholds in (cuts[i-1], cuts[i]]: a step before each cut
            (line,) = ax.plot(
                cuts, values, drawstyle="steps-pre", label=f"{name} ({at:.2f} at the threshold)"
            )
            ax.plot(threshold, at, "o", color=line.get_color())
    else:
        add_note(ax, "needs both classes in these rows")
    how = f", {method}" if method else ""
    ax.axvline(
        threshold,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"threshold {threshold:.3g}{how}",
    )
    ax.set_title("Precision, recall and F1 against the threshold")
    ax.set_xlabel("decision threshold (predict the positive class when P >= threshold)")
    ax.set_ylabel("score")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.01, 1.05)
    ax.grid(alpha=0.3)
    add_legend(ax)
    return fig
