"""Sizes too large for memory (issue 20, item 9): every size parameter (members, layer
widths, batch size, epochs, a comparison's folds x repeats, a search's trials per stack) is
weighed against the memory there is from the sizes alone, before anything is allocated,
and refused in one line naming the parameter, its value, the memory needed and the memory
there is; a MemoryError that happens anyway says what to do.

The refusals are proved allocation-free by running them under a data-segment limit
(``ulimit -d``) that any real allocation of their size would break."""

import resource
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import assert_fails, invoke, snapshot

from tabnn import TabNNClassifier
from tabnn.errors import ModelError, OutOfMemoryError, UsageError
from tabnn.features.preprocess import Preprocessor
from tabnn.nn import memory
from tabnn.nn.config import ModelConfig, build_config
from tabnn.nn.ensemble import build_network
from tabnn.nn.mlp import TabularMLP
from tabnn.nn.size import parameter_count

GIB = 1 << 30


def table(rows: int = 40, columns: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(rows, columns)), columns=[f"x{i}" for i in range(columns)]
    )
    frame["y"] = np.where(frame["x0"] > 0, "yes", "no")
    return frame


@pytest.fixture
def small_budget(monkeypatch):
    """A machine of 1 GB, whatever this one has."""
    budget = memory.Budget(10**9, "the test's memory")
    monkeypatch.setattr(memory, "available", lambda device="cpu": budget)


@contextmanager
def data_limit(room: int = GIB):
    """This process may allocate ``room`` bytes more (ulimit -d) inside the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    used = int(Path("/proc/self/statm").read_text().split()[5]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_DATA, (used + room, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def limited(room: int):
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (room, room))


# --------------------------------------------------------------------------- command line


def test_a_billion_members_are_refused_in_one_line_allocating_nothing(tmp_path):
    table().to_csv(tmp_path / "t.csv", index=False)
    command = [sys.executable, "-m", "tabnn", "train", "t.csv", "--target", "y"]
    result = subprocess.run(
        [*command, "--ensemble", "1000000000", "-o", "m"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, preexec_fn=limited(3 * GIB),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for phrase in ("Too large for memory", "n_members=1,000,000,000 (--ensemble)", "TB"):
        assert phrase in message
    assert snapshot(tmp_path) == {"t.csv"}


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (["--ensemble", "100000"], "n_members=100,000 (--ensemble)"),
        (["--model", "mlp:100000000"], "hidden=[100,000,000] (--model)"),
        (["--model", "mlp:64-999999999999-64"], "hidden=[64, 999,999,999,999, 64] (--model)"),
        (["--batch-size", "1000000000000"], "batch_size=1,000,000,000,000 (--batch-size)"),
        (["--epochs", "1000000000000"], "epochs=1,000,000,000,000 (--epochs)"),
    ],
)
def test_each_size_option_too_large_names_itself(tmp_path, small_budget, options, phrase):
    table().to_csv(tmp_path / "t.csv", index=False)
    before = snapshot(tmp_path)
    result = invoke("train", "t.csv", "--target", "y", *options, "-o", "m", cwd=tmp_path)
    message = assert_fails(result, 2, "Too large for memory", phrase, "the test's memory (1.0 GB)")
    assert len(result.stderr.strip().splitlines()) == 1, message
    assert snapshot(tmp_path) == before


def test_compare_refuses_folds_times_repeats_too_large(tmp_path, small_budget):
    table().to_csv(tmp_path / "t.csv", index=False)
    result = invoke(
        "compare", "t.csv", "--target", "y", "--models", "wide", "--folds", "2",
        "--repeats", "1000000000", "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert_fails(result, 2, "2,000,000,000 members (--folds x --repeats)", "fewer folds or repeats")


def test_tune_refuses_a_stack_of_trials_too_large(tmp_path, small_budget):
    pytest.importorskip("optuna")
    table().to_csv(tmp_path / "t.csv", index=False)
    result = invoke(
        "tune", "t.csv", "--target", "y", "--trials", "1000000000", "--trials-per-stack",
        "1000000000", "--folds", "3", "--no-report", cwd=tmp_path,
    )  # fmt: skip
    assert_fails(result, 2, "3,000,000,000 members (--trials-per-stack x --folds)")


@pytest.mark.parametrize("option", ["--model", "--batch-size"])
def test_sizes_of_thousands_of_digits_are_option_errors(tmp_path, option):
    table().to_csv(tmp_path / "t.csv", index=False)
    digits = "1" + "0" * 5000  # beyond what int() converts
    value = f"mlp:{digits}" if option == "--model" else digits
    result = invoke("train", "t.csv", "--target", "y", option, value, cwd=tmp_path)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr and "characters)" in result.stderr
    assert len(result.stderr) < 1000  # the value is not printed whole


@pytest.mark.parametrize("value", ["mlp:²", "²"])
def test_digits_that_are_no_numbers_are_option_errors(tmp_path, value):
    table().to_csv(tmp_path / "t.csv", index=False)
    option = "--model" if value.startswith("mlp:") else "--batch-size"
    result = invoke("train", "t.csv", "--target", "y", option, value, cwd=tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_running_out_of_memory_anyway_is_one_line(tmp_path, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("tabnn.engine.train.fit_stack", exhausted)
    table().to_csv(tmp_path / "t.csv", index=False)
    result = invoke("train", "t.csv", "--target", "y", "-o", "m", cwd=tmp_path)
    assert_fails(result, 1, "Training ran out of memory", "--stream")
    monkeypatch.setattr("tabnn.workflows.runs.load_training_table", exhausted)
    result = invoke("train", "t.csv", "--target", "y", "-o", "m", cwd=tmp_path)
    assert_fails(result, 1, "out of memory")


# --------------------------------------------------------------------------- Python


def test_a_billion_members_are_a_usage_error_naming_n_members():
    frame = table()
    with data_limit(), pytest.raises(UsageError, match=r"n_members=1,000,000,000 .* TB"):
        TabNNClassifier(n_members=10**9).fit(frame.drop(columns="y"), frame["y"])


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"hidden": [10**12]}, r"hidden=\[1,000,000,000,000\]"),
        ({"hidden": [10**5000]}, r"hidden=\[about 2\*\*16609\]"),
        ({"batch_size": 10**12}, "batch_size=1,000,000,000,000"),
        ({"epochs": 10**12}, "epochs=1,000,000,000,000"),
        ({"n_members": 10**400}, r"n_members=about 2\*\*1328"),
    ],
)
def test_every_size_parameter_is_weighed_before_allocating(params, phrase):
    frame = table()
    with data_limit(), pytest.raises(UsageError, match=phrase):
        TabNNClassifier(**params).fit(frame.drop(columns="y"), frame["y"])


def test_the_table_counts_beside_the_parameters(small_budget):
    """A layer that fits on a table of one column is refused on one of 2,000."""
    frame = table(rows=40, columns=2000)
    with pytest.raises(UsageError, match=r"hidden=\[30,000\] .*more than the test's"):
        TabNNClassifier(hidden=[30000], epochs=1).fit(frame.drop(columns="y"), frame["y"])


def test_members_that_fit_elsewhere_are_refused_on_a_small_machine(small_budget):
    frame = table()
    with pytest.raises(UsageError, match=r"n_members=20,000 \(--ensemble\)"):
        TabNNClassifier(n_members=20000, epochs=1).fit(frame.drop(columns="y"), frame["y"])


def test_a_memory_error_while_fitting_says_what_to_do(monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("tabnn.engine.train.fit_stack", exhausted)
    frame = table()
    with pytest.raises(OutOfMemoryError, match="Training ran out of memory") as caught:
        TabNNClassifier(epochs=1).fit(frame.drop(columns="y"), frame["y"])
    assert isinstance(caught.value, MemoryError)  # except MemoryError still catches it


def test_a_stored_network_too_large_is_refused_before_any_allocation(small_budget):
    config = ModelConfig(
        n_numeric=3, indicator_columns=[], cardinalities=[], scaling="standard",
        n_quantiles=0, n_outputs=1, hidden=[100_000, 100_000], n_members=4,
    )  # fmt: skip
    with data_limit(), pytest.raises(ModelError, match="cannot be built: 40,002,400,004 param"):
        build_network(config)
    small = ModelConfig(
        n_numeric=3, indicator_columns=[0], cardinalities=[20], scaling="standard",
        n_quantiles=0, n_outputs=2, hidden=[8], n_members=2, embedding_dims=[5],
    )  # fmt: skip
    counted = sum(p.numel() for p in TabularMLP(small).parameters())
    assert parameter_count(small) == counted


def test_in_words_is_integer_arithmetic():
    assert memory.in_words(1_500_000_000) == "1.5 GB"
    assert memory.in_words(10**18) == "1,000,000.0 TB"
    assert memory.in_words(10**5000) == "over 1,000,000 TB"  # no float, no 5,000 digits
    assert memory.shown(10**5000) == "about 2**16609"


@pytest.mark.parametrize("embedding", ["none", "periodic", "ple"])
def test_the_ensembles_parameter_count_is_the_built_networks(embedding):
    frame = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 3, "c": list("xyz") * 10})
    prep = Preprocessor.fit(frame, ["a", "b"], ["c"])
    config = build_config(prep, 3, preset=[8], n_members=2, ensemble_size=3,
                          numeric_embedding=embedding)  # fmt: skip
    built = sum(p.numel() for p in build_network(config).parameters())
    assert parameter_count(config) == built
