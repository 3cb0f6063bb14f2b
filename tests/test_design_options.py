"""Every network option against every design (issue 21): an option either changes the
network the design trains (its layer is there and the predictions move) or is refused
before any data is read, naming the option, its value and the design; never ignored."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tabnn import compare
from tabnn.cli import app
from tabnn.errors import UsageError
from tabnn.estimator.classifier import TabNNClassifier
from tabnn.nn.ensemble import PeriodicEmbedding, PiecewiseLinearEmbedding
from tabnn.nn.mlp import StackedNorm

# the designs: the presets, explicit sizes, and explicit sizes made an efficient ensemble
DESIGNS = {
    "default": {},
    "wide": {"hidden": "wide"},
    "deep": {"hidden": "deep"},
    "mlp:8-4": {"hidden": [8, 4]},
    "mlp:8 x2": {"hidden": [8], "ensemble_size": 2},
    "mlp:8 periodic": {"hidden": [8], "numeric_embedding": "periodic"},
}
ENSEMBLES = {"default", "mlp:8 x2", "mlp:8 periodic"}  # the designs EnsembleMLP trains
# a value of each option that no design takes by itself
OPTIONS = [
    ("norm", "batch"),
    ("norm", "layer"),
    ("activation", "gelu"),
    ("dropout", 0.3),
    ("ensemble_size", 3),
    ("numeric_embedding", "periodic"),
    ("numeric_embedding", "ple"),
    ("scaling", "quantile"),
    ("missing_indicator", "never"),
    ("label_smoothing", 0.2),
    ("weight_decay", 0.5),
]
QUICK = {"epochs": 2, "batch_size": 16, "random_state": 0}


def table(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)}
    )
    X.loc[::7, "b"] = np.nan  # for the missing indicator
    y = np.where(X.a + (X.c == "x") > 0.3, "yes", "no")
    return X, y


def fitted(design: str, **option) -> TabNNClassifier:
    X, y = table()
    return TabNNClassifier(**{**QUICK, **DESIGNS[design], **option}).fit(X, y)


def refused(name, design) -> bool:
    return name == "norm" and design in ENSEMBLES


@pytest.fixture(scope="module")
def baselines():
    X, _ = table()
    return {design: fitted(design).predict_proba(X) for design in DESIGNS}


# every pair but a design's own setting (the periodic design with numeric_embedding)
PAIRS = [(d, n, v) for d in DESIGNS for n, v in OPTIONS if DESIGNS[d].get(n) != v]


@pytest.mark.parametrize(
    ("design", "name", "value"), PAIRS, ids=[f"{d}-{n}={v}" for d, n, v in PAIRS]
)
def test_an_option_changes_the_network_or_is_refused(baselines, design, name, value):
    if refused(name, design):
        with pytest.raises(UsageError) as error:
            fitted(design, **{name: value})
        shown = design.split()[0]  # the design as the message names it (mlp:8)
        assert all(word in str(error.value) for word in (f"'{name}'", f"'{value}'", shown))
        return
    estimator = fitted(design, **{name: value})
    modules = list(estimator.model_.modules())
    if name == "norm":
        assert any(isinstance(m, StackedNorm) and m.kind == value for m in modules)
    if name == "numeric_embedding":
        kind = PeriodicEmbedding if value == "periodic" else PiecewiseLinearEmbedding
        assert any(isinstance(m, kind) for m in modules)
    if name == "ensemble_size":
        assert estimator.model_.adapter.shape[1] == value
    X, _ = table()
    assert not np.array_equal(estimator.predict_proba(X), baselines[design])


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norm_with_an_ensemble_is_refused_before_the_data_is_read(norm):
    never_read = object()  # any read of X would fail on it with another message
    with pytest.raises(UsageError, match=f"'norm' .* '{norm}', .* design default"):
        TabNNClassifier(norm=norm).fit(never_read, [0, 1])


def test_the_plain_default_with_one_member_keeps_its_norm():
    estimator = fitted("default", norm="batch", ensemble_size=1)
    assert any(isinstance(m, StackedNorm) for m in estimator.model_.modules())


runner = CliRunner()
MISSING = str(Path("no-such-table.csv"))  # the refusal comes before any read


@pytest.mark.parametrize(
    "args",
    [
        ["train", MISSING, "--target", "y", "--norm", "batch"],
        ["train", MISSING, "--target", "y", "--norm", "layer", "--model", "default"],
        ["compare", MISSING, "--target", "y", "--models", "wide,default", "--norm", "batch"],
    ],
    ids=["train", "train-model-default", "compare"],
)
def test_the_command_line_refuses_norm_with_the_default_design(args, tmp_path):
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "'norm'" in message and "design default" in message
    assert not (tmp_path / "m").exists()


def test_compare_of_plain_designs_keeps_their_norm():
    X, y = table()
    result = compare(X, y, ["wide"], folds=2, epochs=2, batch_size=16, norm="batch")
    assert any(isinstance(m, StackedNorm) for m in result.estimator.model_.modules())
