"""One network interface (issue 21): both designs, as ``build_network`` builds them, are
``TabularNetwork``s: every member the interface declares is there, with its call shape,
and gives the shapes its docstring promises."""

import inspect

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tabnn import TabNNClassifier
from tabnn.errors import UsageError
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import ModelConfig, build_config
from tabnn.nn.ensemble import EnsembleMLP, build_network
from tabnn.nn.mlp import Dropout, InputEncoder, TabularMLP
from tabnn.nn.network import TabularNetwork

K, E, OUTPUTS, ROWS = 2, 3, 3, 7
# the designs' networks: a plain MLP with a norm, the efficient ensemble with embeddings
DESIGNS = {
    "mlp": (TabularMLP, {"preset": [8, 5], "norm": "batch", "dropout": 0.1}),
    "ensemble": (
        EnsembleMLP,
        {"preset": [8, 5], "ensemble_size": E, "numeric_embedding": "periodic"},
    ),
    "ensemble-ple": (
        EnsembleMLP,
        {"preset": [8, 5], "ensemble_size": E, "numeric_embedding": "ple"},
    ),
}
# the interface's own members (the rest are torch.nn.Module's methods)
OWN_METHODS = [
    "reset_member",
    "fit_inputs",
    "matmul_shapes",
    "layer_inputs",
    "input_scale",
    "train_logits",
    "mlp",
    "forward",
]


def declared() -> set[str]:
    """Every member ``TabularNetwork`` declares: attributes, properties and methods."""
    names = {name for name in vars(TabularNetwork) if not name.startswith("_")}
    return names | set(TabularNetwork.__annotations__) | {"__call__"}


def frame(rows=40):
    """Two numeric columns (one with a missing value), a small and a large vocabulary."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "city": [f"city{i}" for i in range(rows)],  # embedded, not one-hot
        }
    )
    table.loc[3, "b"] = np.nan
    return table


def fitted_prep() -> Preprocessor:
    return Preprocessor.fit(frame(), ["a", "b"], ["colour", "city"])


def built(design: str) -> TabularNetwork:
    """The design's network, built as training builds it (``build_config``,
    ``build_network``), with the statistics set and every member initialised."""
    kind, options = DESIGNS[design]
    prep = fitted_prep()
    config = build_config(prep, OUTPUTS, n_members=K, task="multiclass", **options)
    network = build_network(config)
    assert type(network) is kind
    x_num = prep.transform(frame())[0]
    for k in range(K):
        network.encoder.set_statistics(k, prep)
        network.fit_inputs(k, x_num, np.arange(len(x_num)))
        network.reset_member(k, seed=k)
    return network


def raw_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """ROWS rows as ``forward`` takes them: (1, ROWS, numeric) and (1, ROWS, categorical)."""
    x_num, x_cat = fitted_prep().transform(frame(ROWS))
    return torch.as_tensor(x_num)[None], torch.as_tensor(x_cat)[None]


@pytest.fixture(params=list(DESIGNS))
def network(request) -> TabularNetwork:
    return built(request.param)


def test_both_designs_are_tabular_networks_and_modules(network):
    assert isinstance(network, TabularNetwork) and isinstance(network, nn.Module)
    missing = [name for name in declared() if not hasattr(network, name)]
    assert not missing
    assert isinstance(network.config, ModelConfig)
    assert isinstance(network.encoder, InputEncoder)
    assert isinstance(network.hidden, nn.ModuleList) and isinstance(network.dropout, Dropout)
    assert isinstance(network.plain, bool)


@pytest.mark.parametrize("name", OWN_METHODS)
def test_each_method_has_the_declared_call_shape(network, name):
    def shape(function):  # names, kinds and defaults: annotations are strings here
        parameters = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in parameters]

    assert shape(getattr(type(network), name)) == shape(getattr(TabularNetwork, name))


def test_the_documented_shapes(network):
    x_num, x_cat = raw_inputs()
    ensemble = isinstance(network, EnsembleMLP)
    network.eval()  # no dropout: forward is exactly mlp of the encoding
    with torch.no_grad():
        encoded = network.encoder(x_num, x_cat)
        first = network.layer_inputs(encoded)
        width = network.hidden[0].weight.shape[1]
        assert encoded.shape[:2] == (K, ROWS) and first.shape == (K, ROWS, width)
        assert network.input_scale().shape == (K, 1, width)
        train = network.train_logits(encoded)
        assert train.shape == ((K, E, ROWS, OUTPUTS) if ensemble else (K, ROWS, OUTPUTS))
        logits = network.mlp(encoded)
        assert logits.shape == (K, ROWS, OUTPUTS)
        assert torch.equal(network(x_num, x_cat), logits)
    head = (K, E, 5, OUTPUTS) if ensemble else (K, 5, OUTPUTS)
    assert network.head.weight.shape == head
    shapes = network.matmul_shapes(16)
    assert len(shapes) == len(network.hidden) + 1
    assert all(len(s) == 4 and all(isinstance(n, int) for n in s) for s in shapes)
    assert shapes[0][2:] == (width, 8) and shapes[-1][-1] == OUTPUTS
    assert network.plain is False  # a norm, or the ensemble: never differentiated by hand


def test_input_scale_is_ones_for_a_plain_mlp_and_the_adapters_for_an_ensemble():
    mlp = built("mlp")
    assert torch.equal(mlp.input_scale(), torch.ones(K, 1, mlp.hidden[0].weight.shape[1]))
    ensemble = built("ensemble")
    with torch.no_grad():
        ensemble.adapter[:, 0] = 4.0  # E = 3 members: 4, -2, -2 -> sqrt(24 / 3)
        ensemble.adapter[:, 1:] = -2.0
        scale = ensemble.input_scale()
    width = ensemble.adapter.shape[-1]
    torch.testing.assert_close(scale, torch.full((K, 1, width), 8.0**0.5))


def test_reset_member_initialises_one_member_from_its_seed(network):
    before = {name: value.clone() for name, value in network.state_dict().items()}
    network.reset_member(0, seed=99)
    again = {name: value.clone() for name, value in network.state_dict().items()}
    network.reset_member(0, seed=99)
    for name, value in network.state_dict().items():
        assert torch.equal(value, again[name])  # the seed alone decides
        if value.dim() and value.shape[0] == K and name != "encoder.indicator_columns":
            assert torch.equal(value[1], before[name][1])  # member 1 untouched


def test_a_fitted_estimator_holds_tabular_networks():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    for hidden in ("default", "wide"):
        fitted = TabNNClassifier(hidden=hidden, epochs=1).fit(X, y)
        assert isinstance(fitted.model_, TabularNetwork)
        assert isinstance(fitted.inference_model_, TabularNetwork)


@pytest.mark.parametrize(
    "options",
    [{"ensemble_size": 2}, {"numeric_embedding": "periodic"}],
    ids=["ensemble_size", "numeric_embedding"],
)
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_a_norm_is_refused_for_the_ensemble_network_where_configurations_are_built(norm, options):
    prep = Preprocessor.fit(frame(), ["a", "b"], ["colour", "city"])
    with pytest.raises(UsageError, match=f"norm '{norm}' .* efficient ensemble network"):
        build_config(prep, 1, norm=norm, **options)
