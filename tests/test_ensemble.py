"""The default network (``nn.ensemble``) and the engine's guarantees around it: the
ensemble's mean probability, members of a stack that train as if alone, no global state,
and the public-API kernels that stand in for torch's private ones."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tabnn import TabNNClassifier
from tabnn.engine.config import FitSpec, Member, TensorData, TrainConfig
from tabnn.engine.kernels import KERNELS, Kernels, private_kernel_works
from tabnn.engine.train import fit_stack
from tabnn.estimator.params import train_config
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import build_config, embedding_dim
from tabnn.nn.ensemble import EnsembleMLP, build_network, ensemble_logits

CPU = torch.device("cpu")


def test_ensemble_logits_give_the_members_mean_probability():
    generator = torch.Generator().manual_seed(0)
    logits = 8 * torch.randn(2, 5, 7, 3, generator=generator, dtype=torch.float64)
    mean_softmax = torch.softmax(logits, -1).mean(1)
    torch.testing.assert_close(torch.softmax(ensemble_logits(logits, True), -1), mean_softmax)
    mean_sigmoid = torch.sigmoid(logits).mean(1)
    torch.testing.assert_close(torch.sigmoid(ensemble_logits(logits, False)), mean_sigmoid)
    certain = torch.full((1, 3, 1, 1), 200.0)  # sigmoid rounds to 1: the logit stays finite
    assert torch.isfinite(ensemble_logits(certain, False)).all()


def table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + x[:, 1] > 0).astype(np.float32)
    return x, y


def ensemble_stack(x, row_sets, **options):
    columns = [f"x{j}" for j in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=columns)
    preps = [Preprocessor.fit(frame.iloc[r], columns, [], scaling="clipped") for r in row_sets]
    config = build_config(
        preps[0], 1, preset=[16, 16], n_members=len(preps), task="binary",
        ensemble_size=4, **{"numeric_embedding": "periodic", **options},
    )  # fmt: skip
    model = build_network(config)
    for k, (prep, rows) in enumerate(zip(preps, row_sets)):
        model.encoder.set_statistics(k, prep)
        model.fit_inputs(k, x, rows)  # the piecewise-linear bins, if any
    return model


def test_folds_of_an_ensemble_train_in_one_stack_as_if_alone():
    x, y = table()
    data = TensorData.from_arrays(x, np.zeros((len(x), 0), dtype=np.int64), y, CPU)
    rows = [np.arange(0, 200), np.arange(100, 300)]
    val = [np.arange(200, 300), np.arange(0, 100)]
    members = [Member(r, v, s) for r, v, s in zip(rows, val, [5, 9])]
    config = TrainConfig(epochs=6, batch_size=32, lr=0.01, patience=3, label_smoothing=0.1)
    # no dropout: its masks come from one random stream for the whole stack
    stack = ensemble_stack(x, rows)
    assert isinstance(stack, EnsembleMLP)
    history = fit_stack(FitSpec(stack, data, members, "binary", config))
    for k in range(2):
        alone = ensemble_stack(x, [rows[k]])
        alone_history = fit_stack(FitSpec(alone, data, [members[k]], "binary", config))
        assert history.best_epoch[k] == alone_history.best_epoch[0]
        for name, value in alone.state_dict().items():
            if value.dim() and name != "encoder.indicator_columns":
                torch.testing.assert_close(stack.state_dict()[name][k], value[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("embedding", ["periodic", "ple"])
def test_members_left_training_alone_after_one_stops_train_as_if_alone(embedding):
    """Once a member stops (here halted after two epochs, as a pruned trial), an epoch
    computes only the others (``steps.LiveMembers``): each still ends as it would alone,
    with its own label smoothing."""
    x, y = table()
    data = TensorData.from_arrays(x, np.zeros((len(x), 0), dtype=np.int64), y, CPU)
    rows = [np.arange(0, 200), np.arange(100, 300), np.arange(50, 250)]
    val = [np.arange(200, 300), np.arange(0, 100), np.arange(250, 300)]
    smoothing = [0.0, 0.1, 0.2]
    members = [Member(r, v, s, label_smoothing=ls) for r, v, s, ls in
               zip(rows, val, [5, 9, 2], smoothing)]  # fmt: skip
    config = TrainConfig(epochs=6, batch_size=32, lr=0.01, patience=100)
    options = {"numeric_embedding": embedding}
    stack = ensemble_stack(x, rows, **options)
    halt = lambda record: [0] if record["epoch"] == 2 else None  # noqa: E731
    history = fit_stack(FitSpec(stack, data, members, "binary", config, on_epoch=halt))
    assert [r["train_loss"][0] is None for r in history.epochs] == [False] * 2 + [True] * 4
    for k in range(3):
        alone = ensemble_stack(x, [rows[k]], **options)
        own = replace(config, epochs=2 if k == 0 else 6, label_smoothing=smoothing[k])
        member = Member(rows[k], val[k], members[k].seed)
        fit_stack(FitSpec(alone, data, [member], "binary", own))
        for name, value in alone.state_dict().items():
            if value.dim() and name != "encoder.indicator_columns":
                torch.testing.assert_close(stack.state_dict()[name][k], value[0], atol=1e-5, rtol=0)


def test_a_fit_leaves_no_global_torch_state_behind():
    x, y = table()
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    precision = torch.backends.mkldnn.matmul.fp32_precision
    TabNNClassifier(epochs=3, random_state=4).fit(x, y)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert torch.backends.mkldnn.matmul.fp32_precision == precision


def test_default_model_is_reproducible_and_beats_chance():
    x, y = table(n=400, seed=1)
    first = TabNNClassifier(epochs=15, random_state=2).fit(x[:300], y[:300])
    second = TabNNClassifier(epochs=15, random_state=2).fit(x[:300], y[:300])
    np.testing.assert_array_equal(first.predict_proba(x[300:]), second.predict_proba(x[300:]))
    assert first.model_config_.network == "ensemble"
    assert (first.predict(x[300:]) == y[300:]).mean() > 0.8


@pytest.mark.parametrize("categories, one_hot", [(16, True), (17, False)])
def test_one_hot_up_to_sixteen_categories(categories, one_hot):
    # the cardinality counts the code for unknown and missing values besides the categories
    assert (embedding_dim(categories + 1) == 0) is one_hot


def test_clipped_scaling_keeps_outliers_in_order_within_three():
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0, 1e6, -1e9]})
    prep = Preprocessor.fit(frame, ["v"], [], scaling="clipped")
    config = build_config(prep, 1, preset=[4], ensemble_size=2, task="binary")
    network = build_network(config)
    network.encoder.set_statistics(0, prep)
    values = torch.tensor(frame.values, dtype=torch.float32)[None]
    scaled = network.encoder.numeric(values)[0, :, 0]
    assert scaled.abs().max() <= 3 and torch.all(scaled[[0, 1, 2, 3]].diff() > 0)
    assert scaled[4] > scaled[3] and scaled[5] < scaled[0]


# --- the public-API stand-ins for torch's private kernels ------------------------------

PRIVATE = all(private_kernel_works(name, "cpu") for name in KERNELS)  # else nothing to compare


def random_tensors(seed, shapes):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=generator) for s in shapes]


@pytest.mark.skipif(not PRIVATE, reason="this torch has no private fused kernels to compare")
@pytest.mark.parametrize("decoupled", [True, False])
def test_public_adam_equals_the_fused_kernel(decoupled):
    shapes = [(3, 4), (3, 1, 5)]
    results = []
    for private in (True, False):
        weights = random_tensors(0, shapes)
        moments = [torch.zeros_like(w) for w in weights]
        squares = [torch.zeros_like(w) for w in weights]
        for count in range(1, 4):
            grads = random_tensors(count, shapes)
            steps = [torch.tensor(float(count)) for _ in weights]
            Kernels(private).adam_(
                weights, grads, moments, squares, steps, lr=0.01, beta1=0.9, beta2=0.95,
                weight_decay=0.1, eps=1e-8, decoupled=decoupled,
            )  # fmt: skip
        results.append(weights)
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(not PRIVATE, reason="this torch has no private fused kernels to compare")
def test_public_list_operations_equal_the_private_ones():
    outputs = []
    for private in (True, False):
        kernels = Kernels(private)
        a, b = random_tensors(0, [(2, 3), (4,)]), random_tensors(1, [(2, 3), (4,)])
        kernels.mul_(a, [torch.tensor(2.0), torch.tensor(0.5)])
        kernels.add_(b, 1)
        kernels.copy_(a[:1], b[:1])
        grad, output = random_tensors(2, [(5, 6), (5, 6)])
        outputs.append([*a, *b, kernels.relu_backward(grad, F.relu(output))])
    for ours, theirs in zip(*outputs):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("network", ["mlp", "ensemble"])
def test_a_fit_with_public_kernels_trains_the_same_model(network):
    x, y = table()
    data = TensorData.from_arrays(x, np.zeros((len(x), 0), dtype=np.int64), y, CPU)
    members = [Member(np.arange(0, 200), np.arange(200, 300), 1)]
    config = TrainConfig(epochs=4, batch_size=32, lr=0.01, grad_clip=0.5)
    states = []
    for private in (True, False):
        if network == "ensemble":
            model = ensemble_stack(x, [np.arange(0, 200)])
        else:
            columns = ["x0", "x1", "x2"]
            prep = Preprocessor.fit(pd.DataFrame(x[:200], columns=columns), columns, [])
            model = build_network(build_config(prep, 1, preset=[16, 8]))
            model.encoder.set_statistics(0, prep)
        model.dropout.p = 0.2  # the same masks on both runs: one generator per fit
        fit_stack(FitSpec(model, data, members, "binary", config, private_kernels=private))
        states.append(model.state_dict())
    for name, value in states[0].items():
        torch.testing.assert_close(states[1][name], value, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("rows", "batch", "epochs", "lr"),
    [
        (40, 32, 200, 3e-3 * 0.5**1.5),
        (150, 32, 150, 3e-3 * 0.5**1.5),
        (4_000, 128, 24, 3e-3 * 0.5**0.5),
        (16_000, 256, 15, 3e-3),
    ],
)
def test_the_default_design_scales_batch_lr_and_epochs_with_the_rows(rows, batch, epochs, lr):
    config = train_config(TabNNClassifier(), rows)
    assert (config.batch_size, config.epochs) == (batch, epochs)
    assert config.lr == pytest.approx(lr)


def test_auto_settings_of_the_plain_designs_and_values_set_by_hand_stay_as_before():
    plain = train_config(TabNNClassifier(hidden=[64]), 4_000)
    assert (plain.batch_size, plain.epochs, plain.lr) == (128, 200, 1e-3)
    chosen = train_config(TabNNClassifier(batch_size=64, epochs=7, lr=0.01), 4_000)
    assert (chosen.batch_size, chosen.epochs, chosen.lr) == (64, 7, 0.01)
