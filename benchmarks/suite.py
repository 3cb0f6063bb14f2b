"""The suite: default ``TabNNClassifier`` against its peers on every labelled table in
``../shared/data``, one protocol for all, measured in one run.

Protocol (fixed; the defaults of ``--max-rows`` and ``--folds`` are the protocol):

* 22 single-label tables and one multi-label table (emotions), read with pandas as the data
  README describes them (``?`` is missing, no header where there is none, the BOM and the
  ``;`` separator handled, adult from ``adult.data`` only). String columns stay strings,
  labels keep their original values.
* A table with more than 20,000 rows is cut to a stratified random subsample of 20,000
  (seed 0); only adult is.
* 5-fold ``StratifiedKFold(shuffle=True, random_state=0)``, the same folds for every model
  (emotions: ``MultilabelStratifiedKFold`` from ``iterstrat``, same seed). Each model is
  fitted once per fold on the training folds and scored on the held-out fold: accuracy,
  or micro-F1 for emotions. A dataset's score is the mean over its folds.
* Timed: the estimator's ``fit`` call only. Fit seconds are wall seconds
  (``time.perf_counter``) summed over folds; CPU seconds are ``time.process_time`` summed
  over folds (all threads of the process). Formatting the columns for a peer (strings to
  ``category`` for LightGBM, to ``object`` for scikit-learn) is outside the timer.

Models (``--models``, default all of them):

* ``tabnn``: ``TabNNClassifier(random_state=0)``, fitted on the DataFrame as read (strings,
  missing values, ID-like and free-text columns: it handles or drops them itself); for
  emotions its target is the 6-column 0/1 frame (multi-label).
* ``--variant NAME=JSON`` adds ``TabNNClassifier(**json.loads(JSON))`` under NAME
  (``random_state`` 0 unless given); it always runs, whatever ``--models`` says.
* ``lightgbm``: ``LGBMClassifier(verbose=-1, random_state=0)``, string columns as pandas
  ``category`` with the training fold's categories (an unseen category is missing).
* ``catboost``: ``CatBoostClassifier(verbose=0, random_seed=0, thread_count=-1,
  allow_writing_files=False)``, string columns as ``cat_features`` (missing as "nan").
* ``mlp``: ``MLPClassifier(random_state=0)`` and ``logreg``: ``LogisticRegression(
  max_iter=1000)``, each after a ColumnTransformer: numeric median fill + StandardScaler,
  string most-frequent fill + ``OneHotEncoder(handle_unknown="ignore")``.
* ``most_frequent``: ``DummyClassifier(strategy="most_frequent")``.

The peers (every model but tabnn and its variants) get the labels as ``LabelEncoder`` codes
and one rule for columns, applied to all of them alike: a string column with more distinct
values than half the table's rows is dropped (titanic's Name and Ticket, network_scan's two
IP addresses). Every table's label leakage is removed for everyone (network_scan's
Intrusion, wdbc's ID). On emotions LightGBM and logistic regression are binary relevance
(``MultiOutputClassifier``), the MLP and the dummy handle a 0/1 matrix themselves, and
CatBoost is left out: as binary relevance with its defaults (6 x 1,000 iterations a fold) it
took 710 s there (2 busy cores), 58 x LightGBM's time, 14 x its own on heart, iris and sonar.

Report (stdout): one row per dataset (rows, classes, each model's mean score and fit
seconds, ``*`` on the best), then one row per model: mean rank over the single-label
datasets (1 = best, ties averaged; only models that ran on all of them), mean accuracy,
wins/ties/losses against LightGBM (ties within 1e-9), total fit and CPU seconds, fit
seconds as a multiple of LightGBM's on the datasets both ran, and emotions' micro-F1.
Then, for every single-label dataset where some test rows have a *twin* (a training row
with exactly the same features: the peers' columns less key columns whose every value
differs), the share of such rows and each model's accuracy on rows with and without a twin.
Progress (dataset, model, fold, seconds) goes to stderr as each fit ends.

Run from the repository root (the whole suite takes a while on 2 cores)::

    .venv/bin/python benchmarks/suite.py --list                  # load every table, no training
    .venv/bin/python benchmarks/suite.py --datasets iris,sonar --models tabnn,lightgbm
    .venv/bin/python benchmarks/suite.py --out suite.json        # the whole suite, saved
    .venv/bin/python benchmarks/suite.py --models none \\
        --variant tabnn-k2='{"n_members": 2}' --merge suite.json   # a variant beside it

``--merge old.json`` takes the records of an earlier ``--out`` for the (dataset, model)
pairs this run does not compute; the header names them, since their times come from
that other run; a file made with other ``--max-rows`` or ``--folds`` is refused. A fit that
fails is reported (traceback on stderr, a line under the tables) and the suite goes on; the
exit status is then 1. LightGBM and CatBoost are the ``bench`` extra
(``pip install -e ".[bench]"``); a missing one is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy.io import arff
from scipy.stats import rankdata
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.multioutput import MultiOutputClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
SEED = 0
TIE = 1e-9  # scores closer than this are a tie
BASELINE = "lightgbm"  # wins, losses and time ratios are against this model
PEER_MODELS = ["lightgbm", "catboost", "mlp", "logreg", "most_frequent"]
BUILTIN_MODELS = ["tabnn", *PEER_MODELS]


def say(message: str) -> None:
    """A progress or note line on stderr, flushed at once."""
    print(message, file=sys.stderr, flush=True)


# --- datasets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """One single-label CSV-like table: where it is, how to read it, which column is the
    label, and which columns nobody may use (IDs, the label in another form). Header-less
    files get column names c1..cN, numbered as in the data README."""

    name: str
    path: str
    label: str
    header: bool = True
    sep: str = ","
    drop: tuple[str, ...] = ()


PMLB = [
    "churn",
    "credit_a",
    "dermatology",
    "ecoli",
    "kr_vs_kp",
    "letter",
    "magic",
    "optdigits",
    "satimage",
    "segmentation",
    "spambase",
    "vehicle",
]
TABLES = [
    TableSpec("adult", "adult/adult.data", "c15", header=False),
    TableSpec("bank", "bank_marketing/bank.csv", "y", sep=";"),
    TableSpec("heart", "heart/heart.csv", "target"),
    TableSpec("cleveland", "heart/processed.cleveland.data", "c14", header=False),
    TableSpec("iris", "iris/iris.csv", "c5", header=False),
    TableSpec("mushroom", "mushroom/mushrooms.csv", "class"),
    TableSpec("network_scan", "network_logs/Network_logs.csv", "Scan_Type", drop=("Intrusion",)),
    *(TableSpec(name, f"pmlb/{name}.tsv.gz", "target", sep="\t") for name in PMLB),
    TableSpec("sonar", "sonar/sonar.csv", "c61", header=False),
    TableSpec("titanic", "titanic/train.csv", "Survived"),
    TableSpec("wdbc", "wdbc/wdbc.data", "c2", header=False, drop=("c1",)),
]
EMOTIONS = "emotions"
EMOTIONS_PATH = "multilabel/emotions.arff"
EMOTIONS_LABELS = 6  # the last 6 attributes
DATASET_NAMES = [spec.name for spec in TABLES] + [EMOTIONS]


@dataclass
class Dataset:
    name: str
    X: pd.DataFrame  # features as read: what tabnn gets
    y: pd.Series | pd.DataFrame  # labels as read; a 0/1 frame for multi-label
    file_rows: int  # rows before the cap

    @property
    def multilabel(self) -> bool:
        return isinstance(self.y, pd.DataFrame)

    @property
    def metric(self) -> str:
        return "micro-F1" if self.multilabel else "accuracy"

    @property
    def n_classes(self) -> int:
        return self.y.shape[1] if self.multilabel else int(self.y.nunique())

    def score(self, y_true, y_pred) -> float:
        if self.multilabel:
            return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average="micro"))
        return float(accuracy_score(y_true, y_pred))


def read_table(spec: TableSpec, data_dir: Path) -> tuple[pd.DataFrame, pd.Series]:
    """A table's features and label. ``?`` is missing everywhere, spaces after a separator
    are dropped (adult's ", "), and a byte-order mark is skipped (heart.csv)."""
    frame = pd.read_csv(
        data_dir / spec.path,
        sep=spec.sep,
        header=0 if spec.header else None,
        na_values=["?"],
        skipinitialspace=True,
        encoding="utf-8-sig",
    )
    if not spec.header:
        frame.columns = [f"c{i}" for i in range(1, frame.shape[1] + 1)]
    return frame.drop(columns=[spec.label, *spec.drop]), frame[spec.label]


def read_emotions(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """emotions.arff: 72 numeric features and 6 {0,1} labels (read as bytes) as ints."""
    records, _ = arff.loadarff(data_dir / EMOTIONS_PATH)
    frame = pd.DataFrame(records)
    labels = frame.iloc[:, -EMOTIONS_LABELS:].apply(lambda column: column.map(int))
    return frame.iloc[:, :-EMOTIONS_LABELS], labels


def cap_rows(X: pd.DataFrame, y, max_rows: int):
    """At most ``max_rows`` rows: a random subsample (seed 0), stratified on a single label,
    in the file's order."""
    if len(X) <= max_rows:
        return X, y
    stratify = None if isinstance(y, pd.DataFrame) else y
    keep, _ = train_test_split(
        np.arange(len(X)), train_size=max_rows, stratify=stratify, random_state=SEED
    )
    keep = np.sort(keep)
    return X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)


def load_dataset(name: str, data_dir: Path, max_rows: int) -> Dataset:
    if name == EMOTIONS:
        X, y = read_emotions(data_dir)
    else:
        X, y = read_table(next(spec for spec in TABLES if spec.name == name), data_dir)
    file_rows = len(X)
    X, y = cap_rows(X, y, max_rows)
    return Dataset(name, X, y, file_rows)


def string_columns(X: pd.DataFrame) -> list[str]:
    return [column for column in X.columns if not pd.api.types.is_numeric_dtype(X[column])]


def columns_peers_drop(X: pd.DataFrame) -> list[str]:
    """The peers' one column rule: string columns with more distinct values than half the
    rows (names, tickets, addresses) carry no pattern a peer can learn from as categories."""
    return [column for column in string_columns(X) if X[column].nunique() > len(X) / 2]


def make_folds(dataset: Dataset, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if not dataset.multilabel:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=SEED)
        return list(splitter.split(dataset.X, dataset.y))
    try:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
    except ImportError:  # plain KFold, named in the options
        splitter = KFold(n_folds, shuffle=True, random_state=SEED)
        return list(splitter.split(dataset.X))
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=SEED)
    return list(splitter.split(dataset.X, dataset.y.to_numpy()))


# --- models --------------------------------------------------------------------------------

Frames = tuple[pd.DataFrame, pd.DataFrame]


@dataclass
class Model:
    """How one model is built and fed. ``peer``: it gets the peers' columns and the labels
    as codes; ``prepare`` formats the (train, test) features for it (untimed); ``make``
    builds an unfitted estimator for the prepared training features and the task;
    ``multilabel``: whether it runs on the multi-label set."""

    name: str
    make: Callable[[pd.DataFrame, bool], Any]
    prepare: Callable[[pd.DataFrame, pd.DataFrame], Frames] = lambda train, test: (train, test)
    peer: bool = True
    multilabel: bool = True

    def runs_on(self, dataset: str) -> bool:
        return self.multilabel or dataset != EMOTIONS


def tabnn_model(name: str, params: dict) -> Model:
    from tabnn import TabNNClassifier

    params = {"random_state": SEED, **params}
    return Model(name, lambda X, multilabel: TabNNClassifier(**params), peer=False)


def as_objects(train: pd.DataFrame, test: pd.DataFrame, missing=np.nan) -> Frames:
    """String columns as ``object`` with ``missing`` for a missing value, as scikit-learn's
    imputers and encoders and CatBoost expect."""
    train, test = train.copy(), test.copy()
    for column in string_columns(train):
        for frame in (train, test):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), missing)
    return train, test


def as_categories(train: pd.DataFrame, test: pd.DataFrame) -> Frames:
    """String columns as pandas ``category`` with the training fold's categories; a test
    value outside them becomes missing."""
    train, test = train.copy(), test.copy()
    for column in string_columns(train):
        categories = pd.CategoricalDtype(sorted(train[column].dropna().unique()))
        train[column] = train[column].astype(object).astype(categories)
        test[column] = test[column].astype(object).astype(categories)
    return train, test


def binary_relevance(estimator, multilabel: bool):
    return MultiOutputClassifier(estimator) if multilabel else estimator


def make_lightgbm(X: pd.DataFrame, multilabel: bool):
    import lightgbm

    return binary_relevance(lightgbm.LGBMClassifier(verbose=-1, random_state=SEED), multilabel)


def make_catboost(X: pd.DataFrame, multilabel: bool):
    import catboost

    return catboost.CatBoostClassifier(
        verbose=0,
        random_seed=SEED,
        thread_count=-1,
        allow_writing_files=False,
        cat_features=[X.columns.get_loc(column) for column in string_columns(X)],
    )


def column_preprocessing(X: pd.DataFrame) -> ColumnTransformer:
    """Numeric: median fill and standard scaling; strings: most-frequent fill and one-hot."""
    strings = string_columns(X)
    numbers = [column for column in X.columns if column not in strings]
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    parts = [("numeric", numeric, numbers), ("categorical", categorical, strings)]
    return ColumnTransformer([part for part in parts if part[2]])


def make_mlp(X: pd.DataFrame, multilabel: bool):
    # MLPClassifier learns a 0/1 label matrix itself
    return Pipeline(
        [("columns", column_preprocessing(X)), ("mlp", MLPClassifier(random_state=SEED))]
    )


def make_logreg(X: pd.DataFrame, multilabel: bool):
    logreg = Pipeline(
        [("columns", column_preprocessing(X)), ("logreg", LogisticRegression(max_iter=1000))]
    )
    return binary_relevance(logreg, multilabel)


def make_most_frequent(X: pd.DataFrame, multilabel: bool):
    return DummyClassifier(strategy="most_frequent")


PEER_BUILDERS = {
    "lightgbm": Model("lightgbm", make_lightgbm, as_categories),
    "catboost": Model(
        "catboost",
        make_catboost,
        lambda train, test: as_objects(train, test, "nan"),
        multilabel=False,  # see the module's docstring
    ),
    "mlp": Model("mlp", make_mlp, as_objects),
    "logreg": Model("logreg", make_logreg, as_objects),
    "most_frequent": Model("most_frequent", make_most_frequent, as_objects),
}
OPTIONAL_PACKAGES = {"lightgbm": "lightgbm", "catboost": "catboost"}


def installed(package: str) -> bool:
    try:
        __import__(package)
    except ImportError:
        return False
    return True


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME=JSON`` -> (NAME, parameters), checked against TabNNClassifier before any
    training: an unknown parameter or an out-of-range value ends the run here."""
    name, sep, params_json = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise SystemExit(f"--variant {text!r}: expected NAME=JSON, e.g. tabnn-k2='{{...}}'")
    if name in BUILTIN_MODELS:
        raise SystemExit(f"--variant {name}: the name is taken by a built-in model")
    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--variant {name}: not valid JSON ({error}): {params_json}") from None
    if not isinstance(params, dict):
        raise SystemExit(f"--variant {name}: the JSON must be an object of parameters")
    check_tabnn_params(name, params)
    return name, params


def check_tabnn_params(name: str, params: dict) -> None:
    from tabnn import TabNNClassifier

    known = TabNNClassifier().get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SystemExit(
            f"--variant {name}: unknown TabNNClassifier parameter(s) {unknown}; "
            f"known: {', '.join(sorted(known))}"
        )
    try:
        from tabnn.estimator.params import validate_params
    except ImportError:  # values are then checked by the first fit
        return
    try:
        validate_params(TabNNClassifier(**params))
    except Exception as error:  # tabnn's UsageError: a value out of range
        raise SystemExit(f"--variant {name}: {error}") from None


def select_models(
    names: list[str], variants: list[tuple[str, dict]], tabnn_params: dict | None = None
) -> list[Model]:
    """The built-in models asked for (the optional packages that are missing skipped with
    a note), then the variants; ``tabnn_params`` go to the built-in tabnn."""
    models = []
    for name in names:
        package = OPTIONAL_PACKAGES.get(name)
        if package and not installed(package):
            say(f"note: {package} is not installed (pip install -e '.[bench]'): {name} skipped")
            continue
        builtin = tabnn_model("tabnn", tabnn_params or {}) if name == "tabnn" else None
        models.append(builtin or PEER_BUILDERS[name])
    return models + [tabnn_model(name, params) for name, params in variants]


# --- running -------------------------------------------------------------------------------


@dataclass
class Record:
    """One model on one dataset: per-fold scores and fit times, and their summaries."""

    dataset: str
    model: str
    metric: str
    rows: int
    classes: int
    fold_scores: list[float]
    fold_fit_seconds: list[float]
    fold_cpu_seconds: list[float]
    source: str = "this run"  # or the --merge file it came from
    # --calibrate: per fold, the test rows' log loss and ECE at T = 1 and at the fitted T
    fold_calibration: list[dict] = field(default_factory=list)
    # single-label: per fold, test rows with and without a training twin and how many of
    # each the model got right (see ``has_twin``)
    fold_twins: list[dict] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def fit_seconds(self) -> float:
        return float(np.sum(self.fold_fit_seconds))

    @property
    def cpu_seconds(self) -> float:
        return float(np.sum(self.fold_cpu_seconds))

    def to_json(self) -> dict:
        summary = {"mean": self.mean, "fit_seconds": self.fit_seconds}
        return {**asdict(self), **summary, "cpu_seconds": self.cpu_seconds}

    @classmethod
    def from_json(cls, data: dict, source: str) -> Record:
        fields = cls.__dataclass_fields__
        return cls(**{**{key: data[key] for key in fields if key in data}, "source": source})


def features_and_target(model: Model, dataset: Dataset):
    """What the model learns from: tabnn the table as read; a peer the table less the
    columns its rule drops, and the labels as codes (a 0/1 matrix for multi-label)."""
    if not model.peer:
        return dataset.X, dataset.y
    X = dataset.X.drop(columns=columns_peers_drop(dataset.X))
    if dataset.multilabel:
        return X, dataset.y.to_numpy()
    return X, LabelEncoder().fit_transform(dataset.y)


def twin_columns(X: pd.DataFrame) -> pd.DataFrame:
    """The columns a twin must match: the peers' columns less the keys (a column whose
    every value differs, such as titanic's PassengerId, makes every row unique)."""
    X = X.drop(columns=columns_peers_drop(X))
    return X[[column for column in X.columns if X[column].nunique(dropna=False) < len(X)]]


def has_twin(X: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per test row, whether a training row has exactly the same features (missing values
    equal to missing values): a row a tree or a nearest neighbour can answer by memory."""
    keys = pd.util.hash_pandas_object(twin_columns(X), index=False).to_numpy()
    return np.isin(keys[test], keys[train])


def twin_counts(twin: np.ndarray, correct: np.ndarray) -> dict:
    return {
        "twin_rows": int(twin.sum()),
        "twin_correct": int(correct[twin].sum()),
        "other_rows": int((~twin).sum()),
        "other_correct": int(correct[~twin].sum()),
    }


def rows_of(values, rows: np.ndarray):
    return values.iloc[rows] if isinstance(values, pd.Series | pd.DataFrame) else values[rows]


def timed_fit(estimator, X, y) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all the process's threads) of one fit."""
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return time.perf_counter() - wall, time.process_time() - cpu


def evaluate(model: Model, dataset: Dataset, folds) -> Record:
    X, y = features_and_target(model, dataset)
    record = Record(dataset.name, model.name, dataset.metric, len(X), dataset.n_classes, [], [], [])
    for fold, (train, test) in enumerate(folds, start=1):
        X_train, X_test = model.prepare(X.iloc[train], X.iloc[test])
        estimator = model.make(X_train, dataset.multilabel)
        wall, cpu = timed_fit(estimator, X_train, rows_of(y, train))
        predicted = estimator.predict(X_test)
        score = dataset.score(rows_of(y, test), predicted)
        if not dataset.multilabel:
            # ravel: CatBoost predicts multi-class labels as an (n, 1) column
            correct = np.asarray(rows_of(y, test)) == np.ravel(predicted)
            record.fold_twins.append(twin_counts(has_twin(dataset.X, train, test), correct))
        if getattr(estimator, "temperature_", None) is not None:  # tabnn, --calibrate
            record.fold_calibration.append(calibration_scores(estimator, X_test, rows_of(y, test)))
        record.fold_scores.append(score)
        record.fold_fit_seconds.append(wall)
        record.fold_cpu_seconds.append(cpu)
        say(
            f"{dataset.name:<13} {model.name:<14} fold {fold}/{len(folds)}  "
            f"fit {wall:7.2f}s  cpu {cpu:7.2f}s  {dataset.metric} {score:.3f}"
        )
    return record


def calibration_scores(estimator, X_test, y_test) -> dict:
    """One calibrated fit's test rows: log loss and expected calibration error (15 bins)
    of its probabilities at T = 1 (``before``) and at its fitted temperatures (``after``):
    the same network, so the difference is temperature scaling's alone."""
    from tabnn.estimator.calibration import expected_calibration_error, uncalibrated_proba
    from tabnn.evaluation.metrics import log_loss

    task = estimator.task_
    codes = estimator.schema_.encode_target(y_test)
    scores = {"temperature": [float(t) for t in estimator.temperature_]}
    for side, proba in (
        ("before", uncalibrated_proba(estimator, X_test)),
        ("after", estimator.predict_proba(X_test)),
    ):
        p = proba[:, 1] if task == "binary" else proba
        scores[f"log_loss_{side}"] = log_loss(codes, p, task)
        scores[f"ece_{side}"] = expected_calibration_error(codes, p, task)
    return scores


@dataclass
class Results:
    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def get(self, dataset: str, model: str) -> Record | None:
        return self.records.get((dataset, model))


def run_suite(datasets: list[str], models: list[Model], args, results: Results, save) -> None:
    for name in datasets:
        dataset = load_dataset(name, args.data_dir, args.max_rows)
        folds = make_folds(dataset, args.folds)
        for model in models:
            if not model.runs_on(name):
                say(f"{name:<13} {model.name:<14} not run on the multi-label set")
                continue
            try:
                results.records[(name, model.name)] = evaluate(model, dataset, folds)
            except Exception as error:  # one model failing must not lose the others
                say(traceback.format_exc())
                results.failures.append(f"{name} / {model.name}: {type(error).__name__}: {error}")
            save()


# --- --merge and --out ---------------------------------------------------------------------


def protocol_options(args) -> dict:
    return {"max_rows": args.max_rows, "folds": args.folds, "seed": SEED}


def load_merged(path: Path, args, computed: set[tuple[str, str]], datasets: list[str]):
    """Records of an earlier --out for this run's datasets and the pairs it does not
    compute. A file made under another protocol is refused: its numbers would not compare."""
    saved = json.loads(path.read_text())
    theirs = {key: saved["options"].get(key) for key in protocol_options(args)}
    if theirs != protocol_options(args):
        raise SystemExit(
            f"--merge {path}: made with {theirs}, this run uses {protocol_options(args)}"
        )
    merged = {}
    for data in saved["records"]:
        key = (data["dataset"], data["model"])
        if data["dataset"] in datasets and key not in computed:
            source = data.get("source", "this run")
            merged[key] = Record.from_json(data, str(path) if source == "this run" else source)
    return merged


def versions() -> dict:
    found = {"python": platform.python_version(), "scikit-learn": sklearn.__version__}
    for package in ("tabnn", "torch", "lightgbm", "catboost", "pandas", "numpy"):
        try:
            found[package] = __import__(package).__version__
        except ImportError:
            found[package] = None
    return found


def write_results(path: Path, args, variants: dict, results: Results) -> None:
    document = {
        "options": {
            **protocol_options(args),
            "datasets": args.datasets,
            "models": args.models,
            "variants": variants,
            "merge": str(args.merge) if args.merge else None,
            "cpus": os.cpu_count(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
        },
        "records": [record.to_json() for record in results.records.values()],
        "failures": results.failures,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


# --- report --------------------------------------------------------------------------------


def format_table(header: list[str], rows: list[list[str]], text_columns=(0,)) -> str:
    """Plain columns: the ``text_columns`` left-aligned, the others right-aligned."""
    widths = [max(len(str(line[i])) for line in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        aligned = (
            f"{cell:<{width}}" if i in text_columns else f"{cell:>{width}}"
            for i, (cell, width) in enumerate(zip(cells, widths))
        )
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def dataset_table(datasets: list[str], models: list[str], results: Results) -> str:
    """One row per dataset: rows, classes, each model's mean score and fit seconds."""
    rows = []
    for name in datasets:
        records = [results.get(name, model) for model in models]
        present = [record for record in records if record]
        if not present:
            continue
        best = max(record.mean for record in present)
        classes = f"{present[0].classes}" + (" lab" if present[0].metric == "micro-F1" else "")
        cells = [name, f"{present[0].rows}", classes]
        for record in records:
            if record is None:
                cells.append("-")
                continue
            mark = "*" if record.mean >= best - TIE else " "
            cells.append(f"{record.mean:.3f}{mark} {record.fit_seconds:7.1f}s")
        rows.append(cells)
    header = ["dataset", "rows", "classes", *models]
    return format_table(header, rows)


def mean_ranks(single: list[str], ranked: list[str], results: Results) -> dict[str, float]:
    """Mean over the datasets of each model's rank by score (1 = best, ties averaged)."""
    if not ranked or not single:
        return {}
    per_dataset = [
        rankdata([-results.get(name, model).mean for model in ranked]) for name in single
    ]
    return dict(zip(ranked, np.mean(per_dataset, axis=0)))


def against_baseline(model: str, single: list[str], results: Results) -> str:
    wins = ties = losses = 0
    for name in single:
        mine, theirs = results.get(name, model), results.get(name, BASELINE)
        if mine is None or theirs is None:
            continue
        difference = mine.mean - theirs.mean
        wins += difference > TIE
        losses += difference < -TIE
        ties += abs(difference) <= TIE
    return f"{wins}/{ties}/{losses}" if wins + ties + losses else "-"


def time_ratio(model: str, datasets: list[str], results: Results) -> str:
    """Fit seconds over LightGBM's, summed on the datasets both ran."""
    pairs = [(results.get(name, model), results.get(name, BASELINE)) for name in datasets]
    pairs = [(mine, theirs) for mine, theirs in pairs if mine and theirs]
    baseline_seconds = sum(theirs.fit_seconds for _, theirs in pairs)
    if not pairs or baseline_seconds == 0:
        return "-"
    return f"{sum(mine.fit_seconds for mine, _ in pairs) / baseline_seconds:.1f}x"


def summary_table(datasets: list[str], models: list[str], results: Results) -> str:
    single = [name for name in datasets if name != EMOTIONS]
    single = [name for name in single if any(results.get(name, model) for model in models)]
    ranked = [model for model in models if all(results.get(name, model) for name in single)]
    ranks = mean_ranks(single, ranked, results)
    rows = []
    for model in models:
        records = [results.get(name, model) for name in datasets]
        records = [record for record in records if record]
        scores = [record.mean for record in records if record.dataset != EMOTIONS]
        emotions = results.get(EMOTIONS, model)
        rows.append(
            [
                model,
                f"{len(scores)}/{len(single)}",
                f"{ranks[model]:.2f}" if model in ranks else "-",
                f"{np.mean(scores):.4f}" if scores else "-",
                against_baseline(model, single, results) if model != BASELINE else "",
                f"{sum(record.fit_seconds for record in records):.1f}",
                f"{sum(record.cpu_seconds for record in records):.1f}",
                time_ratio(model, datasets, results),
                f"{emotions.mean:.3f}" if emotions else "-",
            ]
        )
    header = [
        "model",
        "datasets",
        "mean rank",
        "mean acc",
        f"W/T/L vs {BASELINE}",
        "fit s",
        "cpu s",
        f"fit / {BASELINE}",
        "emotions F1",
    ]
    return format_table(header, rows)


def calibration_table(datasets: list[str], models: list[str], results: Results) -> str:
    """--calibrate: per dataset and model fitted with calibrate=True, the test log loss and
    ECE at T = 1 and at the fitted T (means over folds), the mean temperature, then each
    model's means over the datasets and on how many each measure improved."""
    rows, summary = [], []
    for model in models:
        means = []
        for name in datasets:
            record = results.get(name, model)
            if record is None or not record.fold_calibration:
                continue
            folds = record.fold_calibration
            keys = ["log_loss_before", "log_loss_after", "ece_before", "ece_after"]
            mean = {key: float(np.mean([fold[key] for fold in folds])) for key in keys}
            temperatures = np.concatenate([fold["temperature"] for fold in folds])
            means.append(mean)
            rows.append(
                [
                    name,
                    model,
                    f"{np.mean(temperatures):.3f}",
                    *(f"{mean[key]:.4f}" for key in keys),
                    f"{mean['log_loss_after'] - mean['log_loss_before']:+.4f}",
                    f"{mean['ece_after'] - mean['ece_before']:+.4f}",
                ]
            )
        if means:
            average = {key: float(np.mean([m[key] for m in means])) for key in means[0]}
            better_loss = sum(m["log_loss_after"] < m["log_loss_before"] for m in means)
            better_ece = sum(m["ece_after"] < m["ece_before"] for m in means)
            summary.append(
                [
                    f"mean of {len(means)}",
                    model,
                    "",
                    *(f"{average[key]:.4f}" for key in average),
                    f"{average['log_loss_after'] - average['log_loss_before']:+.4f}",
                    f"{average['ece_after'] - average['ece_before']:+.4f}",
                ]
            )
            summary.append(
                [
                    "improved on",
                    model,
                    "",
                    "",
                    f"{better_loss}/{len(means)}",
                    "",
                    f"{better_ece}/{len(means)}",
                    "",
                    "",
                ]
            )
    if not rows:
        return ""
    header = ["dataset", "model", "mean T", "log loss T=1", "log loss T", "ECE T=1", "ECE T",
              "d log loss", "d ECE"]  # fmt: skip
    note = (
        "Calibration (--calibrate): test folds' log loss and expected calibration error (15 "
        "equal-width bins; emotions: mean over labels) of the same fit at T = 1 and at the "
        "temperature(s) fitted on its validation rows; means over folds."
    )
    return note + "\n" + format_table(header, rows + summary, text_columns=(0, 1))


def twin_table(datasets: list[str], models: list[str], results: Results) -> str:
    """Per dataset with twins (test rows whose features a training row repeats exactly),
    their share of the test rows and each model's accuracy on rows with and without one."""
    rows = []
    for name in datasets:
        records = [results.get(name, model) for model in models]
        counts = next((r.fold_twins for r in records if r and r.fold_twins), None)
        if not counts or not sum(fold["twin_rows"] for fold in counts):
            continue
        twins = sum(fold["twin_rows"] for fold in counts)
        share = twins / (twins + sum(fold["other_rows"] for fold in counts))
        cells = [name, f"{share:.0%}"]
        for record in records:
            if record is None or not record.fold_twins:
                cells.append("-")
                continue
            total = {key: sum(fold[key] for fold in record.fold_twins) for key in counts[0]}
            other = total["other_correct"] / max(total["other_rows"], 1)
            cells.append(f"{total['twin_correct'] / total['twin_rows']:.3f} / {other:.3f}")
        rows.append(cells)
    if not rows:
        return ""
    note = (
        "Twins: test rows whose features (the peers' columns less keys) a training row "
        "repeats exactly; each model's accuracy on rows with a twin / without one."
    )
    return note + "\n" + format_table(["dataset", "twins", *models], rows)


def merged_note(results: Results) -> str:
    by_model: dict[str, list[str]] = {}
    for record in results.records.values():
        if record.source != "this run":
            by_model.setdefault(f"{record.model} (from {record.source})", []).append(record.dataset)
    if not by_model:
        return ""
    lines = ["Merged, not run now (their times are from that run):"]
    lines += [f"  {model}: {len(names)} datasets" for model, names in by_model.items()]
    return "\n".join(lines)


def print_report(datasets: list[str], models: list[str], args, results: Results) -> None:
    known = versions()
    print(
        f"Suite: {args.folds}-fold CV (seed {SEED}), tables capped at {args.max_rows:,} rows; "
        f"score = accuracy (emotions: micro-F1); fit s = wall seconds of fit summed over folds"
    )
    print(
        f"{os.cpu_count()} CPUs; "
        + ", ".join(f"{package} {version}" for package, version in known.items() if version)
    )
    note = merged_note(results)
    if note:
        print(note)
    print()
    print(dataset_table(datasets, models, results))
    print("\n* best score on the dataset (ties within 1e-9); 'lab' = labels of a multi-label set")
    print()
    print(summary_table(datasets, models, results))
    print(
        "\nmean rank and mean acc: single-label datasets; rank only for models that ran on all "
        f"of them. W/T/L: accuracy above/equal/below {BASELINE}'s. fit s, cpu s: all datasets."
    )
    twins = twin_table(datasets, models, results)
    if twins:
        print()
        print(twins)
    calibration = calibration_table(datasets, models, results)
    if calibration:
        print()
        print(calibration)
    if results.failures:
        print("\nFailed (see the tracebacks on stderr):")
        for failure in results.failures:
            print(f"  {failure}")


# --- --list --------------------------------------------------------------------------------


def label_of(name: str) -> str:
    if name == EMOTIONS:
        return f"last {EMOTIONS_LABELS} attributes"
    return next(spec.label for spec in TABLES if spec.name == name)


def list_datasets(datasets: list[str], args) -> None:
    """Load every dataset as the suite does and describe it; no training."""
    rows = []
    for name in datasets:
        dataset = load_dataset(name, args.data_dir, args.max_rows)
        capped = dataset.file_rows != len(dataset.X)
        rows.append(
            [
                name,
                f"{len(dataset.X)}" + ("*" if capped else " "),
                f"{dataset.X.shape[1]}",
                f"{len(string_columns(dataset.X))}",
                f"{int(dataset.X.isna().sum().sum())}",
                f"{dataset.n_classes}",
                "multi-label" if dataset.multilabel else "single-label",
                label_of(name),
                ", ".join(map(str, columns_peers_drop(dataset.X))) or "-",
            ]
        )
    header = ["dataset", "rows", "cols", "strings", "missing", "classes", "task", "label"]
    print(format_table([*header, "peers drop"], rows, text_columns=(0, 6, 7, 8)))
    print(f"\n* capped at {args.max_rows:,} rows (stratified subsample, seed {SEED})")


# --- command line --------------------------------------------------------------------------


def names_list(text: str, choices: list[str], what: str) -> list[str]:
    """A comma-separated choice of names ("all" = every one, "none" or "" = none)."""
    if text.strip() == "all":
        return list(choices)
    if text.strip() in ("", "none"):
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in choices]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; choose from: {', '.join(choices)}")
    return [name for name in choices if name in names]  # the suite's order


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="tabnn and its peers on every table in ../shared/data, one protocol.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--models", default="all", help=f"comma list of {BUILTIN_MODELS}, all or none"
    )
    parser.add_argument("--datasets", default="all", help="comma list (see --list)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a TabNNClassifier with these parameters, e.g. tabnn-k2='{\"n_members\": 2}'",
    )
    parser.add_argument("--max-rows", type=int, default=20_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write every record and the options (JSON)")
    parser.add_argument("--merge", type=Path, help="records of an earlier --out to fill in")
    parser.add_argument("--list", action="store_true", help="load and describe, no training")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fit tabnn (and its variants) with calibrate=True and report each dataset's test "
        "log loss and expected calibration error without and with temperature scaling",
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    datasets = names_list(args.datasets, DATASET_NAMES, "datasets")
    if args.list:
        list_datasets(datasets, args)
        return 0
    variants = dict(parse_variant(text) for text in args.variant)
    if args.calibrate:  # one fit gives both: the same network at T = 1 and at its T
        variants = {name: {**params, "calibrate": True} for name, params in variants.items()}
    models = select_models(
        names_list(args.models, BUILTIN_MODELS, "models"),
        list(variants.items()),
        {"calibrate": True} if args.calibrate else {},
    )
    results = Results()
    if args.merge:
        computed = {
            (name, model.name) for name in datasets for model in models if model.runs_on(name)
        }
        results.records.update(load_merged(args.merge, args, computed, datasets))
    if not models and not results.records:
        raise SystemExit("nothing to run: no models (see --models, --variant)")

    def save() -> None:
        if args.out:
            write_results(args.out, args, variants, results)

    run_suite(datasets, models, args, results, save)
    save()
    shown = [model.name for model in models]
    shown += sorted({model for _, model in results.records} - set(shown), key=model_order)
    print_report(datasets, sorted(shown, key=model_order), args, results)
    return 1 if results.failures else 0


def model_order(name: str) -> tuple[int, str]:
    """tabnn, its variants, then the peers in their usual order."""
    if name == "tabnn":
        return (0, "")
    if name in PEER_MODELS:
        return (2 + PEER_MODELS.index(name), "")
    return (1, name)


if __name__ == "__main__":
    sys.exit(main())
