"""Figures for the HTML report, drawn with matplotlib's object API on the Agg canvas: the
training history, the class balance, the per-fold comparison and the permutation
importance, plus the helpers every figure shares (:func:`new_figure`, :func:`png_base64`,
:func:`add_legend`, ...). The plots of one split's predictions (confusion matrix, ROC,
precision-recall, calibration, threshold) are in :mod:`tabnn.report.curves`.

Every function takes plain numbers (per-epoch records, counts, scores) and returns a
:class:`matplotlib.figure.Figure`; none touches ``pyplot``, so no global figure state builds
up in a long-running process and nothing needs a display. :func:`png_base64` turns a figure
into the text an ``<img>`` tag can inline.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..tasks import BASELINES

__all__ = [
    "add_legend",
    "add_note",
    "new_figure",
    "palette",
    "plot_class_distribution",
    "plot_fold_scores",
    "plot_history",
    "plot_importance",
    "png_base64",
    "shorten",
    "split_order",
]

WIDTH, HEIGHT = 6.4, 4.4  # inches of a one-panel figure
MAX_LABEL = 32  # characters of a class or column name before it is shortened
LEGEND_INSIDE = 5  # legend entries that fit inside an axes without hiding what it shows
COLORS = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}

# --- shared helpers ----------------------------------------------------------------------


def new_figure(width: float = WIDTH, height: float = HEIGHT) -> Figure:
    """A figure on an explicit Agg canvas, laid out so labels never overlap."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_base64(fig: Figure, dpi: int = 110) -> str:
    """The figure as base64-encoded PNG text, for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def shorten(name: object, limit: int = MAX_LABEL) -> str:
    """A name cut to ``limit`` characters, so one long column name cannot squash a plot."""
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def palette(n: int) -> list:
    """n distinct colours: tab10 while it lasts, tab20 beyond."""
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def add_legend(ax, loc: str = "best") -> None:
    """A legend only when more than one thing is drawn; under the axes in two columns when
    it is long (figures that may have long legends are made taller for it), so that it
    never hides a curve."""
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


def add_note(ax, text: str) -> None:
    """A message in the middle of an empty axes (why nothing could be drawn)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)


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
    fig = new_figure(2 * WIDTH, HEIGHT)
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
        add_note(acc_ax, "no validation rows")
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
        add_legend(ax)
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
    names = [shorten(c, 20) for c in class_names]
    splits = split_order(s for s in counts if len(counts[s]))
    fig = new_figure(max(WIDTH, 0.35 * len(names) * len(splits) + 2), HEIGHT)
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
            color=COLORS.get(split, palette(len(splits))[i]),
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

    Baselines (:data:`tabnn.tasks.BASELINES`) are drawn in grey so the designs stand out.

    Examples
    --------
    >>> fig = plot_fold_scores({"default": [0.8, 0.84], "most_frequent": [0.5, 0.52]}, "accuracy")
    >>> fig.axes[0].get_ylabel()
    'accuracy'
    """
    names = list(scores)
    fig = new_figure(max(WIDTH, 1.1 * len(names) + 1.5), HEIGHT)
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
        [shorten(n, 24) for n in names],
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
    add_legend(ax)
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
        Original column name -> importance, as
        :func:`tabnn.report.summaries.permutation_importance` returns it.
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
    fig = new_figure(WIDTH + 1.6, max(2.2, 0.27 * len(ranked) + 1.3))
    ax = fig.subplots()
    y = np.arange(len(ranked))
    means = [float(m) for _, (m, _) in ranked]
    stds = [float(s) for _, (_, s) in ranked]
    ax.barh(y, means, xerr=stds, color="tab:blue", alpha=0.8, capsize=3, error_kw={"elinewidth": 1})
    ax.set_yticks(y, [shorten(name, 40) for name, _ in ranked])
    ax.invert_yaxis()  # most important first
    ax.axvline(0, color="black", linewidth=0.8)
    shown = f"top {len(ranked)} of {len(importance)}" if len(importance) > top else "all"
    ax.set_title(f"Permutation feature importance ({shown} columns)")
    ax.set_xlabel(_importance_label(metric) + " (mean \u00b1 std over repeats)")
    ax.set_ylabel("column")
    ax.grid(axis="x", alpha=0.3)
    return fig
