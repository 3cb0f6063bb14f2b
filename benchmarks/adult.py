"""Adult (census income, 32,561 rows, ``?`` for missing): tabnn end to end, timed beside
scikit-learn in one run, on the same split.

1. tabnn through the library workflow the CLI's ``train`` uses
   (``tabnn.workflows.runs.train_workflow``): read,
   stratified 70/15/15 split, fit with early stopping on validation, evaluate once on test
   beside the most-frequent and logistic-regression baselines, save the model directory.
2. scikit-learn's ``MLPClassifier((256, 256), early_stopping=True)`` in a Pipeline (median
   fill + standard scaling for numeric columns, most-frequent fill + one-hot for categorical
   ones), trained on tabnn's train + validation rows and scored on the same test rows; and
   LightGBM the same way when it happens to be importable (it is never installed for this).
3. Prediction throughput: ``tabnn.inference.predict.predict_file`` over adult-test.csv
   (16,281 rows whose labels end in ``.``; the label column is an extra column that
   predict ignores), written
   to a temporary CSV, with the accuracy of those predictions against the stripped labels.

Timings are ``time.perf_counter()`` after imports. Run from the repository root::

    python benchmarks/adult.py            # the whole table
    python benchmarks/adult.py --quick    # ~5,000 sampled rows, a smoke test
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tabnn.data import read_table
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.inference.predict import predict_file
from tabnn.workflows.runs import ReadOptions, TrainResult, train_workflow

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT.parent / "shared" / "data" / "adult"
OPTIONS = ReadOptions(header=False, target="-1")
QUICK_ROWS = 5_000


@dataclass
class Row:
    """One line of the report. ``rows`` is what ``rows/s`` divides: file rows for a whole
    job, training rows x epochs for a fit, predicted rows for prediction."""

    what: str
    seconds: float
    rows: float
    accuracy: float = float("nan")
    epochs: int | None = None


def sample_file(path: Path, n: int, seed: int, folder: Path) -> Path:
    """``n`` random data lines of a header-less file, copied verbatim (``?`` kept)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    keep = np.sort(np.random.default_rng(seed).choice(len(lines), n, replace=False))
    sampled = folder / f"sample_{path.name}"
    sampled.write_text("\n".join(lines[i] for i in keep) + "\n")
    return sampled


# --- 1. tabnn, the train workflow ----------------------------------------------------------


def run_tabnn(path: Path, seed: int, out: Path) -> tuple[TrainResult, TabNNClassifier, float]:
    estimator = TabNNClassifier(random_state=seed)
    start = time.perf_counter()
    result = train_workflow(path, OPTIONS, estimator, out=out)
    return result, estimator, time.perf_counter() - start


def tabnn_rows(result: TrainResult, estimator: TabNNClassifier, total: float) -> list[Row]:
    scores = result.evaluation["scores"]
    epochs = len(estimator.history_.epochs)
    n_file = sum(result.rows.values()) + result.dropped_targets
    return [
        Row("tabnn train workflow (read..save)", total, n_file, scores["model"]["accuracy"]),
        Row("  of which fit", result.seconds, result.rows["train"] * epochs, epochs=epochs),
        Row("  baseline most_frequent", float("nan"), 0, scores["most_frequent"]["accuracy"]),
        Row(
            "  baseline logistic_regression",
            float("nan"),
            0,
            scores["logistic_regression"]["accuracy"],
        ),
    ]


# --- 2. scikit-learn (and LightGBM) on the same split -----------------------------------


@dataclass
class Split:
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series


def same_split(path: Path, result: TrainResult) -> Split:
    """tabnn's split of the file: train + validation rows for training, its test rows."""
    frame = read_table(path, header=False)
    X, y = frame.iloc[:, :-1], frame.iloc[:, -1]
    test = np.asarray(result.test_rows)
    train = np.setdiff1d(np.flatnonzero(y.notna().to_numpy()), test)
    return Split(X.iloc[train], y.iloc[train], X.iloc[test], y.iloc[test])


def columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric = list(X.select_dtypes("number").columns)
    return numeric, [c for c in X.columns if c not in numeric]


def sklearn_mlp(X: pd.DataFrame, seed: int) -> Pipeline:
    numeric, categorical = columns(X)
    encode = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    mlp = MLPClassifier(hidden_layer_sizes=(256, 256), early_stopping=True, random_state=seed)
    return Pipeline([("encode", encode), ("mlp", mlp)])


def timed_fit(name: str, model, split: Split) -> list[Row]:
    """Fit on the training rows, predict the test rows; a fit row and a fit+predict row."""
    start = time.perf_counter()
    model.fit(split.X_train, split.y_train)
    fitted = time.perf_counter()
    accuracy = accuracy_score(split.y_test, model.predict(split.X_test))
    done = time.perf_counter()
    epochs = getattr(model[-1], "n_iter_", None)
    n_fit = len(split.X_train) * (epochs or 1)
    return [
        Row(f"{name} fit+predict", done - start, len(split.X_train) + len(split.X_test), accuracy),
        Row("  of which fit", fitted - start, n_fit, epochs=epochs),
    ]


def lightgbm_model(X: pd.DataFrame, seed: int) -> Pipeline | None:
    try:
        import lightgbm
    except ImportError:
        return None
    numeric, categorical = columns(X)
    encode = ColumnTransformer(
        [
            ("num", "passthrough", numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = lightgbm.LGBMClassifier(random_state=seed, verbose=-1)
    return Pipeline([("encode", encode), ("gbm", model)])


# --- 3. prediction throughput -------------------------------------------------------------


def run_predict(model_dir: Path, test_path: Path, folder: Path) -> Row:
    out = folder / "predictions.csv"
    start = time.perf_counter()
    n = predict_file(model_dir, test_path, OPTIONS, out=out)
    seconds = time.perf_counter() - start
    truth = read_table(test_path, header=False).iloc[:, -1].str.rstrip(".")
    predicted = pd.read_csv(out)["prediction"].astype(str).str.strip()
    accuracy = float((predicted.to_numpy() == truth.to_numpy()).mean())
    return Row(f"tabnn predict_file -> CSV ({test_path.name})", seconds, n, accuracy)


# --- the report ---------------------------------------------------------------------------


def fmt(x: float, spec: str, width: int) -> str:
    return f"{x:{width}{spec}}" if np.isfinite(x) else " " * (width - 1) + "-"


def print_table(rows: list[Row]) -> None:
    print(f"\n{'what':44s} {'seconds':>8s} {'rows/s':>10s} {'epochs':>6s} {'accuracy':>9s}")
    for r in rows:
        rate = r.rows / r.seconds if r.rows and np.isfinite(r.seconds) else float("nan")
        epochs = f"{r.epochs:6d}" if r.epochs else " " * 5 + "-"
        print(
            f"{r.what:44s} {fmt(r.seconds, '.2f', 8)} {fmt(rate, ',.0f', 10)} {epochs} "
            f"{fmt(100 * r.accuracy, '.2f', 7)}{' %' if np.isfinite(r.accuracy) else '  '}"
        )


def print_ratios(tabnn: list[Row], mlp: list[Row]) -> None:
    whole, fit = tabnn[0].seconds / mlp[0].seconds, tabnn[1].seconds / mlp[1].seconds
    print(f"\ntabnn / sklearn MLP time: job vs fit+predict {whole:.2f}x, fit vs fit {fit:.2f}x")


def print_tabnn_details(result: TrainResult) -> None:
    model = result.evaluation["scores"]["model"]
    print(
        f"tabnn: rows {result.rows}, dropped columns {result.dropped_columns or 'none'}, "
        f"best epoch {result.best_epochs}, test accuracy {model['accuracy']:.4f}, "
        f"ROC AUC {model['roc_auc']:.4f}, F1 {model['f1']:.4f}"
    )


NOTES = """
notes:
- rows/s: file rows per second for a whole job, training rows x epochs per second for a fit
  (row-epochs; sklearn's epochs are MLPClassifier.n_iter_), predicted rows per second for
  prediction. The tabnn job also reads the file, splits it, fits and scores the
  logistic-regression baseline and saves the model; the sklearn rows start from a frame in
  memory (tabnn's reader, outside the timing).
- tabnn fits on its 70 % train rows and stops early on its 15 % validation rows; sklearn
  fits on those 85 % together and holds out 10 % of them itself for early stopping. All
  accuracies above the prediction row are on the same 15 % test rows of adult.data.
- the predict row scores adult-test.csv (another sample of the census) against its labels
  with the trailing '.' removed."""


def header(args, n_rows: int) -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"Adult: {n_rows} rows from {args.data.name}{' (--quick sample)' if args.quick else ''}, "
        f"seed {args.seed}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs, load average {load}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"~{QUICK_ROWS:,} sampled rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=ADULT / "adult.data")
    parser.add_argument("--test-data", type=Path, default=ADULT / "adult-test.csv")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tabnn_adult_") as tmp:
        folder = Path(tmp)
        path = sample_file(args.data, QUICK_ROWS, args.seed, folder) if args.quick else args.data
        header(args, sum(1 for line in path.open() if line.strip()))
        result, estimator, total = run_tabnn(path, args.seed, folder / "model")
        print_tabnn_details(result)
        tabnn = tabnn_rows(result, estimator, total)
        split = same_split(path, result)
        mlp = timed_fit("sklearn MLP (256, 256)", sklearn_mlp(split.X_train, args.seed), split)
        gbm_model = lightgbm_model(split.X_train, args.seed)
        gbm = timed_fit("LightGBM", gbm_model, split) if gbm_model is not None else []
        if gbm_model is None:
            print("LightGBM: not importable here, skipped (not installed for this benchmark).")
        predicted = run_predict(result.model_dir, args.test_data, folder)
        print_table([*tabnn, *mlp, *gbm, predicted])
        print_ratios(tabnn, mlp)
    print(NOTES)


if __name__ == "__main__":
    main()
