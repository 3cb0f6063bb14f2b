"""Tests for tabnn.report: the ReportData contract and its files, the helpers that fill it,
the HTML page, and the page as a browser shows it."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabnn.errors import ModelError, UsageError
from tabnn.features.schema import Schema
from tabnn.report.data import REPORT_ARRAYS, REPORT_HTML, REPORT_JSON, ReportData
from tabnn.report.html import render_html, write_report
from tabnn.report.summaries import counts_per_class, dataset_summary, permutation_importance

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
]
SPLIT_PLOTS = ("confusion", "roc", "pr", "calibration", "threshold")
FULL_PLOTS = {
    "class-balance",
    "history",
    "fold-scores",
    "importance",
    *(f"{kind}-{split}" for kind in SPLIT_PLOTS for split in ("test", "validation")),
}


def binary_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1).astype(np.float32)


def three_member_history() -> list[dict]:
    """Three members; the first stops after epoch 4, as train.History records it."""
    records = []
    for e in range(1, 9):
        records.append(
            {
                "epoch": e,
                "train_loss": [None if k == 0 and e > 4 else 0.7 / e for k in range(3)],
                "val_loss": [0.75 / e + 0.01 * k for k in range(3)],
                "val_accuracy": [0.6 + 0.03 * e for _ in range(3)],
                "lr": 1e-3,
            }
        )
    return records


def full_data() -> ReportData:
    """A binary report with every section filled in."""
    return ReportData(
        title="sonar.csv \u2192 Class <M/R>",
        command="train",
        task="binary",
        class_names=["M", "R"],
        dataset={
            "source": "sonar.csv",
            "rows": {"train": 140, "validation": 30, "test": 40},
            "table_rows": 210,
            "numeric": [f"band {i}" for i in range(14)],
            "categorical": ["site"],
            "dropped": {"id": "unique per row (ID-like)", "const": "constant (always 1)"},
            "missing": {"band 3": 7},
            "target": ["Class"],
        },
        history=three_member_history(),
        best_epoch=[3, 6, 7],
        metrics={
            "model": {"accuracy": 0.8, "log_loss": 0.41, "roc_auc": None, "confusion_matrix": []},
            "most_frequent": {"accuracy": 0.53, "log_loss": 0.69, "roc_auc": 0.5},
            "logistic_regression": {"accuracy": 0.76, "log_loss": 0.5, "roc_auc": 0.83},
        },
        predictions={"test": binary_split(40, 1), "validation": binary_split(30, 2)},
        threshold=0.45,
        threshold_method="best F1 on validation rows",
        class_counts={"train": [74, 66]},
        fold_scores={"default": [0.8, 0.78, 0.83], "most_frequent": [0.53, 0.52, 0.54]},
        fold_metric="accuracy",
        importance={"band 1": (0.05, 0.01), "site": (0.01, 0.005), "band 2": (-0.001, 0.002)},
        created="2025-01-02T03:04:05",
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """The full report written once (drawing it is the slow part) and shared."""
    return write_report(full_data(), tmp_path_factory.mktemp("report"))


# --- ReportData and its files ----------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    data = full_data()
    data.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {REPORT_ARRAYS, REPORT_JSON}
    stored = json.loads((tmp_path / REPORT_JSON).read_text(encoding="utf-8"))
    assert "predictions" not in stored  # arrays live in the safetensors file
    assert stored["prediction_splits"] == ["test", "validation"]
    loaded = ReportData.load(tmp_path)
    assert loaded == data
    y, p = loaded.predictions["test"]
    assert y.dtype == np.int64 and p.dtype == np.float32
    np.testing.assert_array_equal(p, data.predictions["test"][1])
    assert loaded.importance["band 1"] == (0.05, 0.01)


def test_save_without_predictions_writes_json_only(tmp_path):
    ReportData("t", "compare", "multiclass", ["a", "b", "c"], fold_scores={"x": [1.0]}).save(
        tmp_path
    )
    assert [p.name for p in tmp_path.iterdir()] == [REPORT_JSON]
    assert ReportData.load(tmp_path).fold_scores == {"x": [1.0]}


def test_multilabel_arrays_round_trip(tmp_path):
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.2], [0.1, 0.7], [0.6, 0.8]])
    data = ReportData("t", "evaluate", "multilabel", ["a", "b"], predictions={"test": (y, p)})
    data.save(tmp_path)
    loaded_y, loaded_p = ReportData.load(tmp_path).predictions["test"]
    np.testing.assert_array_equal(loaded_y, y)
    np.testing.assert_array_equal(loaded_p, p)


def test_to_dict_is_plain_json():
    data = full_data()
    data.metrics["model"]["brier"] = float("nan")
    data.metrics["model"]["mcc"] = np.float64(0.5)
    data.fold_scores["default"] = np.array(data.fold_scores["default"])
    d = data.to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN would not be valid JSON
    assert json.loads(text)["metrics"]["model"]["brier"] is None
    assert ReportData.from_dict(json.loads(text)).predictions["test"][0].tolist() == (
        data.predictions["test"][0].tolist()
    )


def test_load_missing_directory_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="Cannot read the report data"):
        ReportData.load(tmp_path / "nowhere")


def test_load_corrupt_arrays_is_a_model_error(tmp_path):
    full_data().save(tmp_path)
    (tmp_path / REPORT_ARRAYS).write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="Cannot read the report data"):
        ReportData.load(tmp_path)


def test_from_dict_names_missing_keys():
    with pytest.raises(ModelError, match="lacks task, class_names"):
        ReportData.from_dict({"title": "t", "command": "train"})


def test_unknown_task_is_a_usage_error():
    with pytest.raises(UsageError, match="task must be one of"):
        ReportData("t", "train", "regression", [])


# --- helpers -----------------------------------------------------------------------------------


def test_dataset_summary_from_schema():
    schema = Schema(["age"], ["city"], {"id": "unique per row (ID-like)"}, "binary", ["y"], [0, 1])
    X = pd.DataFrame({"age": [1.0, None, 3.0], "city": ["a", None, None], "id": [1, 2, 3]})
    summary = dataset_summary(schema, X, {"train": 2, "test": 1}, source="t.csv")
    assert summary == {
        "source": "t.csv",
        "rows": {"train": 2, "test": 1},
        "table_rows": 3,
        "numeric": ["age"],
        "categorical": ["city"],
        "dropped": {"id": "unique per row (ID-like)"},
        "target": ["y"],
        "missing": {"age": 1, "city": 2},
    }


@pytest.mark.parametrize(
    ("y", "task", "k", "expected"),
    [
        ([1, 1, 0], "binary", 2, [1, 2]),
        ([2, 2, 0], "multiclass", 4, [1, 0, 2, 0]),
        ([[1, 0], [1, 1]], "multilabel", 2, [2, 1]),
    ],
    ids=["binary", "multiclass", "multilabel"],
)
def test_counts_per_class(y, task, k, expected):
    assert counts_per_class(y, task, k) == expected


def signal_and_noise(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame(
        {"signal": y + rng.normal(0, 0.5, n), "noise": rng.normal(size=n), "city": ["a"] * n}
    )
    return X, y


def sigmoid_of_signal(frame: pd.DataFrame) -> np.ndarray:
    """A 'model' that reads only the signal column, as TabNNClassifier.predict_proba: (n, 2)."""
    p = 1 / (1 + np.exp(-4 * (frame["signal"].to_numpy() - 0.5)))
    return np.column_stack([1 - p, p])


def test_permutation_importance_ranks_the_columns_the_model_uses():
    X, y = signal_and_noise()
    result = permutation_importance(sigmoid_of_signal, X, y, "binary", n_repeats=3)
    assert list(result) == ["signal", "noise", "city"]  # the user's columns, in order
    assert result["signal"][0] > 0.3
    assert result["noise"] == (0.0, 0.0)
    assert result["city"] == (0.0, 0.0)


def test_permutation_importance_with_a_metric_and_fewer_rows():
    X, y = signal_and_noise()
    result = permutation_importance(
        sigmoid_of_signal, X, y, "binary", metric="accuracy", n_repeats=2, max_rows=50
    )
    assert 0.1 < result["signal"][0] <= 1


def labels_from_signal(frame: pd.DataFrame) -> np.ndarray:
    """Multilabel probabilities of two labels: 'y' and 'not y'."""
    return sigmoid_of_signal(frame)[:, ::-1]


@pytest.mark.parametrize(
    ("task", "proba", "target"),
    [
        ("multiclass", sigmoid_of_signal, lambda y: y),
        ("multilabel", labels_from_signal, lambda y: np.column_stack([y, 1 - y])),
    ],
    ids=["multiclass", "multilabel"],
)
def test_permutation_importance_other_tasks(task, proba, target):
    X, y = signal_and_noise()
    result = permutation_importance(proba, X, target(y), task, n_repeats=2)
    assert result["signal"][0] > 0.3
    assert result["noise"] == (0.0, 0.0)


def test_permutation_importance_rejects_unknown_metrics():
    X, y = signal_and_noise(20)
    with pytest.raises(UsageError, match="Unknown metric 'r2' for a binary task; valid: log_loss"):
        permutation_importance(sigmoid_of_signal, X, y, "binary", metric="r2")
    with pytest.raises(UsageError, match="Unknown metric 'f1_micro'"):
        permutation_importance(sigmoid_of_signal, X, y, "binary", metric="f1_micro")


# --- the page ----------------------------------------------------------------------------------


def plots_in(page: str) -> set[str]:
    return set(re.findall(r'<img data-plot="([^"]+)"', page))


def test_full_page_has_every_section_and_plot(written):
    page = written.read_text(encoding="utf-8")
    assert plots_in(page) == FULL_PLOTS
    for section in ("scores", "data", "training", "split-test", "split-validation"):
        assert f'<section id="{section}">' in page
    assert page.index('id="split-test"') < page.index('id="split-validation"')
    assert "&lt;M/R&gt;" in page and "<M/R>" not in page  # the title is escaped
    assert "unique per row (ID-like)" in page
    assert "best F1 on validation rows" in page


def test_page_is_self_contained(written):
    page = written.read_text(encoding="utf-8")
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page), "an external reference"
    assert "http://" not in page and "https://" not in page


def test_metrics_table_shows_scalars_and_marks_the_best(written):
    page = written.read_text(encoding="utf-8")
    scores = page[page.index('id="scores"') : page.index('id="data"')]
    assert "confusion_matrix" not in scores
    assert "<b>0.8000</b>" in scores  # the model's accuracy beats both baselines
    assert "<b>0.4100</b>" in scores  # and so does its log loss, where lower is better
    assert "logistic regression (baseline)" in scores


def test_write_report_is_atomic_and_readable(written):
    assert written.name == REPORT_HTML
    assert [p.name for p in written.parent.iterdir()] == [REPORT_HTML]  # no temp files left
    assert os.stat(written).st_mode & 0o044  # not private to the writer like a mkstemp file


def test_minimal_data_renders_an_empty_page():
    page = render_html(ReportData("only a title", "evaluate", "binary", ["no", "yes"]))
    assert "<section" not in page and plots_in(page) == set()
    assert "only a title" in page


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_evaluate_page_for_other_tasks(task):
    rng = np.random.default_rng(0)
    if task == "multiclass":
        y = np.arange(30) % 3
        proba = rng.dirichlet(np.ones(3), 30)
    else:
        y = rng.integers(0, 2, (30, 3))
        proba = rng.uniform(size=(30, 3))
    data = ReportData("t", "evaluate", task, ["a", "b", "c"], predictions={"test": (y, proba)})
    page = render_html(data)
    assert plots_in(page) == {
        "class-balance",
        *(f"{kind}-test" for kind in SPLIT_PLOTS if kind != "threshold"),
    }
    noun = "label" if task == "multilabel" else "class"
    assert f"<h3>Per {noun}</h3>" in page


def test_split_without_rows_says_so():
    empty = (np.zeros(0, dtype=int), np.zeros(0))
    data = ReportData("t", "train", "binary", ["a", "b"], predictions={"validation": empty})
    page = render_html(data)
    assert "<p>No rows.</p>" in page and plots_in(page) == set()


# --- in a browser ------------------------------------------------------------------------------


def test_report_in_headless_chromium(written, tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is missing: pip install 'playwright>=1.40' (in the test extra)",
    )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (make test tries)")
    problems, external = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",  # a fresh profile each run
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1366, "height": 768},
        )
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.on("request", lambda r: r.url.startswith(("data:", "file:")) or external.append(r.url))
        page.goto(written.as_uri())
        images = page.eval_on_selector_all(
            "img",
            """imgs => imgs.map(i => ({plot: i.dataset.plot, complete: i.complete,
                natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))""",
        )
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        screenshot = tmp_path / "report.png"
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    assert problems == [] and external == []
    assert {image["plot"] for image in images} == FULL_PLOTS
    for image in images:
        assert image["complete"] and image["natural"] > 0, image
        assert image["shown"] >= 450, f"{image['plot']} is drawn too small to read: {image}"
    assert overflow <= 0, "the page scrolls sideways on a 1366 px wide screen"
    assert screenshot.stat().st_size > 10_000
