"""Figures for the HTML report, drawn with matplotlib's object API on the Agg canvas.

Every function takes plain numbers (encoded targets, probabilities, per-epoch records) and
returns a :class:`matplotlib.figure.Figure`; none touches ``pyplot``, so no global figure
state builds up in a long-running process and nothing needs a display. :func:`png_base64`
turns a figure into the text an ``<img>`` tag can inline.

Target and probability conventions are those of :func:`tabnn.evaluate.compute_metrics`:
binary ``y`` is ``(n,)`` of 0/1 with ``proba`` ``(n,)`` P(class 1); multiclass ``y`` holds
class indices with ``proba`` ``(n, K)``; multilabel ``y`` and ``proba`` are ``(n, L)``.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    auc,
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_curve,
)

__all__ = [
    "BASELINES",
    "plot_calibration",
    "plot_class_distribution",
    "plot_confusion",
    "plot_fold_scores",
    "plot_history",
    "plot_importance",
    "plot_precision_recall",
    "plot_roc",
    "plot_threshold",
    "png_base64",
    "split_order",
]

#: Names under which tabnn reports its baselines; drawn in grey beside the designs.
BASELINES = ("most_frequent", "logistic_regression", "lightgbm")

WIDTH, HEIGHT = 6.4, 4.4  # inches of a one-panel figure
MAX_LABEL = 32  # characters of a class or column name before it is shortened
LEGEND_INSIDE = 5  # legend entries that fit inside an axes without hiding what it shows
COLORS = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}

CURVE_SCOPE = {"binary": "", "multiclass": " (one class vs rest)", "multilabel": " per label"}

# --- shared helpers ----------------------------------------------------------------------


def _figure(width: float = WIDTH, height: float = HEIGHT) -> Figure:
    """A figure on an explicit Agg canvas, laid out so labels never overlap."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_base64(fig: Figure, dpi: int = 110) -> str:
    """The figure as base64-encoded PNG text, for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(name: object, limit: int = MAX_LABEL) -> str:
    """A name cut to ``limit`` characters, so one long column name cannot squash a plot."""
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _palette(n: int) -> list:
    """n distinct colours: tab10 while it lasts, tab20 beyond."""
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _legend(ax, loc: str = "best") -> None:
    """A legend only when more than one thing is drawn; under the axes in two columns when
    it is long (:func:`_height` makes room), so that it never hides a curve."""
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > LEGEND_INSIDE:
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncols=2,
            fontsize="small",
            frameon=False,
        )
    elif len(handles) > 1:
        ax.legend(loc=loc, fontsize="small")


def _height(legend_entries: int) -> float:
    """Height of a one-panel figure whose legend has this many entries."""
    if legend_entries <= LEGEND_INSIDE:
        return HEIGHT
    return HEIGHT + 0.3 + 0.2 * math.ceil(legend_entries / 2)


def _note(ax, text: str) -> None:
    """A message in the middle of an empty axes (why nothing could be drawn)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)


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
        ax.plot([], [], " ", label=f"not drawn (one value only): {_short(', '.join(names), 48)}")


# --- training history -----------------------------------------------------------------------


def _member_matrix(epochs: Sequence[dict], key: str, live: np.ndarray) -> np.ndarray:
    """(epochs, members) values of one record key; NaN where missing or the member stopped."""
    absent = [None] * live.shape[1]
    values = np.array(
        [[np.nan if v is None else v for v in record.get(key) or absent] for record in epochs],
        dtype=float,
    )
    return np.where(live, values, np.nan)


def _live(epochs: Sequence[dict]) -> np.ndarray:
    """(epochs, members) True while a member trains: its train loss is None once it stops,
    while its (frozen) validation scores go on being recorded and would draw flat tails."""
    return np.array([[v is not None for v in record["train_loss"]] for record in epochs])


def _band(ax, x: np.ndarray, values: np.ndarray, color, label: str) -> None:
    """One member: a line. Several: their mean line over a min-max band of the members still
    training (one legend entry for both, to keep the legend small)."""
    count = (~np.isnan(values)).sum(axis=1)
    if not count.any():
        return
    marker = "o" if len(x) <= 15 else None  # a line through a few epochs is hard to see
    if values.shape[1] == 1:
        ax.plot(x, values[:, 0], color=color, marker=marker, label=label)
        return
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nansum(values, axis=1) / count, np.nan)
    low = np.where(count > 0, np.min(np.where(np.isnan(values), np.inf, values), axis=1), np.nan)
    high = np.where(count > 0, np.max(np.where(np.isnan(values), -np.inf, values), axis=1), np.nan)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    ax.plot(x, mean, color=color, marker=marker, label=f"{label} (mean; band: min-max)")


def _mark_best(ax, x: np.ndarray, values: np.ndarray, best_epoch: Sequence[int]) -> None:
    """The epoch whose weights were kept: a vertical line for one member, a point per member
    (at its score that epoch) for several."""
    if values.shape[1] == 1:
        ax.axvline(
            best_epoch[0],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"best epoch ({best_epoch[0]})",
        )
        return
    points = [
        (epoch, values[np.searchsorted(x, epoch), k])
        for k, epoch in enumerate(best_epoch)
        if epoch in x
    ]
    if points:
        bx, by = zip(*points)
        ax.scatter(
            bx, by, color="black", marker="v", s=30, zorder=3, label="best epoch of each member"
        )


def plot_history(epochs: Sequence[dict], best_epoch: Sequence[int] | None = None) -> Figure:
    """Training and validation loss, and validation accuracy, per epoch.

    Parameters
    ----------
    epochs : sequence of dict
        ``History.epochs``: ``{"epoch", "train_loss", "val_loss", "val_accuracy", ...}`` with
        one value (or None) per member. A member's values are drawn while its train loss is
        not None, so members that stop early leave the band.
    best_epoch : sequence of int, optional
        Each member's best epoch (``History.best_epoch``), marked on both panels.

    Returns
    -------
    Figure
        Two panels: loss, and validation accuracy.

    Examples
    --------
    >>> records = [{"epoch": 1, "train_loss": [0.7], "val_loss": [0.6], "val_accuracy": [0.7]}]
    >>> plot_history(records, [1]).axes[0].get_title()
    'Loss per epoch'
    """
    fig = _figure(2 * WIDTH, HEIGHT)
    loss_ax, acc_ax = fig.subplots(1, 2)
    x = np.array([record["epoch"] for record in epochs], dtype=float)
    live = _live(epochs)
    val_loss = _member_matrix(epochs, "val_loss", live)
    val_accuracy = _member_matrix(epochs, "val_accuracy", live)
    _band(loss_ax, x, _member_matrix(epochs, "train_loss", live), COLORS["train"], "training")
    _band(loss_ax, x, val_loss, COLORS["validation"], "validation")
    _band(acc_ax, x, val_accuracy, COLORS["validation"], "validation")
    if best_epoch:
        _mark_best(loss_ax, x, val_loss, best_epoch)
        _mark_best(acc_ax, x, val_accuracy, best_epoch)
    if np.isnan(val_accuracy).all():
        _note(acc_ax, "no validation rows")
    members = live.shape[1]
    suffix = f" ({members} members)" if members > 1 else ""
    for ax, title, ylabel in (
        (loss_ax, "Loss per epoch", "loss (lower is better)"),
        (acc_ax, "Validation accuracy per epoch", "accuracy"),
    ):
        ax.set_title(title + suffix)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        _legend(ax)
    return fig


# --- predictions on one split ------------------------------------------------------------------


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
    labels = [_short(n, 16) for n in names]
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
        _matrix_panel(ax, shares, text, ["no", "yes"], _short(names[k], 24))


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
        fig = _figure(2.4 * cols + 0.4, 2.4 * rows + 0.5)
        _multilabel_confusion(fig, y, pred, names)
        fig.suptitle(f"Confusion matrix per label (threshold {threshold:g})")
        return fig
    side = min(max(3.2, 0.5 * len(names) + 1.6), 9.0)  # cells stay legible as K grows
    fig = _figure(2 * side, side + 1.0)
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
    fig = _figure(height=_height(len(curves) + 1))
    ax = fig.subplots()
    absent = []
    for (name, y01, score), color in zip(curves, _palette(len(curves))):
        if not _both_present(y01):
            absent.append(name)
            continue
        fpr, tpr, _ = roc_curve(y01, score)
        ax.plot(fpr, tpr, color=color, label=f"{_short(name)} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (AUC 0.5)")
    _absent_entry(ax, absent)
    ax.set_title("ROC curve" + CURVE_SCOPE[task])
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    _legend(ax, "lower right")
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
    fig = _figure(height=_height(len(curves) + 1))
    ax = fig.subplots()
    absent = []
    for (name, y01, score), color in zip(curves, _palette(len(curves))):
        if not _both_present(y01):
            absent.append(name)
            continue
        precision, recall, _ = precision_recall_curve(y01, score)
        ap = average_precision_score(y01, score)
        ax.plot(
            recall,
            precision,
            color=color,
            label=f"{_short(name)} (AP {ap:.3f})",
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
    _legend(ax, "lower left")
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
    name = _short(class_names[-1])
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
    fig = _figure(WIDTH, HEIGHT + 0.8)
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
    _legend(curve_ax, "upper left")
    hist_ax.set_xlabel(xlabel)
    hist_ax.set_ylabel("rows")
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
    fig = _figure()
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
        _note(ax, "needs both classes in these rows")
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
    _legend(ax)
    return fig


# --- data, comparison, importance ------------------------------------------------------------


def split_order(splits: Iterable[str]) -> list[str]:
    """Split names in the order rows flow: train, validation, test, then others by name."""
    order = ("train", "validation", "test")
    return sorted(splits, key=lambda s: (order.index(s), "") if s in order else (3, s))


def _split_rows(counts: Sequence[int], task: str, rows: int | None) -> int | None:
    """A split's row count: given, or the sum of its class counts (not for multilabel,
    where a row can carry several labels or none)."""
    if rows:
        return int(rows)
    return int(sum(counts)) if task != "multilabel" else None


def plot_class_distribution(
    counts: Mapping[str, Sequence[int]],
    class_names: Sequence[str],
    task: str,
    *,
    rows: Mapping[str, int] | None = None,
) -> Figure:
    """Grouped bars: the share of each split's rows in each class (or with each label), so
    splits of different sizes compare; the counts are written on the bars when they fit.

    Parameters
    ----------
    counts : mapping of str to sequence of int
        Split name ("train", "validation", "test") -> rows per class, or positives per label.
    class_names : sequence of str
    task : {"binary", "multiclass", "multilabel"}
    rows : mapping of str to int, optional
        Rows per split. Multilabel counts do not add up to the rows, so without it the
        multilabel bars show counts rather than shares.

    Examples
    --------
    >>> fig = plot_class_distribution({"train": [60, 40], "test": [14, 11]}, ["R", "M"], "binary")
    >>> fig.axes[0].get_ylabel()
    "share of the split's rows"
    """
    names = [_short(c, 20) for c in class_names]
    splits = split_order(s for s in counts if len(counts[s]))
    fig = _figure(max(WIDTH, 0.35 * len(names) * len(splits) + 2), HEIGHT)
    ax = fig.subplots()
    x = np.arange(len(names))
    width = 0.8 / max(len(splits), 1)
    totals = {s: _split_rows(counts[s], task, (rows or {}).get(s)) for s in splits}
    as_share = all(totals.values())
    for i, split in enumerate(splits):
        c = np.asarray(counts[split], dtype=float)
        bars = ax.bar(
            x + (i - (len(splits) - 1) / 2) * width,
            c / totals[split] if as_share else c,
            width,
            color=COLORS.get(split, _palette(len(splits))[i]),
            label=f"{split} ({totals[split]} rows)" if totals[split] else split,
        )
        if len(names) * len(splits) <= 24:
            ax.bar_label(bars, labels=[str(int(v)) for v in c], fontsize="x-small", padding=1)
    crowded = len(names) > 8 or sum(len(n) for n in names) > 48
    ax.set_xticks(x, names, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    noun = "label" if task == "multilabel" else "class"
    with_label = " with the label" if task == "multilabel" else ""
    ax.set_title(f"{noun.capitalize()} balance per split")
    ax.set_xlabel(noun)
    ax.set_ylabel(("share of the split's rows" if as_share else "rows") + with_label)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # room for the counts and the legend row
    ax.grid(axis="y", alpha=0.3)
    if len(splits) > 1:
        ax.legend(loc="upper center", ncols=len(splits), fontsize="small")
    return fig


def plot_fold_scores(scores: Mapping[str, Sequence[float]], metric: str) -> Figure:
    """Box plot of each design's and baseline's per-fold scores with the folds as points.

    Baselines (:data:`BASELINES`) are drawn in grey so the designs stand out.

    Examples
    --------
    >>> fig = plot_fold_scores({"default": [0.8, 0.84], "most_frequent": [0.5, 0.52]}, "accuracy")
    >>> fig.axes[0].get_ylabel()
    'accuracy'
    """
    names = list(scores)
    fig = _figure(max(WIDTH, 1.1 * len(names) + 1.5), HEIGHT)
    ax = fig.subplots()
    values = [np.asarray([v for v in scores[n] if v is not None], dtype=float) for n in names]
    ax.boxplot(
        values,
        positions=range(len(names)),
        widths=0.5,
        showfliers=False,
        medianprops={"color": "black"},
    )
    jitter = np.random.default_rng(0)  # fixed, so the same report draws the same points
    for i, (name, v) in enumerate(zip(names, values)):
        color = "grey" if name in BASELINES else "tab:blue"
        ax.scatter(
            i + jitter.uniform(-0.12, 0.12, len(v)), v, color=color, alpha=0.7, s=18, zorder=3
        )
    long = any(len(n) > 12 for n in names)
    ax.set_xticks(
        range(len(names)),
        [_short(n, 24) for n in names],
        rotation=20 if long else 0,
        ha="right" if long else "center",
    )
    ax.add_line(Line2D([], [], color="tab:blue", marker="o", linestyle="", label="design"))
    ax.add_line(Line2D([], [], color="grey", marker="o", linestyle="", label="baseline"))
    folds = max((len(v) for v in values), default=0)
    ax.set_title(f"{metric} on each of {folds} held-out folds")
    ax.set_xlabel("design or baseline")
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    _legend(ax)
    return fig


def _importance_label(metric: str) -> str:
    """What a permutation importance of ``metric`` measures, in words."""
    if metric == "log_loss":
        return "increase in log loss when the column is shuffled"
    return f"drop in {metric} when the column is shuffled"


def plot_importance(
    importance: Mapping[str, Sequence[float]], metric: str = "log_loss", *, top: int = 20
) -> Figure:
    """Permutation importance of the ``top`` columns as horizontal bars (mean) with error
    bars (standard deviation over the repeats), the most important at the top.

    Parameters
    ----------
    importance : mapping of str to (mean, std)
        Original column name -> importance, as :func:`tabnn.report.permutation_importance`
        returns it.
    metric : str, default="log_loss"
        The score that was measured, named in the x-axis label.
    top : int, default=20

    Examples
    --------
    >>> fig = plot_importance({"Age": (0.1, 0.02), "Fare": (0.05, 0.01)})
    >>> fig.axes[0].get_xlabel()
    'increase in log loss when the column is shuffled (mean ± std over repeats)'
    """
    ranked = sorted(importance.items(), key=lambda item: item[1][0], reverse=True)[:top]
    fig = _figure(WIDTH + 1.6, max(2.2, 0.27 * len(ranked) + 1.3))
    ax = fig.subplots()
    y = np.arange(len(ranked))
    means = [float(m) for _, (m, _) in ranked]
    stds = [float(s) for _, (_, s) in ranked]
    ax.barh(y, means, xerr=stds, color="tab:blue", alpha=0.8, capsize=3, error_kw={"elinewidth": 1})
    ax.set_yticks(y, [_short(name, 40) for name, _ in ranked])
    ax.invert_yaxis()  # most important first
    ax.axvline(0, color="black", linewidth=0.8)
    shown = f"top {len(ranked)} of {len(importance)}" if len(importance) > top else "all"
    ax.set_title(f"Permutation feature importance ({shown} columns)")
    ax.set_xlabel(_importance_label(metric) + " (mean \u00b1 std over repeats)")
    ax.set_ylabel("column")
    ax.grid(axis="x", alpha=0.3)
    return fig
