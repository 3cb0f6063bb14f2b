"""Preprocessing statistics, and the values the model's encoder makes of them."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from tabnn.errors import UsageError
from tabnn.features import preprocess
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import build_config
from tabnn.nn.mlp import TabularMLP


def encode(prep, frame):
    """(rows, numeric + indicators) inputs the model's encoder makes of a frame."""
    model = TabularMLP(build_config(prep, 1, preset=[2]))
    model.encoder.set_statistics(0, prep)
    x_num, _ = prep.transform(frame)
    with torch.no_grad():
        return model.encoder.numeric(torch.tensor(x_num)[None])[0].numpy()


def skewed(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"v": rng.lognormal(size=n), "w": rng.normal(3, 2, size=n)})


# --- numeric statistics ----------------------------------------------------------------


def test_statistics_come_from_the_given_rows_only():
    frame = skewed()
    first = Preprocessor.fit(frame.iloc[:250], ["v", "w"], [])
    second = Preprocessor.fit(frame.iloc[250:], ["v", "w"], [])
    assert first.medians != second.medians and first.centers != second.centers
    assert first.medians[0] == pytest.approx(np.median(frame["v"][:250]))
    assert first.centers[1] == pytest.approx(frame["w"][:250].mean())
    assert first.scales[1] == pytest.approx(frame["w"][:250].std(ddof=0))


@pytest.mark.parametrize(
    "mode, expected", [("auto", [True, False]), ("always", [True, True]), ("never", [False] * 2)]
)
def test_missing_indicators(mode, expected):
    train = pd.DataFrame({"gap": [1.0, np.nan, 3.0, 5.0], "full": [1.0, 2.0, 3.0, 4.0]})
    prep = Preprocessor.fit(train, ["gap", "full"], [], missing_indicator=mode)
    assert prep.indicators == expected
    assert prep.medians == [3.0, 2.5]
    test = pd.DataFrame({"gap": [np.nan, 3.0], "full": [np.nan, 2.5]})
    encoded = encode(prep, test)
    assert encoded.shape == (2, 2 + sum(expected))
    assert encoded[0, 0] == encoded[1, 0]  # missing -> the training median
    assert encoded[0, 1] == encoded[1, 1]
    assert encoded[:, 2:].tolist() == [[1.0] * sum(expected), [0.0] * sum(expected)]


@pytest.mark.parametrize(
    "option, message",
    [
        ({"scaling": "minmax"}, "scaling must be one of standard, robust, quantile"),
        ({"missing_indicator": "yes"}, "missing_indicator must be one of auto, always, never"),
    ],
    ids=["scaling", "missing-indicator"],
)
def test_bad_options_are_usage_errors(option, message):
    with pytest.raises(UsageError, match=message):
        Preprocessor.fit(skewed(), ["v"], [], **option)


def test_standard_scaling_gives_zero_mean_unit_variance():
    frame = skewed()
    encoded = encode(Preprocessor.fit(frame, ["v", "w"], []), frame)
    np.testing.assert_allclose(encoded.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(encoded.std(0), 1, atol=1e-5)


def test_robust_scaling_centres_on_the_median_and_divides_by_the_iqr():
    frame = skewed()
    encoded = encode(Preprocessor.fit(frame, ["v"], [], scaling="robust"), frame)[:, 0]
    q25, median, q75 = np.percentile(frame["v"], [25, 50, 75])
    np.testing.assert_allclose(encoded, (frame["v"] - median) / (q75 - q25), rtol=1e-5, atol=1e-6)


def test_quantile_scaling_is_normal_on_training_data_and_monotonic():
    frame = skewed(n=2000)
    prep = Preprocessor.fit(frame, ["v", "w"], [], scaling="quantile")
    encoded = encode(prep, frame)
    for column in encoded.T:
        assert abs(column.mean()) < 0.05 and abs(column.std() - 1) < 0.1
        assert abs(stats.skew(column)) < 0.1  # the lognormal column's skew is gone
    grid = pd.DataFrame({"v": np.linspace(-1, 30, 500), "w": np.linspace(-10, 15, 500)})
    on_grid = encode(prep, grid)
    assert (np.diff(on_grid, axis=0) >= 0).all()
    assert on_grid.min() > -3.2 and on_grid.max() < 3.2  # out of range values are clipped


def test_quantile_scaling_puts_tied_values_in_the_middle_of_their_quantiles():
    frame = pd.DataFrame({"flag": [0.0] * 700 + [1.0] * 300})
    encoded = encode(Preprocessor.fit(frame, ["flag"], [], scaling="quantile"), frame)[:, 0]
    # 0 covers quantiles 0-0.7 and 1 covers 0.7-1: normal scores of 0.35 and 0.85, up to
    # the resolution of 64 knots (not -3.1 and 0.5: the bottom of each run of tied knots)
    low, high = stats.norm.ppf([0.35, 0.85])
    assert encoded[0] == pytest.approx(low, abs=0.05)
    assert encoded[-1] == pytest.approx(high, abs=0.05)


@pytest.mark.parametrize("scaling", ["standard", "robust", "quantile"])
def test_a_constant_column_encodes_to_zero(scaling):
    frame = pd.DataFrame({"c": [4.0] * 30, "v": np.arange(30.0)})
    prep = Preprocessor.fit(frame, ["c", "v"], [], scaling=scaling)
    assert prep.scales[0] == 1.0
    encoded = encode(prep, frame)
    assert np.isfinite(encoded).all()
    np.testing.assert_allclose(encoded[:, 0], 0, atol=1e-6)


# --- categories --------------------------------------------------------------------


def test_vocabularies_are_most_frequent_first_with_ties_by_value():
    frame = pd.DataFrame({"c": ["b", "a", "c", "c", "b", "c", None, "d"]})
    prep = Preprocessor.fit(frame, [], ["c"])
    assert prep.vocabularies == [["c", "b", "a", "d"]]
    assert prep.cardinalities == [5]


def test_vocabularies_are_capped(monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_CATEGORIES", 2)
    frame = pd.DataFrame({"c": ["x", "y", "y", "z", "z", "z"]})
    prep = Preprocessor.fit(frame, [], ["c"])
    assert prep.vocabularies == [["z", "y"]]
    _, codes = prep.transform(frame)
    assert codes[:, 0].tolist() == [0, 2, 2, 1, 1, 1]  # the capped-off category is unknown


def test_unseen_and_missing_categories_map_to_zero():
    prep = Preprocessor.fit(pd.DataFrame({"c": ["red", "red", "blue"]}), [], ["c"])
    _, codes = prep.transform(pd.DataFrame({"c": ["blue", "red", "green", None, np.nan]}))
    assert codes.dtype == np.int64
    assert codes[:, 0].tolist() == [2, 1, 0, 0, 0]


def test_numbers_as_categories_are_looked_up_as_at_fit_time():
    frame = pd.DataFrame({"grade": [1, 2, 2, 3]})
    prep = Preprocessor.fit(frame, [], ["grade"])
    assert prep.vocabularies == [["2", "1", "3"]]
    _, codes = prep.transform(frame)
    assert codes[:, 0].tolist() == [2, 1, 1, 3]


def test_transform_keeps_nan_for_the_encoder_and_orders_columns():
    prep = Preprocessor.fit(skewed(), ["w", "v"], [])
    x_num, x_cat = prep.transform(pd.DataFrame({"v": [1.0, np.nan], "w": [5.0, 6.0]}))
    assert x_num.dtype == np.float32 and x_cat.shape == (2, 0)
    assert x_num[0].tolist() == [5.0, 1.0] and np.isnan(x_num[1, 1])


def test_state_round_trips_through_json():
    frame = skewed()
    frame["v"] = frame["v"].mask(frame.index % 7 == 0)
    frame["c"] = np.where(frame.index % 3 == 0, "a", "b")
    prep = Preprocessor.fit(frame, ["v", "w"], ["c"], scaling="quantile")
    again = Preprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert again == prep
    for before, after in zip(prep.transform(frame), again.transform(frame)):
        np.testing.assert_array_equal(before, after)
