"""Tests for tabnn.report.plots and tabnn.report.curves: every figure is titled, labelled
and has a legend where it draws more than one thing, for each task and for the awkward inputs
real runs produce."""

import base64
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tabnn.evaluation.metrics import compute_metrics
from tabnn.report import curves as curve_plots
from tabnn.report import plots

NAMES = {"binary": ["R", "M"], "multiclass": ["cat", "dog", "bird"], "multilabel": ["a", "b", "c"]}


def predictions(task: str, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets and informative probabilities in compute_metrics' conventions."""
    rng = np.random.default_rng(seed)
    if task == "binary":
        y = rng.integers(0, 2, n)
        return y, np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    if task == "multiclass":
        y = np.arange(n) % 3
        logits = 2.0 * np.eye(3)[y] + rng.normal(size=(n, 3))
        return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 2, (n, 3))
    return y, np.clip(0.4 * y + rng.uniform(0, 0.6, (n, 3)), 0, 1)


def history(members: int, epochs: int, stops=(), val: bool = True) -> list[dict]:
    """Per-epoch records shaped like train.History.epochs; member k stops after stops[k]."""
    stop = list(stops) + [epochs] * (members - len(stops))
    records = []
    for e in range(1, epochs + 1):
        live = [e <= s for s in stop]
        records.append(
            {
                "epoch": e,
                "train_loss": [1 / e + 0.01 * k if on else None for k, on in enumerate(live)],
                # a stopped member's frozen weights are still validated: values keep coming
                "val_loss": [1.2 / e + 0.02 * k if val else None for k in range(members)],
                "val_accuracy": [0.5 + 0.4 * e / epochs if val else None for _ in range(members)],
                "lr": 1e-3,
            }
        )
    return records


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def assert_labelled(fig) -> None:
    """A title (on each panel or the figure) and a label on every axis that shows tick
    labels (a panel sharing an axis with its neighbour hides them)."""
    for ax in visible_axes(fig):
        assert ax.get_title() or fig.get_suptitle(), "a panel without a title"
        assert ax.get_xlabel() or not ax.get_xticklabels(), f"no x label: {ax.get_title()!r}"
        assert ax.get_ylabel() or not ax.get_yticklabels(), f"no y label: {ax.get_title()!r}"


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, f"no legend on {ax.get_title()!r}"
    return [t.get_text() for t in legend.get_texts()]


TASKS = ["binary", "multiclass", "multilabel"]


@pytest.mark.parametrize("task", TASKS)
def test_confusion_is_labelled_per_task(task):
    y, p = predictions(task)
    fig = curve_plots.plot_confusion(y, p, task, NAMES[task])
    assert_labelled(fig)
    assert "Confusion matrix" in fig.get_suptitle()
    panels = visible_axes(fig)
    assert len(panels) == (3 if task == "multilabel" else 2)
    if task != "multilabel":
        labels = [t.get_text() for t in panels[0].get_xticklabels()]
        assert labels == NAMES[task]
        cells = [t.get_text() for t in panels[0].texts]
        assert sum(int(c) for c in cells) == len(y)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "plot",
    [curve_plots.plot_roc, curve_plots.plot_precision_recall],
    ids=["roc", "precision-recall"],
)
def test_curves_have_one_legend_entry_per_class_and_chance(plot, task):
    y, p = predictions(task)
    fig = plot(y, p, task, NAMES[task])
    assert_labelled(fig)
    texts = legend_texts(fig.axes[0])
    curves = 1 if task == "binary" else 3
    assert len(texts) == curves + 1
    assert texts[-1].startswith("chance")
    assert all(("AUC" in t) if plot is curve_plots.plot_roc else ("AP" in t) for t in texts[:-1])


def test_binary_roc_legend_shows_sklearns_auc():
    y, p = predictions("binary")
    texts = legend_texts(curve_plots.plot_roc(y, p, "binary", ["R", "M"]).axes[0])
    assert texts[0] == f"M (AUC {roc_auc_score(y, p):.3f})"


@pytest.mark.parametrize(
    "plot",
    [curve_plots.plot_roc, curve_plots.plot_precision_recall],
    ids=["roc", "precision-recall"],
)
def test_class_absent_from_split_is_named_not_drawn(plot):
    y, p = predictions("multiclass")
    keep = y != 2  # no bird in these rows
    fig = plot(y[keep], p[keep], "multiclass", NAMES["multiclass"])
    texts = legend_texts(fig.axes[0])
    assert not any(t.startswith("bird (") for t in texts)
    assert any("not drawn" in t and "bird" in t for t in texts)


def test_confusion_with_class_absent_keeps_its_row():
    y, p = predictions("multiclass")
    keep = y != 2
    fig = curve_plots.plot_confusion(y[keep], p[keep], "multiclass", NAMES["multiclass"])
    share_cells = [t.get_text() for t in fig.axes[1].texts]
    assert len(share_cells) == 9
    assert share_cells[6:] == ["\u2013"] * 3  # the bird row has no rows to divide by


@pytest.mark.parametrize("task", TASKS)
def test_calibration_has_diagonal_and_histogram(task):
    y, p = predictions(task, n=200)
    fig = curve_plots.plot_calibration(y, p, task, NAMES[task])
    assert_labelled(fig)
    curve_ax, hist_ax = fig.axes
    assert legend_texts(curve_ax)[0] == "perfectly calibrated"
    assert hist_ax.get_ylabel() == "rows"
    # one probability per row, or per row and label when labels are pooled
    assert sum(patch.get_height() for patch in hist_ax.patches) == y.size


def test_threshold_legend_matches_compute_metrics():
    y, p = predictions("binary")
    fig = curve_plots.plot_threshold(y, p, threshold=0.6, method="best F1 on validation rows")
    assert_labelled(fig)
    metrics = compute_metrics("binary", y, p, threshold=0.6)
    texts = legend_texts(fig.axes[0])
    assert texts[:3] == [
        f"precision ({metrics['precision']:.2f} at the threshold)",
        f"recall ({metrics['recall']:.2f} at the threshold)",
        f"F1 ({metrics['f1']:.2f} at the threshold)",
    ]
    assert texts[3] == "threshold 0.6, best F1 on validation rows"


def test_threshold_with_one_class_says_why_it_is_empty():
    fig = curve_plots.plot_threshold(np.zeros(10), np.linspace(0, 1, 10))
    assert any("both classes" in t.get_text() for t in fig.axes[0].texts)


def test_history_one_member_marks_best_epoch():
    fig = plots.plot_history(history(1, 12), [7])
    assert_labelled(fig)
    loss_ax, acc_ax = fig.axes
    assert legend_texts(loss_ax) == ["training", "validation", "best epoch (7)"]
    assert legend_texts(acc_ax) == ["validation", "best epoch (7)"]


def test_history_members_stopping_early_leave_the_band():
    records = history(3, 20, stops=(8, 14))
    fig = plots.plot_history(records, [5, 10, 18])
    assert_labelled(fig)
    loss_ax = fig.axes[0]
    assert "(3 members)" in loss_ax.get_title()
    assert legend_texts(loss_ax) == [
        "training (mean; band: min-max)",
        "validation (mean; band: min-max)",
        "best epoch of each member",
    ]
    val_mean = loss_ax.get_lines()[1].get_ydata()
    # after epoch 14 only member 2 trains, so the mean is its own validation loss
    assert val_mean[-1] == pytest.approx(1.2 / 20 + 0.04)
    assert len(loss_ax.collections[-1].get_offsets()) == 3  # a triangle per member


def test_history_of_one_epoch_draws_markers():
    fig = plots.plot_history(history(1, 1), [1])
    line = fig.axes[0].get_lines()[0]
    assert line.get_marker() == "o"
    assert list(line.get_xdata()) == [1.0]


def test_history_without_validation_rows():
    fig = plots.plot_history(history(2, 5, val=False), None)
    assert_labelled(fig)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["training (mean; band: min-max)"]
    assert any("no validation rows" in t.get_text() for t in acc_ax.texts)


@pytest.mark.parametrize("task", TASKS)
def test_class_distribution_groups_splits(task):
    counts = {"test": [5, 7, 3], "train": [30, 40, 20], "validation": [5, 6, 4]}
    if task == "binary":
        counts = {split: c[:2] for split, c in counts.items()}
    fig = plots.plot_class_distribution(counts, NAMES[task], task)
    assert_labelled(fig)
    ax = fig.axes[0]
    assert [t.split(" ")[0] for t in legend_texts(ax)] == ["train", "validation", "test"]
    assert len(ax.patches) == 3 * len(NAMES[task])
    expected = "rows with the label" if task == "multilabel" else "share of the split's rows"
    assert ax.get_ylabel() == expected


def test_multilabel_distribution_uses_rows_for_shares():
    fig = plots.plot_class_distribution(
        {"train": [10, 5]}, ["a", "b"], "multilabel", rows={"train": 20}
    )
    ax = fig.axes[0]
    assert ax.get_ylabel() == "share of the split's rows with the label"
    assert [p.get_height() for p in ax.patches] == [0.5, 0.25]


def test_fold_scores_box_per_design_and_baseline():
    scores = {"default": [0.8, 0.82, 0.79], "wide": [0.85, 0.81, 0.8], "most_frequent": [0.5] * 3}
    fig = plots.plot_fold_scores(scores, "accuracy")
    assert_labelled(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(scores)
    assert legend_texts(ax) == ["design", "baseline"]
    assert "3 held-out folds" in ax.get_title()


def test_importance_shows_top_columns_most_important_first():
    importance = {f"column {i}": (float(i), 0.1) for i in range(25)}
    fig = plots.plot_importance(importance, "log_loss", top=20)
    assert_labelled(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 20
    assert labels[0] == "column 24"  # y axis inverted: the first label is drawn on top
    assert ax.yaxis_inverted()
    assert "log loss" in ax.get_xlabel()
    assert "top 20 of 25" in ax.get_title()


def test_long_names_are_shortened():
    fig = plots.plot_importance({"x" * 100: (1.0, 0.0)})
    assert len(fig.axes[0].get_yticklabels()[0].get_text()) == 40


def test_png_base64_is_a_png_and_leaves_no_pyplot_figures():
    fig = curve_plots.plot_roc(*predictions("binary"), "binary", ["R", "M"])
    assert base64.b64decode(plots.png_base64(fig)).startswith(b"\x89PNG")
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_split_order():
    assert plots.split_order(["test", "extra", "train", "validation"]) == [
        "train",
        "validation",
        "test",
        "extra",
    ]
