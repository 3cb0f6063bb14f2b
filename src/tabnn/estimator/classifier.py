"""``TabNNClassifier``: the scikit-learn face of tabnn.

It follows scikit-learn's contract (keyword-only ``__init__`` that only stores, all work in
``fit``, learned state ending in ``_``, ``check_is_fitted`` before inference), so it works
in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. It takes NumPy arrays and
mixed-type DataFrames (strings, missing values, unseen categories at predict time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..engine.config import History, TrainConfig
from ..errors import DataError, UsageError
from ..features.frames import array_numeric, as_frame, as_target, column_names
from ..features.preprocess import EncodedInputs, Preprocessor
from ..features.schema import Schema, drop_missing_targets, infer_schema
from ..nn import memory
from ..nn.config import ModelConfig
from ..nn.forward import (
    check_finite,
    float64_network,
    mean_probabilities,
    member_probabilities,
)
from ..nn.network import TabularNetwork
from ..tasks import task_of_codes
from . import params
from .params import validate_params
from .recipe import Fitted, fit_recipe, in_memory


class TabNNClassifier(ClassifierMixin, BaseEstimator):
    """A PyTorch MLP classifier for tables: binary, multi-class and multi-label.

    Parameters
    ----------
    hidden : {"default", "wide", "deep"} or list of int, default="default"
        Hidden layer sizes, or a named design: ``default`` the efficient ensemble of the
        docs' "The default model" page (two shared layers of 128, ``ensemble_size`` members),
        ``wide`` one layer of 3 x the inputs, ``deep`` three layers as wide as the inputs.
    activation : str, default="relu"
    dropout, lr, epochs, batch_size : "auto" or a number, defaults "auto"
        ``auto`` is the design's setting. Plain designs: dropout 0.1, lr 1e-3, 200
        epochs, batches of 32 rows below 2,000, 128 below 50,000, else 512. The default
        design: no dropout; batches of about n/32 rows (a power of two in [32, 256]);
        lr 3e-3 x sqrt(batch / 256); with validation rows, epochs until the validation
        loss has not improved for ``patience`` epochs (at most 500), else about 750
        steps within [15, 200]. Early stopping on validation loss usually ends sooner
        than ``epochs``.
    lr_schedule : {"auto", "cosine", "constant"}, default="auto"
        After 3 epochs of linear warm-up, the learning rate stays constant or decays to 0
        over ``epochs`` (cosine). ``auto``: constant when the default design trains until
        patience ends it (``epochs="auto"`` with validation rows), else cosine.
    norm : {"none", "batch", "layer"}, default="none"
        Plain MLPs only: refused with an efficient ensemble (the default design).
    weight_decay : float, default=1e-4 (AdamW's decoupled decay)
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
        recall whose precision is at least P). See
        :func:`tabnn.estimator.threshold.tune_threshold`.
        Ignored for a numeric threshold.
    calibrate : bool, default=False
        Temperature scaling fitted on the validation rows after training (one per label for
        multi-label; ``"auto"`` thresholds are tuned after it): :mod:`tabnn.estimator.calibration`.
    scaling : {"auto", "standard", "robust", "quantile", "clipped"}, default="auto"
        ``clipped`` is robust scaling (median, IQR) followed by smooth clipping to
        (-3, 3); ``auto`` means ``clipped`` for the default design, else ``standard``.
    missing_indicator : {"auto", "always", "never"}, default="auto"
    n_members : int, default=1
        Members trained together in one stack with seeds ``random_state + i``; their
        probabilities are averaged (an ensemble).
    preset : {"fast", "best"}, default="fast"
        What the parameters left at ``"auto"`` mean: ``fast`` is one network; ``best``
        bags any design over 5 folds (``bagging=5``) and gives the default design
        piecewise-linear encodings of the numeric columns (``numeric_embedding="ple"``),
        for about 4.6x the fit time (docs/default-model.md: 0.9078 mean accuracy against
        0.9056). A parameter set explicitly overrides the preset's choice
        (``preset="best", bagging=None``: the encodings without the bag).
    bagging : int, None or "auto", default="auto"
        The preset's choice (``fast``: None, ``best``: 5), None for no bag, or ``k`` (at
        least 2): bag the network over ``k`` stratified folds of the training rows (seed
        ``random_state``), one stack of ``k`` members each trained on ``k - 1`` folds and
        stopped early on its own held-out fold, so every row trains and none is lost to a
        validation split (``validation_fraction`` is not used). A prediction is the mean
        of the fold members; ``oof_proba_`` holds each training row's out-of-fold
        probabilities, on which ``threshold="auto"`` and ``calibrate=True`` are fitted.
        ``n_members`` members per fold (each fold's seeds differ).
    twins : bool, default=True
        Whether the model may answer a row that a training row repeats exactly (its
        twin) partly with the twins' labels, as trees and nearest neighbours do
        (:mod:`tabnn.nn.twins`). The weight of the twins' answer is chosen on the
        held-out rows (the validation split, or a bag's out-of-fold rows) by ensemble
        selection on log loss; where it earns none (or fewer than 10 held-out rows have
        a twin) the model stores nothing. Where it earns a weight, **the model stores
        each distinct training row, encoded** (``twins_.rows`` of them): pass False to
        keep training rows out of the model. ``fit``, and ``fit_members`` given
        ``twin_rows``; not ``--stream``.
    ensemble_size : int or "auto", default="auto"
        Members of the efficient ensemble inside each network (TabM's BatchEnsemble: one
        shared MLP, a rank-1 adapter and a head per member; probabilities averaged);
        ``auto`` is 4 for the default design and 1 (a plain MLP) for the others.
    numeric_embedding : {"auto", "none", "periodic", "ple"}, default="auto"
        ``periodic``: each numeric column's learned-frequency embedding (RealMLP's PBLD)
        joins the first layer's inputs; ``ple``: its piecewise-linear encoding over 16
        quantile bins of each member's training rows, embedded in 8 units (TabM's PLE;
        not with ``--stream``); ``auto`` is ``none`` but for the default design under
        ``preset="best"`` (``ple``).
    label_smoothing : float, default=0.0 (target share moved to uniform in the loss)
    categorical, numeric, drop : list of str or None
        Column kinds forced by the user (names as in the DataFrame, or "0".."n-1" for
        arrays). Unforced DataFrame columns get their kind from the data; the number
        columns of an array are numeric.
    task : {None, "binary", "multiclass", "multilabel"}, default=None (inferred)
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
    model_ : TabularNetwork
        The trained stack of ``n_members`` networks, on the CPU (float32, as saved): an
        efficient ensemble (``EnsembleMLP``, the default design's) or, with
        ``ensemble_size`` 1 and no numeric embedding, a plain MLP (``TabularMLP``); both
        are ``tabnn.nn.network.TabularNetwork``.
    inference_model_ : TabularNetwork
        Its float64 copy, made once per fit or load, that predictions run (a row's
        probabilities must not depend on the rows beside it). It is not stored in pickles
        (rebuilt on unpickling); after changing ``model_``'s weights by hand, refit or
        save and load to predict with them.
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
    temperature_ : ndarray of shape (1,) or (n_labels,), or None
        What ``calibrate=True`` fitted (members' logits are divided by it); None if not.
    twins_ : tabnn.nn.twins.TwinMember or None
        The twin member and its ``weight``, where it earned one.
    twin_choice_ : dict or None
        What chose that weight: ``held_out_rows``, ``with_twin`` (held-out rows with a
        twin among the training rows), ``weight``, and the log loss of the network and
        of the blend on those rows; None when ``twins=False`` or nothing was held out.
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
        dropout="auto",
        norm="none",
        epochs="auto",
        lr_schedule="auto",
        batch_size="auto",
        lr="auto",
        weight_decay=1e-4,
        patience=20,
        validation_fraction=0.15,
        class_weight=None,
        pos_weight=None,
        threshold=0.5,
        threshold_metric="f1",
        calibrate=False,
        scaling="auto",
        missing_indicator="auto",
        n_members=1,
        preset="fast",
        bagging="auto",
        twins=True,
        ensemble_size="auto",
        numeric_embedding="auto",
        label_smoothing=0.0,
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
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.pos_weight = pos_weight
        self.threshold = threshold
        self.threshold_metric = threshold_metric
        self.calibrate = calibrate
        self.scaling = scaling
        self.missing_indicator = missing_indicator
        self.n_members = n_members
        self.preset = preset
        self.bagging = bagging
        self.twins = twins
        self.ensemble_size = ensemble_size
        self.numeric_embedding = numeric_embedding
        self.label_smoothing = label_smoothing
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
            get their kind from :func:`tabnn.features.schema.infer_schema`.
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
        with memory.out_of_memory_explained():
            return self._fit(X, y, eval_set, on_epoch)

    def _fit(self, X, y, eval_set, on_epoch) -> TabNNClassifier:
        frame, target = self._read_for_fit(X, y)
        frame, target, self.n_dropped_targets_ = drop_missing_targets(frame, target)
        if len(frame) < 2:
            raise DataError(f"Training needs at least 2 rows; got {len(frame)} sample(s).")
        bagging = params.bagging_of(self)
        if eval_set is not None and bagging:
            chosen = f" (preset={self.preset!r})" if self.bagging == "auto" else ""
            raise UsageError(
                f"bagging={bagging}{chosen} stops each member early on its own held-out "
                "fold; eval_set gives other validation rows. Pass bagging=None or leave "
                "out eval_set."
            )
        if eval_set is not None:
            val_frame = as_frame(self, eval_set[0], reset=False)
            val_target = as_target(eval_set[1], len(val_frame))
            val_frame, val_target, _ = drop_missing_targets(val_frame, val_target)
        schema = self._schema_of(X, frame, target)
        y_all = schema.encode_target(target)
        x_all = schema.check(frame)
        if eval_set is not None:
            train_rows = np.arange(len(frame))
            val_rows = np.arange(len(frame), len(frame) + len(val_frame))
            x_all = pd.concat([x_all, schema.check(val_frame)], ignore_index=True)
            y_all = np.concatenate([y_all, schema.encode_target(val_target)])
            rows = [(train_rows, val_rows)] * self.n_members  # seeds random_state + i
        elif bagging:
            folds = self.bagging_rows(y_all, schema)
            rows = [fold for fold in folds for _ in range(self.n_members)]
        else:
            rows = [self.validation_rows(y_all, schema.task)] * self.n_members
        twin_rows = np.arange(len(frame))  # not eval_set's rows
        self._fit_stack(schema, x_all, y_all, rows, on_epoch, twin_rows=twin_rows)
        return self

    def bagging_rows(self, y, schema: Schema) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (train, held-out) rows of each of ``bagging`` stratified folds of encoded
        labels ``y``, seeded by ``random_state``."""
        from ..data.splits import stratified_folds  # fit time only

        return stratified_folds(
            y, schema.task, n_splits=params.bagging_of(self), seed=params.seed_of(self),
            class_names=schema.classes,
        )  # fmt: skip

    # --------------------------------------------------- the member-level API
    # What compare (and tune, serve, distributed training) build on: the steps of fit, each
    # usable on its own, so that nothing outside this class needs its private members.

    def as_frames(self, X, y) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
        """X and y as ``fit`` reads them, missing labels kept.

        Checks the parameters and returns X as a DataFrame whose column names are
        strings, y as a Series of labels or a DataFrame of 0/1 label columns. Changes
        nothing on this estimator, fitted or not.
        """
        return clone(self)._read_for_fit(X, y)

    def _read_for_fit(self, X, y) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
        """``as_frames``, recording ``n_features_in_`` (and ``feature_names_in_``) as a
        fit does."""
        validate_params(self)
        params.check_memory(self)  # what any table needs: before the data is even read
        if y is None:
            raise UsageError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        frame = as_frame(self, X, reset=True)
        return frame, as_target(y, len(frame))

    def infer_schema(self, X, y) -> Schema:
        """The schema ``fit`` would infer from these rows (rows with a missing label are
        left out), with this estimator's column overrides and ``task``."""
        frame, target = self.as_frames(X, y)
        frame, target, _ = drop_missing_targets(frame, target)
        return self._schema_of(X, frame, target)

    def validation_rows(self, y, task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``fit`` trains on and stops early on, for encoded labels ``y``:
        a stratified ``validation_fraction`` split seeded by ``random_state`` (all rows
        train when the fraction is 0 or there are fewer than 10 rows). ``task`` defaults
        to the fitted task, else is read from ``y``'s shape."""
        y = np.asarray(y)
        task = task or getattr(self, "task_", None) or task_of_codes(y)
        if self.validation_fraction == 0 or len(y) < 10:  # too few rows to hold any out
            return np.arange(len(y)), np.arange(0)
        from ..data.splits import split_indices  # fit time only: predict needs no splits

        train, val, _ = split_indices(
            y, task, val_size=self.validation_fraction, test_size=0.0, seed=params.seed_of(self)
        )
        return train, val

    def fit_members(
        self, X, y, member_rows, *, schema=None, vocabulary_rows=None, on_epoch=None, own=None,
        twin_rows=None,
    ) -> TabNNClassifier:  # fmt: skip
        """Fit one stack whose member i learns from ``member_rows[i] = (train, val)``.

        The rows are positions into X; member i has seed ``random_state + i``. Its
        numeric statistics (medians, scaling) come from its own training rows only, so k
        folds as k members see no statistic of their held-out rows. The category
        vocabulary is shared, fitted on all members' training rows (or on
        ``vocabulary_rows``): a category that only occurs in a member's held-out rows
        gets a row its training never moves, just as an unknown category would, and no
        label information crosses folds. ``member_proba`` then gives each member's own
        probabilities; ``predict_proba`` their mean.

        Parameters
        ----------
        X, y : as for ``fit``; no label may be missing.
        member_rows : sequence of (train_rows, val_rows) integer arrays
        schema : Schema, optional
            Defaults to ``infer_schema(X, y)``; pass one to share it between stacks.
        vocabulary_rows : integer array, optional
        on_epoch : callable, optional
            Called after each epoch with its record; may return members to stop now.
        own : sequence of dict, optional
            Member i's own ``lr``, ``weight_decay``, ``label_smoothing`` and ``seed`` (the
            trials of a search), each overriding the estimator's.
        twin_rows : integer array, optional
            With ``twins=True``, the rows a twin member may remember, its weight chosen on
            the members' validation rows as ``fit`` chooses it (``compare --refit
            ensemble`` passes every training row, as a bag's ``fit`` does). None (the
            default): no twin member.

        Returns
        -------
        self
        """
        with memory.out_of_memory_explained():
            frame, target = self._read_for_fit(X, y)
            schema = schema if schema is not None else self._schema_of(X, frame, target)
            if drop_missing_targets(frame, target)[2]:
                raise DataError("fit_members needs a label for every row; some labels are missing.")
            y_all = schema.encode_target(target)
            x_all, rows = schema.check(frame), list(member_rows)
            self._fit_stack(
                schema, x_all, y_all, rows, on_epoch, vocabulary_rows, own, twin_rows=twin_rows
            )
        return self

    def encode(self, X) -> EncodedInputs:
        """The fitted network's input arrays for X (checked against the schema)."""
        check_is_fitted(self)
        if isinstance(X, EncodedInputs):
            return X
        x_num, x_cat = self.preprocessor_.transform(
            self.schema_.check(as_frame(self, X, reset=False))
        )
        # writable, since torch warns on read-only memory
        return EncodedInputs(
            np.require(x_num, requirements="W"), np.require(x_cat, requirements="W")
        )

    def member_proba(self, X) -> np.ndarray:
        """(members, rows, outputs) float64 probabilities of every member, for X or for
        inputs from ``encode``; binary tasks have one output, P(positive)."""
        inputs = (*self.encode(X), getattr(self, "temperature_", None))  # x_num, x_cat, T
        return check_finite(member_probabilities(self.inference_model_, self.task_, *inputs))

    def _schema_of(self, X, frame: pd.DataFrame, target) -> Schema:
        categorical, numeric, drop = map(column_names, (self.categorical, self.numeric, self.drop))
        return infer_schema(
            frame,
            target,
            drop=drop,
            categorical=categorical,
            numeric=numeric + array_numeric(X, frame, [*categorical, *numeric, *drop]),
            task=self.task,
        )

    def _fit_stack(
        self, schema, x_all, y_all, member_rows, on_epoch=None, vocabulary_rows=None,
        settings=None, twin_rows=None,
    ) -> None:  # fmt: skip
        """Train the stack ``fit_members`` describes, on checked rows and encoded labels."""
        training = in_memory(
            self, schema, x_all, y_all, member_rows, vocabulary_rows=vocabulary_rows,
            settings=settings, twin_rows=twin_rows,
        )  # fmt: skip
        self.fit_prepared(training, on_epoch)

    def fit_prepared(self, training, on_epoch=None) -> TabNNClassifier:
        """Fit on prepared training rows: a :class:`tabnn.estimator.recipe.TrainingData`,
        in memory or a stream. This is the one recipe that ``fit``, ``fit_members`` and
        ``tabnn train --stream`` share (``estimator.recipe.fit_recipe``).

        Returns
        -------
        self
        """
        validate_params(self)
        with memory.out_of_memory_explained():
            fitted = fit_recipe(self, training, on_epoch)
        self._set_fitted(fitted)  # only now: a refused threshold leaves no half-fit
        if training.feature_names is not None:
            self.n_features_in_ = len(training.feature_names)
            self.feature_names_in_ = np.asarray(training.feature_names, dtype=object)
        return self

    def _set_fitted(self, fitted: Fitted) -> None:
        self.schema_ = fitted.schema
        self.preprocessor_ = fitted.preprocessor
        self.model_config_ = fitted.model_config
        self.train_config_ = fitted.train_config
        self.model_ = fitted.model
        self.inference_model_ = fitted.network
        self.task_ = fitted.schema.task
        self.history_ = fitted.history
        self.threshold_, self.threshold_tuning_ = float(fitted.threshold), fitted.threshold_tuning
        self.temperature_ = fitted.temperature
        self.twins_, self.twin_choice_ = fitted.twins, fitted.twin_choice
        if fitted.out_of_fold is not None:
            self.oof_proba_ = fitted.out_of_fold
        classes = fitted.schema.classes
        multilabel = fitted.schema.task == "multilabel"
        self.classes_ = np.arange(len(classes)) if multilabel else np.asarray(classes)

    @classmethod
    def from_fitted(
        cls,
        params: dict,
        *,
        schema: Schema,
        preprocessor: Preprocessor,
        model_config: ModelConfig,
        train_config: TrainConfig,
        model: TabularNetwork,
        history: History,
        threshold: float,
        threshold_tuning: dict | None = None,
        temperature=None,
        twins=None,
        twin_choice=None,
        n_features_in: int,
        feature_names_in=None,
    ) -> TabNNClassifier:
        """A fitted estimator from its parts, as ``tabnn.load`` rebuilds one from a model
        directory: ``params`` are the constructor's, the rest the fitted state. It takes
        ``model`` over (moved to the CPU, in eval mode)."""
        restored = cls(**params)
        model = model.cpu().eval()
        temperature = None if temperature is None else np.asarray(temperature, float)
        restored._set_fitted(
            Fitted(schema, preprocessor, model_config, train_config, model,
                   float64_network(model), history, threshold, threshold_tuning, temperature,
                   twins=twins, twin_choice=twin_choice)
        )  # fmt: skip
        restored.n_features_in_ = int(n_features_in)
        if feature_names_in is not None:
            restored.feature_names_in_ = np.asarray(feature_names_in, dtype=object)
        return restored

    def __getstate__(self) -> dict:
        # the float64 copy doubles a pickle for nothing: it is rebuilt from model_
        state = dict(super().__getstate__())  # a copy: sklearn may hand out __dict__ itself
        state.pop("inference_model_", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "model_" in state:
            self.inference_model_ = float64_network(self.model_)

    # ------------------------------------------------------------ predict
    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (float64): (n, 2) for binary, (n, classes) for multi-class,
        (n, labels) of per-label probabilities for multi-label (as ``MLPClassifier``);
        averaged over members, with the twin member's answer blended in on rows that
        have a twin (``twins_``). Safe to call from several threads at once."""
        inputs = self.encode(X)
        proba = mean_probabilities(self.member_proba(inputs), self.task_)
        twins = getattr(self, "twins_", None)  # a model fitted before twins existed: None
        return proba if twins is None else twins.blend(proba, *inputs)

    def predict(self, X) -> np.ndarray:
        """Labels in their original values; a 0/1 matrix for multi-label. Binary and
        multi-label predictions apply ``threshold_``."""
        proba = self.predict_proba(X)
        if self.task_ == "multilabel":
            return (proba >= self.threshold_).astype(np.int64)
        if self.task_ == "binary":
            return self.classes_[(proba[:, 1] >= self.threshold_).astype(int)]
        return self.classes_[proba.argmax(1)]

    def design_matrix(self, X, member: int = 0) -> np.ndarray:
        """The preprocessed inputs with every categorical one-hot encoded, for X or for
        inputs from ``encode``, with member ``member``'s numeric statistics: what the
        logistic-regression baseline is fitted on."""
        x_num, x_cat = self.encode(X)
        with torch.no_grad():
            matrix = self.model_.encoder.design_matrix(
                torch.as_tensor(x_num), torch.as_tensor(x_cat), member=member
            )
        return matrix.numpy()
