"""``TabNNClassifier``: the scikit-learn face of tabnn.

It follows scikit-learn's contract (keyword-only ``__init__`` that only stores, all work in
``fit``, learned state ending in ``_``, ``check_is_fitted`` before inference), so it works
in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. It takes NumPy arrays and
mixed-type DataFrames (strings, missing values, unseen categories at predict time).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .errors import DataError, UsageError
from .evaluate import split_indices
from .model import ACTIVATIONS, NORMS, PRESETS, TabularMLP, build_config, probabilities
from .preprocess import MISSING_INDICATORS, SCALINGS, Preprocessor
from .schema import Schema, drop_missing_targets, infer_schema
from .train import Member, TensorData, TrainConfig, device_of, fit_stack, predict_logits


def _positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _number_in(low, high, *, closed_low=False, closed_high=False):
    def check(value) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        above = value >= low if closed_low else value > low
        below = value <= high if closed_high else value < high
        return above and below

    return check


# parameter -> (test, what it must be), checked once at the start of fit
_CONSTRAINTS = {
    "epochs": (_positive_int, "an int in the range [1, inf)"),
    "patience": (_positive_int, "an int in the range [1, inf)"),
    "n_members": (_positive_int, "an int in the range [1, inf)"),
    "batch_size": (lambda v: v == "auto" or _positive_int(v), "'auto' or an int >= 1"),
    "lr": (_number_in(0, np.inf), "a float in the range (0, inf)"),
    "weight_decay": (_number_in(0, np.inf, closed_low=True), "a float in the range [0, inf)"),
    "dropout": (_number_in(0, 1, closed_low=True), "a float in the range [0, 1)"),
    "validation_fraction": (
        _number_in(0, 1, closed_low=True),
        "a float in the range [0, 1)",
    ),
    "threshold": (_number_in(0, 1), "a float in the range (0, 1)"),
    "activation": (lambda v: v in ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}"),
    "norm": (lambda v: v in NORMS, f"one of {list(NORMS)}"),
    "scaling": (lambda v: v in SCALINGS, f"one of {list(SCALINGS)}"),
    "missing_indicator": (lambda v: v in MISSING_INDICATORS, f"one of {list(MISSING_INDICATORS)}"),
    "hidden": (
        lambda v: (
            v in PRESETS
            or (isinstance(v, list | tuple) and len(v) > 0 and all(_positive_int(s) for s in v))
        ),
        f"one of {list(PRESETS)} or a list of layer sizes",
    ),
    "class_weight": (
        lambda v: v is None or v == "balanced" or isinstance(v, dict),
        "None, 'balanced' or a dict {class: weight}",
    ),
    "task": (lambda v: v in (None, "binary", "multiclass", "multilabel"), "None or a task name"),
}


class TabNNClassifier(ClassifierMixin, BaseEstimator):
    """A PyTorch MLP classifier for tables: binary, multi-class and multi-label.

    Parameters
    ----------
    hidden : {"default", "wide", "deep"} or list of int, default="default"
        Hidden layer sizes, or a preset: ``wide`` one layer of 3 x the inputs, ``deep``
        three layers as wide as the inputs, ``default`` two layers of 256.
    activation : str, default="relu"
    dropout : float, default=0.1
    norm : {"none", "batch", "layer"}, default="none"
    epochs : int, default=200
        Upper bound; early stopping on validation loss usually ends sooner.
    batch_size : int or "auto", default="auto"
    lr, weight_decay : float, defaults 1e-3 and 1e-4 (AdamW)
    patience : int, default=20
        Epochs without a better validation loss before a member stops.
    validation_fraction : float, default=0.15
        Share of the training rows held out for early stopping (stratified). 0 trains for
        all ``epochs`` with no early stopping.
    class_weight : None, "balanced" or dict, default=None
    pos_weight : float or None, default=None
        Weight of the positive class in the binary loss (overrides ``class_weight``).
    threshold : float, default=0.5
        Decision threshold on P(positive) for binary tasks and on each label's probability
        for multi-label tasks.
    scaling : {"standard", "robust", "quantile"}, default="standard"
    missing_indicator : {"auto", "always", "never"}, default="auto"
    n_members : int, default=1
        Members trained together in one stack with seeds ``random_state + i``; their
        probabilities are averaged (an ensemble).
    categorical, numeric, drop : list of str or None
        Column kinds forced by the user (names as in the DataFrame, or "0".."n-1").
    task : {None, "binary", "multiclass", "multilabel"}, default=None
        Inferred from the target when None.
    random_state : int, default=0
    device : str, default="cpu"
        ``cpu``, ``cuda`` or ``auto``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from tabnn import TabNNClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TabNNClassifier(epochs=50).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(
        self,
        *,
        hidden="default",
        activation="relu",
        dropout=0.1,
        norm="none",
        epochs=200,
        batch_size="auto",
        lr=1e-3,
        weight_decay=1e-4,
        patience=20,
        validation_fraction=0.15,
        class_weight=None,
        pos_weight=None,
        threshold=0.5,
        scaling="standard",
        missing_indicator="auto",
        n_members=1,
        categorical=None,
        numeric=None,
        drop=None,
        task=None,
        random_state=0,
        device="cpu",
    ):
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.norm = norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.pos_weight = pos_weight
        self.threshold = threshold
        self.scaling = scaling
        self.missing_indicator = missing_indicator
        self.n_members = n_members
        self.categorical = categorical
        self.numeric = numeric
        self.drop = drop
        self.task = task
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, eval_set=None, on_epoch=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix / DataFrame for multi-label.
        eval_set : tuple (X_val, y_val), optional
            Validation rows for early stopping instead of ``validation_fraction``.
        on_epoch : callable, optional
            Called with each epoch's record (losses per member), e.g. for a progress bar.

        Returns
        -------
        self
        """
        self._validate_params()
        frame = self._frame(X, reset=True)
        target = self._target(y, len(frame))
        frame, target, self.n_dropped_targets_ = drop_missing_targets(frame, target)
        if len(frame) < 2:
            raise DataError(f"Training needs at least 2 rows; got {len(frame)} sample(s).")
        if eval_set is not None:
            val_frame = self._frame(eval_set[0], reset=False)
            val_target = self._target(eval_set[1], len(val_frame))
            val_frame, val_target, _ = drop_missing_targets(val_frame, val_target)
        schema = infer_schema(
            frame,
            target,
            drop=self.drop or (),
            categorical=self.categorical or (),
            numeric=self.numeric or (),
            task=self.task,
        )
        y_all = schema.encode_target(target)
        x_all = schema.check(frame)
        if eval_set is not None:
            train_rows = np.arange(len(frame))
            val_rows = np.arange(len(frame), len(frame) + len(val_frame))
            x_all = pd.concat([x_all, schema.check(val_frame)], ignore_index=True)
            y_all = np.concatenate([y_all, schema.encode_target(val_target)])
        else:
            train_rows, val_rows = self._validation_split(y_all, schema.task)
        self._fit_arrays(schema, x_all, y_all, train_rows, val_rows, on_epoch)
        return self

    def _validation_split(self, y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
        if self.validation_fraction == 0 or len(y) < 10:  # too few rows to hold any out
            return np.arange(len(y)), np.arange(0)
        train, val, _ = split_indices(
            y, task, val_size=self.validation_fraction, test_size=0.0, seed=self.random_state
        )
        return train, val

    def _fit_arrays(self, schema, x_all, y_all, train_rows, val_rows, on_epoch) -> None:
        prep = Preprocessor.fit(
            x_all.iloc[train_rows],
            schema.numeric,
            schema.categorical,
            scaling=self.scaling,
            missing_indicator=self.missing_indicator,
        )
        x_num, x_cat = prep.transform(x_all)
        n_outputs = 1 if schema.task == "binary" else len(schema.classes)
        config = build_config(
            prep,
            n_outputs,
            preset=self.hidden if isinstance(self.hidden, str) else list(self.hidden),
            activation=self.activation,
            dropout=self.dropout,
            norm=self.norm,
            n_members=self.n_members,
        )
        device = device_of(self.device)
        model = TabularMLP(config)
        for k in range(self.n_members):
            model.encoder.set_statistics(k, prep)
        model.to(device)
        data = TensorData.from_arrays(x_num, x_cat, y_all, device)
        seeds = [int(self.random_state or 0) + k for k in range(self.n_members)]
        members = [Member(train_rows, val_rows, seed) for seed in seeds]
        train_config = self._train_config(len(train_rows))
        weights = self._class_weights(schema, y_all[train_rows])
        self.history_ = fit_stack(
            model,
            data,
            members,
            schema.task,
            train_config,
            class_weight=None if weights is None else weights.to(device),
            on_epoch=on_epoch,
        )
        self._set_fitted(schema, prep, config, train_config, model.cpu())

    def _set_fitted(self, schema, prep, config, train_config, model) -> None:
        self.schema_ = schema
        self.preprocessor_ = prep
        self.model_config_ = config
        self.train_config_ = train_config
        self.model_ = model
        self.task_ = schema.task
        if schema.task == "multilabel":
            self.classes_ = np.arange(len(schema.classes))
        else:
            self.classes_ = np.asarray(schema.classes)

    def _train_config(self, n_train: int) -> TrainConfig:
        if self.batch_size == "auto":
            # small data learns better from small batches; large data needs throughput
            batch = 32 if n_train < 2_000 else 128 if n_train < 50_000 else 512
        else:
            batch = int(self.batch_size)
        return TrainConfig(
            epochs=int(self.epochs),
            batch_size=batch,
            lr=float(self.lr),
            weight_decay=float(self.weight_decay),
            patience=int(self.patience),
        )

    def _class_weights(self, schema: Schema, y: np.ndarray) -> torch.Tensor | None:
        """Loss weights: (w_neg, w_pos) for binary, per class for multi-class, per-label
        positive weights for multi-label."""
        task, n_classes = schema.task, len(schema.classes)
        if task == "binary" and self.pos_weight is not None:
            return torch.tensor([1.0, float(self.pos_weight)])
        if self.class_weight is None:
            return None
        if task == "multilabel":
            if self.class_weight != "balanced":
                raise UsageError("For multi-label targets class_weight must be None or 'balanced'.")
            positives = y.sum(0).clip(min=1)
            return torch.tensor((len(y) - positives) / positives, dtype=torch.float32)
        codes = y.astype(np.int64)
        if self.class_weight == "balanced":
            counts = np.bincount(codes, minlength=max(2, n_classes)).clip(min=1)
            return torch.tensor(len(codes) / (len(counts) * counts), dtype=torch.float32)
        labels = list(schema.classes)
        missing = [c for c in self.class_weight if c not in labels]
        if missing:
            raise UsageError(f"class_weight names unknown classes {missing}; classes: {labels}.")
        return torch.tensor([float(self.class_weight.get(c, 1.0)) for c in labels])

    # ------------------------------------------------------------- inputs
    def _validate_params(self) -> None:
        for name, (test, expected) in _CONSTRAINTS.items():
            value = getattr(self, name)
            if not test(value):
                raise UsageError(
                    f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
                    f"Got {value!r} instead."
                )

    def _frame(self, X, *, reset: bool) -> pd.DataFrame:
        """Any 2-D input -> a DataFrame with string column names; checks feature counts
        and names against fit time the way scikit-learn does."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}).")
            frame = X.copy()
            frame.columns = [str(c) for c in X.columns]
            return frame.reset_index(drop=True)
        array = check_array(X, dtype=None, ensure_all_finite="allow-nan")
        validate_data(self, array, reset=reset, skip_check_array=True)
        frame = pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])
        if array.dtype == object:  # numbers stored as objects become numeric columns
            for column in frame.columns:
                converted = pd.to_numeric(frame[column], errors="coerce")
                if converted.notna().sum() == frame[column].notna().sum():
                    frame[column] = converted
        return frame

    def _target(self, y, n_rows: int) -> pd.Series | pd.DataFrame:
        if isinstance(y, pd.DataFrame) and y.shape[1] > 1:
            target = y.reset_index(drop=True).copy()
            target.columns = [str(c) for c in target.columns]
            return target
        if isinstance(y, pd.Series | pd.DataFrame):
            values = y.squeeze(axis=1) if isinstance(y, pd.DataFrame) else y
            name = str(values.name) if values.name is not None else "target"
            values = values.reset_index(drop=True).rename(name)
        else:
            array = np.asarray(y)
            if array.ndim == 2 and array.shape[1] == 1:
                warnings.warn(
                    "A column-vector y was passed when a 1d array was expected; "
                    "it was flattened with ravel().",
                    DataConversionWarning,
                    stacklevel=3,
                )
                array = array.ravel()
            if array.ndim == 2:
                if type_of_target(array) != "multilabel-indicator":
                    raise ValueError("A 2-D y must be a 0/1 multi-label indicator matrix.")
                return pd.DataFrame(array, columns=[str(j) for j in range(array.shape[1])])
            check_classification_targets(array)
            values = pd.Series(array, name="target")
        if len(values) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(values)}.")
        return values

    # ------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        """Probabilities: (n, 2) for binary, (n, classes) for multi-class, (n, labels) of
        per-label probabilities for multi-label (as ``MLPClassifier``); averaged over
        members."""
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        proba = self._member_probabilities(frame).mean(0)
        if self.task_ == "binary":
            return np.column_stack([1 - proba[:, 0], proba[:, 0]])
        return proba

    def _member_probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        x_num, x_cat = self.preprocessor_.transform(self.schema_.check(frame))
        logits = predict_logits(self.model_, x_num, x_cat, torch.device("cpu"))
        return probabilities(logits, self.task_).numpy()

    def predict(self, X) -> np.ndarray:
        """Labels in their original values; a 0/1 matrix for multi-label."""
        proba = self.predict_proba(X)
        if self.task_ == "multilabel":
            return (proba >= self.threshold).astype(np.int64)
        if self.task_ == "binary":
            return self.classes_[(proba[:, 1] >= self.threshold).astype(int)]
        return self.classes_[proba.argmax(1)]

    def design_matrix(self, X) -> np.ndarray:
        """The preprocessed inputs with every categorical one-hot encoded: what the
        logistic-regression baseline is fitted on."""
        check_is_fitted(self)
        x_num, x_cat = self.preprocessor_.transform(self.schema_.check(self._frame(X, reset=False)))
        with torch.no_grad():
            matrix = self.model_.encoder.design_matrix(
                torch.as_tensor(x_num), torch.as_tensor(x_cat)
            )
        return matrix.numpy()
