"""Training on tables larger than memory: the streaming statistics against the exact ones,
the hash split, the engine's block-by-block epochs against its in-memory ones, and
``tabnn train --stream`` on a directory of Parquet files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tabnn
from tabnn.data.stream import TEST, TRAIN, VALIDATION, Sample, row_hash, split_of
from tabnn.engine.config import FitSpec, Member, StreamData, TensorData, TrainConfig
from tabnn.engine.train import fit_stack
from tabnn.features.preprocess import Preprocessor
from tabnn.features.sketches import StreamStatistics, rank_error
from tabnn.nn.config import build_config
from tabnn.nn.mlp import TabularMLP

pytest.importorskip("pyarrow")


def mixed_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.2, np.nan, rng.exponential(size=n)),
            "c": rng.choice(list("xyzw"), n),
            "d": np.where(rng.random(n) < 0.1, None, rng.choice(["p", "q"], n)),
        }
    )


def streamed(frame: pd.DataFrame, chunk: int, **options) -> StreamStatistics:
    stats = StreamStatistics(["a", "b"], ["c", "d"], **options)
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start : start + chunk]
        stats.add(part, np.arange(start, start + len(part)))
    return stats


@pytest.mark.parametrize("scaling", ["clipped", "standard", "quantile", "robust"])
def test_streamed_statistics_equal_the_exact_ones_when_the_sample_holds_every_row(scaling):
    frame = mixed_frame(30_000)
    exact = Preprocessor.fit(frame, ["a", "b"], ["c", "d"], scaling=scaling)
    stats = streamed(frame, 7_001)
    got = stats.preprocessor(scaling, "auto")
    assert stats.rank_error == 0.0
    for name in ("medians", "centers", "scales", "ranges"):
        np.testing.assert_allclose(getattr(got, name), getattr(exact, name), rtol=1e-9)
    np.testing.assert_allclose(got.quantiles or [[0]], exact.quantiles or [[0]], rtol=1e-9)
    for name in ("indicators", "vocabularies", "missing_seen"):
        assert getattr(got, name) == getattr(exact, name)


def test_sampled_quantiles_are_within_the_stated_rank_error():
    """With a sample of 20,000 of 300,000 rows every quartile, median and quantile knot
    has an exact rank within the DKW bound; moments, ranges and counts stay exact."""
    frame = mixed_frame(300_000, seed=1)
    stats = streamed(frame, 65_536, sample_rows=20_000)
    bound = stats.rank_error
    assert bound == pytest.approx(rank_error(20_000)) and bound < 0.012
    prep = stats.preprocessor("quantile", "auto")
    exact = Preprocessor.fit(frame, ["a", "b"], ["c", "d"], scaling="quantile")
    a = np.sort(frame["a"].to_numpy())
    knots = np.linspace(0, 1, len(prep.quantiles[0]))
    ranks = np.searchsorted(a, prep.quantiles[0], side="right") / len(a)
    assert np.abs(ranks[1:-1] - knots[1:-1]).max() <= bound
    # the mean is exact; with missing values (column b) it also counts them as the median
    np.testing.assert_allclose(prep.centers[0], exact.centers[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(prep.ranges[0], exact.ranges[0])
    assert prep.vocabularies == exact.vocabularies


def test_the_split_depends_only_on_the_row_number_and_seed():
    rows = np.arange(200_000)
    split = split_of(rows, 3, 0.15, 0.15)
    pieces = np.concatenate([split_of(r, 3, 0.15, 0.15) for r in np.array_split(rows, 7)])
    assert np.array_equal(split, pieces)
    shares = np.bincount(split, minlength=3) / len(rows)
    assert shares[TEST] == pytest.approx(0.15, abs=0.005)
    assert shares[VALIDATION] == pytest.approx(0.15, abs=0.005)
    assert shares[TRAIN] == pytest.approx(0.70, abs=0.005)
    assert not np.array_equal(split, split_of(rows, 4, 0.15, 0.15))
    h = row_hash(rows, 0)
    assert h.min() >= 0 and h.max() < 1


def test_a_sample_is_bounded_uniform_and_the_same_however_the_rows_come():
    frame = pd.DataFrame({"r": np.arange(100_000)})
    whole, chunked = Sample(1_000, 0), Sample(1_000, 0)
    whole.add(frame, frame["r"].to_numpy())
    for part in np.array_split(np.arange(100_000), 13):
        chunked.add(frame.iloc[part].reset_index(drop=True), part)
    assert len(chunked.frame) == 1_000 and chunked.seen == 100_000
    assert sorted(whole.frame["r"]) == sorted(chunked.frame["r"])
    assert chunked.frame["r"].mean() == pytest.approx(50_000, rel=0.06)


def test_streamed_epochs_over_one_block_train_the_in_memory_model():
    """The engine shuffles a block's rows with the member's own generator, so a stream of
    one block holding every training row is the in-memory fit, step for step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(np.float32)
    columns = [f"x{j}" for j in range(4)]
    prep = Preprocessor.fit(pd.DataFrame(x[:500], columns=columns), columns, [])
    no_cat = np.zeros((len(x), 0), dtype=np.int64)
    config = TrainConfig(epochs=4, batch_size=64, patience=100)

    def model():
        network = TabularMLP(build_config(prep, 1, preset=[16, 8], n_members=1))
        network.encoder.set_statistics(0, prep)
        return network

    cpu = torch.device("cpu")
    in_memory = model()
    whole = TensorData.from_arrays(x, no_cat, y, cpu)
    fit_stack(
        FitSpec(
            in_memory, whole, [Member(np.arange(500), np.arange(500, 600), 7)], "binary", config
        )
    )
    streaming = model()
    train = TensorData.from_arrays(x[:500], no_cat[:500], y[:500], cpu)
    val = TensorData.from_arrays(x[500:], no_cat[500:], y[500:], cpu)
    data = StreamData(val, 500, lambda epoch: [train])
    history = fit_stack(
        FitSpec(streaming, data, [Member(np.arange(0), np.arange(100), 7)], "binary", config)
    )
    for a, b in zip(in_memory.parameters(), streaming.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert len(history.epochs) == 4


# --------------------------------------------------------------------------- the command


def run_tabnn(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tabnn", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory) -> Path:
    """Three Parquet files, 75,000 rows in all (more than one chunk): the third class
    first appears in the last file, after the schema was read from the first chunk."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    for i, n in enumerate((30_000, 30_000, 15_000)):
        x = rng.normal(size=(n, 3))
        city = rng.choice(["paris", "rome", "oslo"], n)
        label = np.where(x[:, 0] + (city == "rome") > 0.5, "high", "low")
        if i == 2:
            label = np.where(x[:, 1] > 1.2, "top", label)
        frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "city": city})
        frame["label"] = label
        frame.to_parquet(folder / f"part-{i:05d}.parquet", row_group_size=10_000)
    return folder


def test_train_streams_a_directory_and_the_model_predicts(parquet_dir, tmp_path):
    out = tmp_path / "model"
    args = ["--target", "label", "--epochs", "3", "--json", "--no-report"]
    result = run_tabnn("train", parquet_dir, *args, "--stream", "--memory", "1G", "-o", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["classes"] == ["high", "low", "top"]
    assert sum(summary["rows"].values()) == 75_000
    assert summary["evaluation"]["scores"]["model"]["accuracy"] > 0.85
    meta = json.loads((out / "tabnn.json").read_text())
    assert meta["training"]["streamed"]["block_rows"] >= 4_096
    model = tabnn.load(out)
    rows = pd.read_parquet(parquet_dir / "part-00002.parquet").head(50)
    assert set(model.predict(rows.drop(columns="label"))) <= {"high", "low", "top"}


def test_streamed_accuracy_matches_the_in_memory_run(parquet_dir, tmp_path):
    whole = pd.concat([pd.read_parquet(p) for p in sorted(parquet_dir.iterdir())])
    whole.to_parquet(tmp_path / "whole.parquet")
    args = ["--target", "label", "--epochs", "3", "--json", "--no-report"]
    scores = []
    for mode in ("--stream", "--no-stream"):
        result = run_tabnn("train", tmp_path / "whole.parquet", *args, mode, "-o", tmp_path / mode)
        assert result.returncode == 0, result.stderr
        scores.append(json.loads(result.stdout)["evaluation"]["scores"]["model"]["accuracy"])
    assert abs(scores[0] - scores[1]) < 0.02


@pytest.mark.parametrize(
    "args, message",
    [
        (["--memory", "lots"], "--memory must be a size such as 1.5G"),
        (["--memory", "100M"], "is too small"),
        (["--bagging", "3"], "--bagging 3 trains each member on its own folds"),
    ],
)
def test_bad_streaming_options_are_refused(parquet_dir, tmp_path, args, message):
    result = run_tabnn("train", parquet_dir, "--target", "label", "--stream", *args, "-o",
                       tmp_path / "m")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_a_streamed_fit_tunes_its_threshold_and_temperature_on_the_validation_sample(tmp_path):
    """--stream takes the estimator's one fit recipe: threshold='auto' and calibration are
    fitted on the validation sample, as an in-memory fit fits them on its validation rows."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6_000, 3))
    label = np.where(x[:, 0] + 0.8 * rng.normal(size=len(x)) > 1.0, "yes", "no")  # imbalanced
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "label": label})
    frame.to_csv(tmp_path / "table.csv", index=False)
    out = tmp_path / "model"
    args = ["--target", "label", "--epochs", "2", "--json", "--no-report", "--calibrate"]
    result = run_tabnn("train", tmp_path / "table.csv", *args, "--threshold", "auto", "--stream",
                       "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "tabnn.json").read_text())
    tuning = meta["threshold"]["tuning"]
    assert tuning["metric"] == "f1" and 0 < tuning["rows"] <= 0.2 * len(frame)
    assert len(meta["temperature"]) == 1 and meta["temperature"][0] > 0
    assert tabnn.load(out).threshold_ == meta["threshold"]["value"]


def test_a_directory_of_files_with_different_columns_is_refused(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_parquet(tmp_path / "part-0.parquet")
    pd.DataFrame({"b": [1.0, 2.0], "y": [0, 1]}).to_parquet(tmp_path / "part-1.parquet")
    result = run_tabnn("train", tmp_path, "--target", "y", "--stream", "-o", tmp_path / "m")
    assert result.returncode == 2
    assert "every file must have the same columns" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_tabnn("train", empty, "--target", "y", "--stream", "-o", tmp_path / "m2")
    assert result.returncode == 2 and "without table files" in result.stderr


def test_torchrun_ranks_share_the_stream(parquet_dir, tmp_path):
    """Two processes stream the same table, each training on its own rows (row number
    mod 2) of every block; rank 0 writes the model; its accuracy is the one-process run's."""
    args = ["train", parquet_dir, "--target", "label", "--stream", "--epochs", "3", "--json",
            "--no-report"]  # fmt: skip
    one = run_tabnn(*args, "-o", tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node=2", "-m", "tabnn", *map(str, args),
                "-o", str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(torchrun, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    scores = [json.loads(r.stdout)["evaluation"]["scores"]["model"] for r in (one, two)]
    assert scores[1]["accuracy"] > 0.85
    assert abs(scores[0]["accuracy"] - scores[1]["accuracy"]) < 0.02
    assert tabnn.load(tmp_path / "two").classes_.tolist() == ["high", "low", "top"]


def test_a_multilabel_csv_streams_and_prints_its_summary(tmp_path):
    """Label sets in one column (--label-sep), from a CSV file, with the usual output."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3_000, 3))
    tags = ["|".join(t for t, on in (("a", u > 0), ("b", v > 0)) if on) for u, v, _ in x]
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "tags": tags})
    frame.to_csv(tmp_path / "tags.csv", index=False)
    out = tmp_path / "model"
    result = run_tabnn("train", tmp_path / "tags.csv", "--target", "tags", "--label-sep", "|",
                       "--stream", "--epochs", "5", "--no-report", "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "hamming_loss" in result.stdout and "model saved to" in result.stdout
    model = tabnn.load(out)
    assert model.task_ == "multilabel" and list(model.schema_.classes) == ["a", "b"]


def test_a_bad_value_late_in_the_stream_names_its_data_row(tmp_path):
    """Text in a column forced numeric, past the first chunk: the message gives the row of
    the file (0-based among its data rows), not a position inside a chunk; nothing is
    written. (Not forced, the column is text, as the whole table in memory would be.)"""
    rng = np.random.default_rng(0)
    n = 70_000
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3).astype(object), "b": rng.normal(size=n)})
    frame["y"] = np.where(frame["b"] > 0, "p", "q")
    frame.loc[68_000, "a"] = "abc"
    frame.to_csv(tmp_path / "late.csv", index=False)
    out = tmp_path / "model"
    result = run_tabnn("train", tmp_path / "late.csv", "--target", "y", "--stream",
                       "--numeric", "a", "-o", out)  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "data row 68000 (0-based)" in result.stderr and "'abc'" in result.stderr
    assert not out.exists()
