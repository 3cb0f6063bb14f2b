"""``TabNNClassifier``: the scikit-learn face of tabnn.

It follows scikit-learn's contract (keyword-only ``__init__`` that only stores, all work in
``fit``, learned state ending in ``_``, ``check_is_fitted`` before inference), so it works
in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. It takes NumPy arrays and
mixed-type DataFrames (strings, missing values, unseen categories at predict time).
"""

from __future__ import annotations

import copy
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
from .evaluate import parse_threshold_metric, split_indices, tune_threshold
from .model import ACTIVATIONS, NORMS, PRESETS, TabularMLP, build_config, probabilities
from .preprocess import MISSING_INDICATORS, SCALINGS, Preprocessor
from .schema import Schema, drop_missing_targets, infer_schema
from .train import Member, TensorData, TrainConfig, device_of, fit_stack, predict_logits


def _int_in(low, high=np.inf):
    def check(value) -> bool:
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return integral and low <= value <= high

    return check


_positive_int = _int_in(1)


def _number_in(low, high, *, closed_low=False, closed_high=False):
    def check(value) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        above = value >= low if closed_low else value > low
        below = value <= high if closed_high else value < high
        return above and below

    return check


def _one_of(choices):
    return lambda value: isinstance(value, str) and value in choices


def _column_list(value) -> bool:
    names = [value] if isinstance(value, str) else value
    return value is None or (
        isinstance(names, list | tuple)
        and all(isinstance(n, str | numbers.Integral) for n in names)
    )


def _hidden(value) -> bool:
    if isinstance(value, str):
        return value in PRESETS
    return isinstance(value, list | tuple) and len(value) > 0 and all(map(_positive_int, value))


def _class_weight(value) -> bool:
    if value is None or value == "balanced":
        return True
    weight = _number_in(0, np.inf, closed_low=True)
    return isinstance(value, dict) and all(weight(w) for w in value.values())


def _threshold_metric(value) -> bool:
    parse_threshold_metric(value)  # raises a ValueError for anything else
    return True


def _device(value) -> bool:
    return isinstance(value, str) and (
        value in ("auto", "cpu", "cuda") or value.startswith("cuda:")
    )


_POSITIVE_INT = (_positive_int, "an int in the range [1, inf)")
_FRACTION = (_number_in(0, 1, closed_low=True), "a float in the range [0, 1)")
_COLUMNS = (_column_list, "None or a list of column names")

# parameter -> (test, what it must be), checked once at the start of fit
_CONSTRAINTS = {
    "hidden": (_hidden, f"one of {list(PRESETS)} or a non-empty list of positive ints"),
    "activation": (_one_of(ACTIVATIONS), f"one of {sorted(ACTIVATIONS)}"),
    "dropout": _FRACTION,
    "norm": (_one_of(NORMS), f"one of {list(NORMS)}"),
    "epochs": _POSITIVE_INT,
    "batch_size": (
        lambda v: (isinstance(v, str) and v == "auto") or _positive_int(v),
        "'auto' or an int in the range [1, inf)",
    ),
    "lr": (_number_in(0, np.inf), "a float in the range (0, inf)"),
    "weight_decay": (_number_in(0, np.inf, closed_low=True), "a float in the range [0, inf)"),
    "patience": _POSITIVE_INT,
    "validation_fraction": _FRACTION,
    "class_weight": (_class_weight, "None, 'balanced' or a dict {class: weight >= 0}"),
    "pos_weight": (
        lambda v: v is None or _number_in(0, np.inf)(v),
        "None or a float in the range (0, inf)",
    ),
    "threshold": (
        lambda v: (isinstance(v, str) and v == "auto") or _number_in(0, 1)(v),
        "'auto' or a float in the range (0, 1)",
    ),
    "threshold_metric": (
        _threshold_metric,
        "one of ['f1', 'balanced_accuracy', 'mcc'] or 'recall>=R' / 'precision>=P' with "
        "R, P in (0, 1]",
    ),
    "scaling": (_one_of(SCALINGS), f"one of {list(SCALINGS)}"),
    "missing_indicator": (_one_of(MISSING_INDICATORS), f"one of {list(MISSING_INDICATORS)}"),
    "n_members": _POSITIVE_INT,
    "categorical": _COLUMNS,
    "numeric": _COLUMNS,
    "drop": _COLUMNS,
    "task": (
        lambda v: v is None or _one_of(("binary", "multiclass", "multilabel"))(v),
        "None or one of ['binary', 'multiclass', 'multilabel']",
    ),
    "random_state": (
        lambda v: v is None or _int_in(0, 2**32 - 1)(v),
        "None or an int in the range [0, 4294967295]",
    ),
    "device": (_device, "'auto', 'cpu', 'cuda' or 'cuda:<index>'"),
}


def _names(value) -> list[str]:
    """A column option (None, one name or a list) -> a list of str names."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _array_numeric(X, frame: pd.DataFrame, named: list[str]) -> list[str]:
    """Number columns of a non-DataFrame input, bar those the user named: numeric
    features, as in any scikit-learn estimator (the table rules that drop ID-like columns
    and embed few-valued integers are meant for DataFrames)."""
    if isinstance(X, pd.DataFrame):
        return []
    return [
        name
        for name in frame.columns
        if pd.api.types.is_numeric_dtype(frame[name].dtype)
        and not pd.api.types.is_bool_dtype(frame[name].dtype)
        and name not in named
    ]


def _reject_infinity(values: np.ndarray) -> None:
    if np.isinf(values).any():
        raise DataError(
            "Input y contains infinity; expected class labels (NaN marks a missing label)."
        )


def _array_target(array: np.ndarray) -> pd.Series | pd.DataFrame:
    """A NumPy y -> Series of labels, or a DataFrame for a 0/1 indicator matrix."""
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; "
            "it was flattened with ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        array = array.ravel()
    if array.dtype.kind == "f":
        _reject_infinity(array)
    if array.ndim == 2:
        kind = type_of_target(np.where(pd.isna(array), 0, array))
        if kind != "multilabel-indicator":
            raise DataError(
                f"A 2-D y must be a 0/1 multi-label indicator matrix; got {kind!r} targets. "
                f"Multi-output targets are not supported."
            )
        return pd.DataFrame(array, columns=[str(j) for j in range(array.shape[1])])
    if array.ndim != 1:
        raise DataError(
            f"y should be a 1d array of labels or a 2-D 0/1 indicator matrix; "
            f"got shape {array.shape}."
        )
    try:
        check_classification_targets(array[~pd.isna(array)])
    except ValueError as error:
        raise DataError(str(error)) from error
    return pd.Series(array, name="target")


def _probabilities_of(model, task: str, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
    """(members, rows, outputs) float64 probabilities of a CPU model, on a float64 copy."""
    logits = predict_logits(copy.deepcopy(model).double(), x_num, x_cat, torch.device("cpu"))
    return probabilities(logits, task).numpy()


def _validation_union(member_rows) -> np.ndarray:
    """Every row some member validates on, sorted."""
    return np.unique(np.concatenate([val for _, val in member_rows]))


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
    threshold : float or "auto", default=0.5
        Decision threshold on P(positive) for binary tasks and on each label's probability
        for multi-label tasks. ``"auto"`` (binary only) chooses it after training on the
        validation rows, the rows early stopping watches (``eval_set`` or the
        ``validation_fraction`` split), never on other rows: see ``threshold_metric``.
        Unlike scikit-learn's ``FixedThresholdClassifier``, where ``"auto"`` means 0.5,
        here it means tuned, as ``TunedThresholdClassifierCV`` with a single split.
        With ``n_members > 1`` each validation row's probability is the mean over the
        members that held it out (all of them for an ensemble, its own fold's member
        for ``compare``'s fold stacks). A threshold set after fit takes effect at the
        next fit, as any parameter.
    threshold_metric : str, default="f1"
        What ``threshold="auto"`` optimises on the validation rows: ``"f1"``,
        ``"balanced_accuracy"``, ``"mcc"``, ``"recall>=R"`` (the highest precision whose
        recall is at least R, e.g. ``"recall>=0.9"``) or ``"precision>=P"`` (the highest
        recall whose precision is at least P). See :func:`tabnn.evaluate.tune_threshold`.
        Ignored for a numeric threshold.
    scaling : {"standard", "robust", "quantile"}, default="standard"
    missing_indicator : {"auto", "always", "never"}, default="auto"
    n_members : int, default=1
        Members trained together in one stack with seeds ``random_state + i``; their
        probabilities are averaged (an ensemble).
    categorical, numeric, drop : list of str or None
        Column kinds forced by the user (names as in the DataFrame, or "0".."n-1" for
        arrays). Unforced DataFrame columns get their kind from the data; the number
        columns of an array are numeric.
    task : {None, "binary", "multiclass", "multilabel"}, default=None
        Inferred from the target when None.
    random_state : int or None, default=0
        Seeds the validation split, weight initialisation, shuffling and dropout; the
        same seed gives the same model on CPU. None means 0.
    device : str, default="cpu"
        ``cpu``, ``cuda`` (or ``cuda:<index>``) or ``auto``.

    Attributes
    ----------
    classes_ : ndarray
        The original labels; ``arange(n_labels)`` for multi-label (label names are in
        ``schema_.classes``).
    task_ : {"binary", "multiclass", "multilabel"}
    schema_ : Schema
        Feature kinds, dropped columns (with reasons), task and classes.
    preprocessor_ : Preprocessor
    model_ : TabularMLP
        The trained stack of ``n_members`` networks, on the CPU.
    history_ : History
        Per-epoch losses and each member's best epoch.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    n_dropped_targets_ : int
        Training rows dropped because their label was missing.
    threshold_ : float
        The decision threshold ``predict`` applies: ``threshold`` itself, or the one
        chosen on validation rows (scikit-learn's ``best_threshold_``).
    threshold_tuning_ : dict or None
        How ``threshold="auto"`` chose it: ``metric``, ``score`` (scikit-learn's
        ``best_score_``), validation ``precision`` and ``recall``, ``rows``, ``members``
        and ``members_per_row`` (how many members scored each validation row, on
        average); None for a fixed threshold.

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
        threshold_metric="f1",
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
        self.threshold_metric = threshold_metric
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

    def __sklearn_is_fitted__(self) -> bool:
        # n_features_in_ is set before the network trains, so a failed fit must not count
        return hasattr(self, "model_")

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, eval_set=None, on_epoch=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Columns of a numeric array are numeric features (name a column in
            ``categorical`` to embed it instead); DataFrame and object-array columns
            get their kind from :func:`tabnn.schema.infer_schema`.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix / DataFrame for multi-label. Rows
            whose label is missing (NaN, None) are dropped (``n_dropped_targets_``).
        eval_set : tuple (X_val, y_val), optional
            Validation rows for early stopping instead of ``validation_fraction``.
        on_epoch : callable, optional
            Called with each epoch's record (losses per member), e.g. for a progress bar.

        Returns
        -------
        self
        """
        self._validate_params()
        if y is None:
            raise UsageError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        frame = self._frame(X, reset=True)
        target = self._target(y, len(frame))
        frame, target, self.n_dropped_targets_ = drop_missing_targets(frame, target)
        if len(frame) < 2:
            raise DataError(f"Training needs at least 2 rows; got {len(frame)} sample(s).")
        if eval_set is not None:
            val_frame = self._frame(eval_set[0], reset=False)
            val_target = self._target(eval_set[1], len(val_frame))
            val_frame, val_target, _ = drop_missing_targets(val_frame, val_target)
        schema = self._infer_schema(X, frame, target)
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

    def _infer_schema(self, X, frame: pd.DataFrame, target) -> Schema:
        categorical, numeric, drop = map(_names, (self.categorical, self.numeric, self.drop))
        return infer_schema(
            frame,
            target,
            drop=drop,
            categorical=categorical,
            numeric=numeric + _array_numeric(X, frame, [*categorical, *numeric, *drop]),
            task=self.task,
        )

    @property
    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _validation_split(self, y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
        if self.validation_fraction == 0 or len(y) < 10:  # too few rows to hold any out
            return np.arange(len(y)), np.arange(0)
        train, val, _ = split_indices(
            y, task, val_size=self.validation_fraction, test_size=0.0, seed=self._seed
        )
        return train, val

    def _fit_arrays(self, schema, x_all, y_all, train_rows, val_rows, on_epoch) -> None:
        """``n_members`` members on the same rows, with seeds random_state + i."""
        rows = [(train_rows, val_rows)] * self.n_members
        self._fit_members(schema, x_all, y_all, rows, on_epoch)

    def _fit_members(
        self, schema, x_all, y_all, member_rows, on_epoch=None, vocabulary_rows=None
    ) -> None:
        """Train one stack whose member i learns from ``member_rows[i] = (train, val)``
        with seed random_state + i, and keep it as this estimator's model.

        Each member's numeric statistics (medians, scaling) come from its own training
        rows only, so k folds as k members see no statistic of their held-out rows. The
        category vocabulary is shared, fitted on all members' training rows: a category
        that only occurs in a member's held-out rows gets a row its training never moves,
        just as an unknown category would, and no label information crosses folds.
        ``vocabulary_rows`` (default: that union) fits the shared vocabulary instead.
        """
        self._check_threshold_tuning(schema, y_all, member_rows)
        union = np.unique(np.concatenate([train for train, _ in member_rows]))
        vocabulary_rows = union if vocabulary_rows is None else vocabulary_rows
        shared = self._preprocessor(schema, x_all.iloc[vocabulary_rows])
        x_num, x_cat = shared.transform(x_all)
        n_outputs = 1 if schema.task == "binary" else len(schema.classes)
        config = build_config(
            shared,
            n_outputs,
            preset=self.hidden if isinstance(self.hidden, str) else list(self.hidden),
            activation=self.activation,
            dropout=self.dropout,
            norm=self.norm,
            n_members=len(member_rows),
        )
        device = device_of(self.device)
        model = TabularMLP(config)
        for k, (train, _) in enumerate(member_rows):
            same = np.array_equal(np.sort(train), vocabulary_rows)  # an ensemble: no refit
            own = shared if same else self._preprocessor(schema, x_all.iloc[train])
            model.encoder.set_statistics(k, own)
        model.to(device)
        data = TensorData.from_arrays(x_num, x_cat, y_all, device)
        members = [Member(tr, va, self._seed + k) for k, (tr, va) in enumerate(member_rows)]
        train_config = self._train_config(len(member_rows[0][0]))
        weights = self._class_weights(schema, y_all[union])
        self.history_ = fit_stack(
            model,
            data,
            members,
            schema.task,
            train_config,
            class_weight=None if weights is None else weights.to(device),
            on_epoch=on_epoch,
        )
        model = model.cpu()
        # chosen before anything is marked fitted, so a threshold that cannot be found
        # leaves no half-fitted estimator behind
        threshold, tuning = self._choose_threshold(model, x_num, x_cat, y_all, member_rows)
        self._set_fitted(schema, shared, config, train_config, model)
        self.threshold_, self.threshold_tuning_ = threshold, tuning

    def _check_threshold_tuning(self, schema: Schema, y_all: np.ndarray, member_rows) -> None:
        """Refuse threshold='auto' before any training when it cannot work here."""
        if self.threshold != "auto":
            return
        if schema.task != "binary":
            raise UsageError(
                f"threshold='auto' tunes the decision threshold of a binary target; this "
                f"target is {schema.task}. Leave the threshold out or pass a number."
            )
        validation = _validation_union(member_rows)
        if len(validation) == 0:
            raise UsageError(
                "threshold='auto' chooses the threshold on the validation rows, but this fit "
                "has none (validation_fraction=0, or fewer than 10 rows). Give some "
                "validation rows or pass a number."
            )
        present = np.unique(y_all[validation])
        if len(present) < 2:
            raise DataError(
                f"threshold='auto' needs both classes among the {len(validation)} validation "
                f"rows, which hold only {schema.classes[int(present[0])]!r}. Use more rows "
                f"for validation or pass a number."
            )

    def _choose_threshold(self, model, x_num, x_cat, y_all, member_rows) -> tuple:
        """The decision threshold and how it was tuned (None when fixed).

        For threshold='auto', each validation row is scored by the members that held it
        out (its mean over them), so no row is scored by a member that trained on it: the
        ensemble's averaged probability when members share their validation rows, each
        fold's own member when they do not.
        """
        if self.threshold != "auto":
            return float(self.threshold), None
        rows = _validation_union(member_rows)
        proba = _probabilities_of(model, "binary", x_num[rows], x_cat[rows])[..., 0]
        held_out = np.stack([np.isin(rows, val) for _, val in member_rows])
        pooled = (proba * held_out).sum(0) / held_out.sum(0)  # (members, rows) -> (rows,)
        try:
            tuning = tune_threshold(y_all[rows], pooled, self.threshold_metric)
        except DataError as error:
            raise DataError(f"Tuning the threshold on the validation rows: {error}") from None
        threshold = tuning.pop("threshold")
        per_row = float(held_out.sum(0).mean())
        return threshold, {**tuning, "members": len(member_rows), "members_per_row": per_row}

    def _preprocessor(self, schema: Schema, frame: pd.DataFrame) -> Preprocessor:
        return Preprocessor.fit(
            frame,
            schema.numeric,
            schema.categorical,
            scaling=self.scaling,
            missing_indicator=self.missing_indicator,
        )

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
        if self.pos_weight is not None:
            if task != "binary":
                raise UsageError(
                    f"pos_weight applies to binary targets; this target is {task}. "
                    "Use class_weight='balanced' instead."
                )
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
            try:
                valid = bool(test(value))
            except (TypeError, ValueError):  # unhashable or array-valued parameters
                valid = False
            if not valid:
                raise UsageError(
                    f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
                    f"Got {value!r} instead."
                )

    def _frame(self, X, *, reset: bool) -> pd.DataFrame:
        """Any 2-D input -> a DataFrame with the column names the schema uses; checks
        feature counts and names against fit time the way scikit-learn does."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise DataError(f"Found array with 0 sample(s) (shape={X.shape}).")
            frame = X.reset_index(drop=True)
            frame.columns = self._frame_columns([str(c) for c in X.columns], reset)
            return frame
        try:
            array = check_array(X, dtype=None, ensure_all_finite="allow-nan")
        except ValueError as error:
            raise DataError(str(error)) from error
        validate_data(self, array, reset=reset, skip_check_array=True)
        names = [str(i) for i in range(array.shape[1])]
        if not reset and hasattr(self, "feature_names_in_"):
            names = [str(c) for c in self.feature_names_in_]  # a DataFrame-fitted model
        frame = pd.DataFrame(array, columns=names)
        if array.dtype == object:  # numbers stored as objects become numeric columns
            for column in frame.columns:
                converted = pd.to_numeric(frame[column], errors="coerce")
                if converted.notna().sum() == frame[column].notna().sum():
                    frame[column] = converted
        return frame

    def _frame_columns(self, names: list[str], reset: bool) -> list[str]:
        """A model fitted on an array reads a DataFrame's columns by position (scikit-learn
        has warned about the names by then)."""
        if reset or hasattr(self, "feature_names_in_") or not hasattr(self, "schema_"):
            return names
        if set(self.schema_.features) <= set(names):
            return names
        return [str(i) for i in range(len(names))]

    def _target(self, y, n_rows: int) -> pd.Series | pd.DataFrame:
        """y as a Series (or a DataFrame of label columns); missing labels stay missing
        for ``drop_missing_targets``."""
        if isinstance(y, pd.DataFrame) and y.shape[1] > 1:
            target = y.reset_index(drop=True)
            target.columns = [str(c) for c in target.columns]
        elif isinstance(y, pd.Series | pd.DataFrame):
            values = y.squeeze(axis=1) if isinstance(y, pd.DataFrame) else y
            name = str(values.name) if values.name is not None else "target"
            target = values.reset_index(drop=True).rename(name)
        else:
            target = _array_target(np.asarray(y))
        if len(target) != n_rows:
            raise DataError(
                f"Found input variables with inconsistent numbers of samples: X has {n_rows} "
                f"rows but y has {len(target)}."
            )
        _reject_infinity(pd.DataFrame(target).select_dtypes("number").to_numpy(np.float64))
        return target

    # ------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (float64): (n, 2) for binary, (n, classes) for multi-class,
        (n, labels) of per-label probabilities for multi-label (as ``MLPClassifier``);
        averaged over members."""
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        proba = self._member_probabilities(frame).mean(0)
        if self.task_ == "binary":
            return np.column_stack([1 - proba[:, 0], proba[:, 0]])
        return proba

    def _member_probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """(members, rows, outputs) float64 probabilities. The network runs in float64
        too: float32 matmuls and activations round differently with the number of rows,
        and a row's probabilities must not depend on which rows come with it."""
        return self._member_probabilities_of(*self._inputs(frame))

    def _member_probabilities_of(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        """As ``_member_probabilities``, from the model's input arrays."""
        return _probabilities_of(self.model_, self.task_, x_num, x_cat)

    def _inputs(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The model's input arrays; writable, since torch warns on read-only memory."""
        x_num, x_cat = self.preprocessor_.transform(self.schema_.check(frame))
        return np.require(x_num, requirements="W"), np.require(x_cat, requirements="W")

    def predict(self, X) -> np.ndarray:
        """Labels in their original values; a 0/1 matrix for multi-label. Binary and
        multi-label predictions apply ``threshold_``."""
        proba = self.predict_proba(X)
        if self.task_ == "multilabel":
            return (proba >= self.threshold_).astype(np.int64)
        if self.task_ == "binary":
            return self.classes_[(proba[:, 1] >= self.threshold_).astype(int)]
        return self.classes_[proba.argmax(1)]

    def design_matrix(self, X) -> np.ndarray:
        """The preprocessed inputs with every categorical one-hot encoded: what the
        logistic-regression baseline is fitted on."""
        check_is_fitted(self)
        x_num, x_cat = self._inputs(self._frame(X, reset=False))
        with torch.no_grad():
            matrix = self.model_.encoder.design_matrix(
                torch.as_tensor(x_num), torch.as_tensor(x_cat)
            )
        return matrix.numpy()
