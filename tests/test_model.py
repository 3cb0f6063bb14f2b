"""The network: presets, stacked layers and norms, the input encoder, raw logits."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_circles
from torch import nn

from tabnn.engine.config import FitSpec, Member, TensorData, TrainConfig
from tabnn.engine.train import fit_stack
from tabnn.errors import UsageError
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import ACTIVATIONS, ModelConfig, build_config, encoded_width, hidden_sizes
from tabnn.nn.forward import predict_logits, probabilities
from tabnn.nn.mlp import StackedLinear, StackedNorm, TabularMLP

CPU = torch.device("cpu")


def numeric_prep(n_columns, rows=20, seed=0):
    rng = np.random.default_rng(seed)
    columns = [f"x{j}" for j in range(n_columns)]
    return Preprocessor.fit(
        pd.DataFrame(rng.normal(size=(rows, n_columns)), columns=columns), columns, []
    )


def mixed_prep():
    """Three numeric columns (one with a missing value), a 4-category and a 40-category column."""
    frame = pd.DataFrame(
        {
            "a": [1.0, 2.0, np.nan, 4.0] * 10,
            "b": np.arange(40.0),
            "c": np.ones(40),
            "colour": ["red", "green", "blue", "grey"] * 10,
            "city": [f"city{i}" for i in range(40)],
        }
    )
    return Preprocessor.fit(frame, ["a", "b", "c"], ["colour", "city"])


# --- sizes and presets ---------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, expected",
    [("wide", [27]), ("deep", [9, 9, 9]), ("default", [128, 128]), ([10, 5], [10, 5])],
    ids=["wide", "deep", "default", "explicit"],
)
def test_hidden_sizes_follow_the_encoded_width(preset, expected):
    assert hidden_sizes(preset, 9) == expected


def test_presets_use_the_width_after_indicators_and_one_hot():
    prep = mixed_prep()  # 3 numeric + 1 indicator + one-hot of 5 codes + embedding of 41
    width = 3 + 1 + 5 + build_config(prep, 1).embedding_dims[1]
    assert encoded_width(3, 1, prep.cardinalities) == width
    assert build_config(prep, 1, preset="wide").hidden == [3 * width]
    assert build_config(prep, 1, preset="deep").hidden == [width] * 3


@pytest.mark.parametrize(
    "preset, message",
    [("huge", "Unknown design 'huge'"), ([], "positive integers"), ([8, 0], "positive")],
    ids=["unknown", "empty", "zero"],
)
def test_bad_hidden_sizes_are_usage_errors(preset, message):
    with pytest.raises(UsageError, match=message):
        hidden_sizes(preset, 9)


@pytest.mark.parametrize(
    "option, message",
    [({"activation": "swish"}, "Unknown activation 'swish'"), ({"norm": "group"}, "Unknown norm")],
    ids=["activation", "norm"],
)
def test_unknown_activation_or_norm_is_a_usage_error(option, message):
    with pytest.raises(UsageError, match=message):
        build_config(numeric_prep(2), 1, **option)


@pytest.mark.parametrize(
    "preset, expected", [("wide", 11_161), ("deep", 11_041)], ids=["wide", "deep"]
)
def test_w1_designs_have_the_published_parameter_counts(preset, expected):
    model = TabularMLP(build_config(numeric_prep(60), 1, preset=preset))
    layers = [*model.hidden, model.head]
    assert sum(p.numel() for layer in layers for p in layer.parameters()) == expected


def test_config_round_trips_through_json():
    config = build_config(mixed_prep(), 3, preset="deep", norm="layer", n_members=2)
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# --- stacked layers ----------------------------------------------------------------


def test_stacked_linear_equals_separate_linear_layers():
    torch.manual_seed(0)
    stacked = StackedLinear(3, 5, 4)
    generators = [torch.Generator().manual_seed(k) for k in range(3)]
    for k, generator in enumerate(generators):
        stacked.reset_member(k, generator)
    x = torch.randn(3, 7, 5)
    out = stacked(x)
    for k in range(3):
        linear = nn.Linear(5, 4)
        linear.weight.data = stacked.weight.data[k].T.clone()
        linear.bias.data = stacked.bias.data[k, 0].clone()
        torch.testing.assert_close(out[k], linear(x[k]))
    bound = 1 / np.sqrt(5)
    assert stacked.weight.abs().max() <= bound and stacked.bias.abs().max() <= bound


def test_member_initialisation_depends_only_on_its_seed():
    prep = mixed_prep()
    stack = TabularMLP(build_config(prep, 2, n_members=3, norm="batch"))
    alone = TabularMLP(build_config(prep, 2, n_members=1, norm="batch"))
    for k, seed in enumerate([4, 9, 2]):
        stack.reset_member(k, seed)
    alone.reset_member(0, 9)
    for name, value in alone.named_parameters():
        assert torch.equal(dict(stack.named_parameters())[name][1], value[0]), name
    assert not torch.equal(stack.head.weight[0], stack.head.weight[1])


def batch_norms(stacked):
    """One nn.BatchNorm1d per member, with that member's affine weights."""
    norms = []
    for k in range(stacked.weight.shape[0]):
        norm = nn.BatchNorm1d(stacked.weight.shape[-1])
        norm.weight.data = stacked.weight.data[k, 0].clone()
        norm.bias.data = stacked.bias.data[k, 0].clone()
        norms.append(norm)
    return norms


def test_batch_norm_keeps_statistics_per_member_like_batchnorm1d():
    torch.manual_seed(0)
    stacked = StackedNorm("batch", 2, 3)
    stacked.weight.data.normal_()
    stacked.bias.data.normal_()
    references = batch_norms(stacked)
    for _ in range(3):  # train mode: batch statistics, running statistics updated
        x = torch.randn(2, 16, 3) * torch.tensor([[[1.0]], [[5.0]]]) + 2
        out = stacked(x)
        for k, reference in enumerate(references):
            torch.testing.assert_close(out[k], reference(x[k]))
            torch.testing.assert_close(stacked.running_mean[k, 0], reference.running_mean)
            torch.testing.assert_close(stacked.running_var[k, 0], reference.running_var)
    stacked.eval()
    x = torch.randn(2, 4, 3)
    for k, reference in enumerate(references):
        torch.testing.assert_close(stacked(x)[k], reference.eval()(x[k]))
    assert not torch.allclose(stacked.running_var[0], stacked.running_var[1])


def test_batch_norm_ignores_padding_rows():
    torch.manual_seed(0)
    stacked = StackedNorm("batch", 2, 3)
    alone = StackedNorm("batch", 1, 3)
    x = torch.randn(2, 8, 3)
    mask = torch.ones(2, 8)
    mask[1, 5:] = 0  # member 1 has 5 real rows, then padding
    out = stacked(x, mask)
    torch.testing.assert_close(out[1, :5], alone(x[1:2, :5])[0])
    torch.testing.assert_close(stacked.running_mean[1], alone.running_mean[0])
    torch.testing.assert_close(stacked.running_var[1], alone.running_var[0])


def test_batch_norm_with_one_real_row_uses_running_statistics():
    stacked = StackedNorm("batch", 2, 3)
    stacked.running_mean[1] = 1.0
    stacked.running_var[1] = 4.0
    x = torch.randn(2, 6, 3)
    mask = torch.tensor([[1.0] * 6, [1.0] + [0.0] * 5])
    out = stacked(x, mask)
    torch.testing.assert_close(out[1, 0], (x[1, 0] - 1) / torch.sqrt(torch.tensor(4 + 1e-5)))
    assert stacked.running_var[1].eq(4.0).all()  # untouched: no statistics from one row
    assert not stacked.running_var[0].eq(1.0).all()


def test_layer_norm_normalises_each_row_with_per_member_affine():
    torch.manual_seed(0)
    stacked = StackedNorm("layer", 2, 4)
    stacked.weight.data.normal_()
    stacked.bias.data.normal_()
    x = torch.randn(2, 5, 4)
    for mode in (stacked.train, stacked.eval):
        mode()
        out = stacked(x)
        for k in range(2):
            reference = nn.LayerNorm(4)
            reference.weight.data = stacked.weight.data[k, 0]
            reference.bias.data = stacked.bias.data[k, 0]
            torch.testing.assert_close(out[k], reference(x[k]))


def test_batch_norm_model_trains_without_hidden_biases():
    prep = numeric_prep(4)
    plain = TabularMLP(build_config(prep, 1, norm="none"))
    normed = TabularMLP(build_config(prep, 1, norm="batch"))
    names = {name for name, _ in normed.named_parameters()}
    assert "hidden.0.bias" not in names and "head.bias" in names
    assert normed.hidden[0].bias.eq(0).all()
    assert set(plain.state_dict()) <= set(normed.state_dict())  # same layout, plus norms


def test_eval_and_train_mode_differ_only_with_batch_norm():
    prep = numeric_prep(4)
    x = torch.randn(1, 32, 4)
    no_cat = torch.zeros(1, 32, 0, dtype=torch.long)
    for norm, differs in [("batch", True), ("layer", False), ("none", False)]:
        model = TabularMLP(build_config(prep, 1, norm=norm))
        model.reset_member(0, 0)
        model.encoder.set_statistics(0, prep)
        train_out = model.train()(x, no_cat)
        eval_out = model.eval()(x, no_cat)
        assert (not torch.allclose(train_out, eval_out)) == differs, norm


# --- activations ---------------------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS), ids=str)
def test_every_activation_gives_finite_logits(activation):
    prep = mixed_prep()
    model = TabularMLP(build_config(prep, 3, activation=activation, n_members=2))
    for k in range(2):
        model.reset_member(k, k)
        model.encoder.set_statistics(k, prep)
    out = model(torch.randn(1, 10, 3), torch.randint(0, 5, (1, 10, 2)))
    assert out.shape == (2, 10, 3) and torch.isfinite(out).all()


def test_identity_activation_is_an_affine_model():
    prep = numeric_prep(3)
    model = TabularMLP(build_config(prep, 1, preset=[8, 8], activation="identity"))
    model.reset_member(0, 0)
    model.encoder.set_statistics(0, prep)
    model.eval()
    a, b = torch.randn(1, 5, 3), torch.randn(1, 5, 3)
    no_cat = torch.zeros(1, 5, 0, dtype=torch.long)
    mixed = model(0.3 * a + 0.7 * b, no_cat)
    torch.testing.assert_close(mixed, 0.3 * model(a, no_cat) + 0.7 * model(b, no_cat))


def xor_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.float32)


def circles_data(n=400, seed=0):
    x, y = make_circles(n_samples=n, noise=0.05, factor=0.5, random_state=seed)
    return x.astype(np.float32), y.astype(np.float32)


def training_accuracy(x, y, activation):
    prep = Preprocessor.fit(pd.DataFrame(x, columns=["a", "b"]), ["a", "b"], [])
    model = TabularMLP(build_config(prep, 1, preset=[32], activation=activation))
    model.encoder.set_statistics(0, prep)
    rows = np.arange(len(y))
    data = TensorData.from_arrays(x, np.zeros((len(y), 0)), y, CPU)
    config = TrainConfig(epochs=60, batch_size=32, lr=0.02, weight_decay=0.0)
    fit_stack(FitSpec(model, data, [Member(rows, rows[:0], 0)], "binary", config))
    logits = predict_logits(model, x, np.zeros((len(y), 0)), CPU)[0, :, 0]
    return ((logits > 0).numpy() == (y > 0.5)).mean()


@pytest.mark.parametrize("data", [xor_data, circles_data], ids=["xor", "circles"])
def test_a_linear_model_cannot_fit_xor_or_circles_and_relu_can(data):
    x, y = data()
    assert training_accuracy(x, y, "identity") < 0.75  # the best half-plane on XOR: about 2/3
    assert training_accuracy(x, y, "relu") > 0.95


# --- input encoder -------------------------------------------------------------------


def test_small_vocabularies_are_one_hot_and_large_ones_embedded():
    prep = mixed_prep()
    config = build_config(prep, 1, n_members=2)
    assert prep.cardinalities == [5, 41]
    assert config.embedding_dims[0] == 0 and config.embedding_dims[1] > 0
    model = TabularMLP(config)
    for k in range(2):
        model.reset_member(k, k)
        model.encoder.set_statistics(k, prep)
    codes = torch.tensor([[[0, 0], [3, 17], [4, 40]]])  # 0: unknown or missing
    encoded = model.encoder(torch.zeros(1, 3, 3), codes)
    one_hot = encoded[..., 4:9]  # after 3 numeric and 1 indicator column
    assert one_hot[0].tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]
    table = model.encoder.embeddings["1"]
    torch.testing.assert_close(encoded[:, 0, 9:], table[:, 0])
    torch.testing.assert_close(encoded[:, 1, 9:], table[:, 17])
    assert not torch.allclose(table[0], table[1])  # each member its own embeddings
    assert torch.isfinite(model(torch.zeros(1, 3, 3), codes)).all()


def test_forward_is_the_fixed_inputs_plus_embeddings_through_the_mlp():
    prep = mixed_prep()
    model = TabularMLP(build_config(prep, 2, n_members=2))
    for k in range(2):
        model.reset_member(k, k)
        model.encoder.set_statistics(k, prep)
    x_num, codes = torch.randn(1, 6, 3), torch.tensor([[[0, 0], [3, 17], [4, 40]] * 2])
    x_num[0, 1, 0] = float("nan")
    encoder = model.encoder
    fixed = encoder.encode_fixed(x_num, codes)
    assert fixed.shape == (2, 6, encoder.fixed_width) == (2, 6, 3 + 1 + 5)  # no embedding
    encoded = encoder.assemble(fixed, codes)
    assert torch.equal(encoded, encoder(x_num, codes))
    assert torch.equal(encoder.encode_fixed(x_num, codes, first_member=True), fixed[:1])
    assert torch.equal(model.mlp(encoded), model(x_num, codes))


def test_members_share_statistics_only_when_all_are_equal():
    prep, other = numeric_prep(3, seed=0), numeric_prep(3, seed=1)
    model = TabularMLP(build_config(prep, 1, n_members=2))
    for k in range(2):
        model.encoder.set_statistics(k, prep)
    assert model.encoder.shares_statistics()
    model.encoder.set_statistics(1, other)
    assert not model.encoder.shares_statistics()


@pytest.mark.parametrize(
    "options, plain",
    [
        ({}, True),
        ({"activation": "identity"}, True),
        ({"activation": "gelu"}, False),
        ({"dropout": 0.1}, True),
        ({"dropout": 1.0}, False),
        ({"norm": "layer"}, False),
    ],
    ids=["relu", "identity", "gelu", "dropout", "dropout-all", "norm"],
)
def test_plain_networks_are_linear_layers_relu_and_dropout(options, plain):
    assert TabularMLP(build_config(numeric_prep(3), 1, **options)).plain == plain
    assert not TabularMLP(build_config(mixed_prep(), 1, **options)).plain  # an embedding


def test_design_matrix_one_hot_encodes_every_categorical():
    prep = mixed_prep()
    model = TabularMLP(build_config(prep, 1))
    model.encoder.set_statistics(0, prep)
    x_num, x_cat = prep.transform(
        pd.DataFrame({"a": [1.0], "b": [2.0], "c": [1.0], "colour": ["blue"], "city": ["city3"]})
    )
    matrix = model.encoder.design_matrix(torch.tensor(x_num), torch.tensor(x_cat))
    assert matrix.shape == (1, 3 + 1 + 5 + 41)
    assert matrix[0, 4:].sum() == 2


def test_probabilities_apply_sigmoid_or_softmax():
    logits = torch.tensor([[[3.0, -2.0, 0.0], [10.0, 10.0, -10.0]]])
    softmax = probabilities(logits, "multiclass")
    torch.testing.assert_close(softmax.sum(-1), torch.ones(1, 2))
    torch.testing.assert_close(probabilities(logits, "multilabel"), torch.sigmoid(logits))
    assert probabilities(logits[..., :1], "binary")[0, :, 0].tolist() == pytest.approx(
        [torch.sigmoid(torch.tensor(3.0)).item(), torch.sigmoid(torch.tensor(10.0)).item()]
    )
