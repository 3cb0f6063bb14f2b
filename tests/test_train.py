"""The training engine: independent members, seeds, early stopping, losses, devices."""

import copy
import threading

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from tabnn.engine import cpu, inputs
from tabnn.engine.config import FitSpec, Member, TensorData, TrainConfig, device_of
from tabnn.engine.cpu import cpu_matmuls_for, cpu_threads_for, onednn_is_exact
from tabnn.engine.inputs import DeviceInputs, padded_rows
from tabnn.engine.optim import FlatParameters, GradientClipper, StackedAdam
from tabnn.engine.steps import LossFunction, is_correct
from tabnn.engine.train import EarlyStopping, fit_stack, hand_written, lr_factor
from tabnn.errors import UsageError
from tabnn.features.preprocess import Preprocessor
from tabnn.nn.config import build_config
from tabnn.nn.forward import predict_logits
from tabnn.nn.mlp import Dropout, StackedNorm, TabularMLP

CPU = torch.device("cpu")


@torch.no_grad()
def evaluate_members(model, data, rows, mask, loss_fn, task, chunk=8192):
    """Reference validation loss and accuracy per member (K,): the plain loop the
    engine's prepared ``Validation`` must agree with."""
    # only batch norm and dropout behave differently in evaluation
    modal = [m for m in model.modules() if isinstance(m, (StackedNorm, Dropout))]
    for module in modal:
        module.training = False
    total_loss = torch.zeros(rows.shape[0], device=rows.device)
    total_weight = torch.zeros_like(total_loss)
    correct = torch.zeros_like(total_loss)
    for start in range(0, rows.shape[1], chunk):
        r, m = rows[:, start : start + chunk], mask[:, start : start + chunk]
        logits = model(data.x_num[r], data.x_cat[r])
        y = data.y[r]
        loss, weight = loss_fn(logits, y)
        total_loss += (loss * weight * m).sum(1)
        total_weight += (weight * m).sum(1)
        correct += (is_correct(logits, y, task) * m).sum(1)
    for module in modal:
        module.training = True
    return total_loss / total_weight.clamp_min(1e-12), correct / mask.sum(1).clamp_min(1)


def table(n=400, features=4, seed=0):
    """Numeric rows and a binary label that needs a hidden layer (x0 + x1^2 > 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(np.float32)
    return x, y


def stack_model(x, row_sets, *, hidden=(16, 8), n_outputs=1, **options):
    """A stack with one member per row set, each scaling with statistics of its own rows."""
    columns = [f"x{j}" for j in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=columns)
    preps = [Preprocessor.fit(frame.iloc[rows], columns, []) for rows in row_sets]
    config = build_config(preps[0], n_outputs, preset=list(hidden), n_members=len(preps), **options)
    model = TabularMLP(config)
    for k, prep in enumerate(preps):
        model.encoder.set_statistics(k, prep)
    return model


def tensors(x, y):
    return TensorData.from_arrays(x, np.zeros((len(x), 0), dtype=np.int64), y, CPU)


def member_state(model, k):
    """Member k's slice of every per-member tensor (weights, biases, norm statistics)."""
    members = model.config.n_members
    return {
        name: value[k]
        for name, value in model.state_dict().items()
        if value.dim() and value.shape[0] == members and name != "encoder.indicator_columns"
    }


# --- members are independent -------------------------------------------------------

# row counts 300, 60 and 195 with batches of 32: 10, 2 and 7 steps an epoch, so the two
# shorter members sit out the last 8 and 3 steps of every epoch of the stack
ROWS = [np.arange(0, 300), np.arange(100, 160), np.arange(200, 395)]
VAL_ROWS = [np.arange(300, 400), np.arange(0, 50), np.arange(0, 100)]
SEEDS = [11, 7, 3]


@pytest.mark.parametrize(
    "options, config",
    [
        ({}, {}),
        ({}, {"grad_clip": 0.05}),  # tiny: clipping acts at every step
        ({"norm": "batch"}, {}),
        ({"norm": "layer"}, {"optimizer": "adam", "weight_decay": 0.01}),
        ({}, {"schedule": "constant", "warmup_epochs": 0, "lr": 0.05, "patience": 3}),
    ],
    ids=["adamw-cosine", "grad-clip", "batch-norm", "layer-norm-adam-l2", "early-stopping"],
)
def test_members_train_as_if_alone(options, config):
    settings = {"epochs": 25, "batch_size": 32, "lr": 0.01, "patience": 5, **config}
    x, y = table()
    data = tensors(x, y)
    members = [Member(r, v, s) for r, v, s in zip(ROWS, VAL_ROWS, SEEDS)]
    stack = stack_model(x, ROWS, **options)
    history = fit_stack(FitSpec(stack, data, members, "binary", TrainConfig(**settings)))
    for k, member in enumerate(members):
        alone = stack_model(x, [ROWS[k]], **options)
        alone_history = fit_stack(FitSpec(alone, data, [member], "binary", TrainConfig(**settings)))
        assert history.best_epoch[k] == alone_history.best_epoch[0]
        stacked_losses = [r["val_loss"][k] for r in history.epochs[: len(alone_history.epochs)]]
        alone_losses = [r["val_loss"][0] for r in alone_history.epochs]
        np.testing.assert_allclose(stacked_losses, alone_losses, rtol=1e-5)
        for name, value in member_state(alone, 0).items():
            torch.testing.assert_close(
                member_state(stack, k)[name], value, atol=1e-5, rtol=0, msg=name
            )


def test_early_stopping_members_stop_on_their_own():
    x, y = table()
    members = [Member(r, v, s) for r, v, s in zip(ROWS, VAL_ROWS, SEEDS)]
    config = TrainConfig(epochs=60, batch_size=32, lr=0.05, schedule="constant", patience=3)
    history = fit_stack(FitSpec(stack_model(x, ROWS), tensors(x, y), members, "binary", config))
    stopped_at = [e + config.patience for e in history.best_epoch]
    assert len(set(stopped_at)) > 1  # the test needs members that stop at different epochs
    for k, last in enumerate(stopped_at):
        # a stopped member sits out the rest: no training loss, a frozen validation loss
        assert all(r["train_loss"][k] is None for r in history.epochs[last:])
        assert len({r["val_loss"][k] for r in history.epochs[last - 1 :]}) == 1


@pytest.mark.parametrize("flat", [False, True], ids=["tensors", "flat-buffer"])
def test_stacked_adam_matches_torch_and_skips_members_that_sit_out(flat):
    torch.manual_seed(0)
    grads = [torch.randn(2, 3, 4) for _ in range(6)]
    for decoupled, torch_kind in [(True, torch.optim.AdamW), (False, torch.optim.Adam)]:
        ours = torch.nn.Parameter(torch.randn(2, 3, 4))
        theirs = [torch.nn.Parameter(ours.detach()[k].clone()) for k in range(2)]
        buffer = FlatParameters([ours]) if flat else None
        optimizer = StackedAdam([ours], weight_decay=0.1, decoupled=decoupled, flat=buffer)
        references = [torch_kind([p], lr=0.01, weight_decay=0.1) for p in theirs]
        for step, grad in enumerate(grads):
            # both members step together twice, then member 1 sits out step 2 and
            # takes a larger learning rate from then on
            active = [True, step != 2]
            lrs = [0.01, 0.01 if step < 2 else 0.03]
            if flat:
                ours.grad.copy_(grad)  # the gradient lives in the flat buffer
            else:
                ours.grad = grad.clone()
            optimizer.step(lrs, active)
            for k, (p, reference) in enumerate(zip(theirs, references)):
                if active[k]:
                    p.grad = grad[k].clone()
                    reference.param_groups[0]["lr"] = lrs[k]
                    reference.step()
        for k in range(2):
            torch.testing.assert_close(ours.detach()[k], theirs[k].detach())


def test_gradient_clipper_clips_each_member_on_its_own():
    weight = torch.nn.Parameter(torch.zeros(2, 3))
    bias = torch.nn.Parameter(torch.zeros(2, 1))
    weight.grad = torch.tensor([[30.0, 0.0, 40.0], [0.3, 0.0, 0.0]])
    bias.grad = torch.tensor([[0.0], [0.4]])
    GradientClipper([weight.grad, bias.grad])(max_norm=1.0)
    norms = torch.cat([weight.grad, bias.grad], dim=1).norm(dim=1)
    torch.testing.assert_close(norms, torch.tensor([1.0, 0.5]), atol=1e-5, rtol=0)
    torch.testing.assert_close(weight.grad[0], torch.tensor([0.6, 0.0, 0.8]), atol=1e-5, rtol=0)


# --- the engine's fast paths agree with the reference paths ----------------------------


def task_data(task, n=300, seed=0):
    """Rows and targets for a task, with a 1:3 class imbalance for the weights to matter."""
    x, _ = table(n=n, seed=seed)
    if task == "binary":
        return x, (x[:, 0] > 0.6).astype(np.float32), 1
    if task == "multiclass":
        return x, np.digitize(x[:, 0], [-0.5, 0.6]), 3
    labels = np.stack([x[:, 0] > 0.6, x[:, 1] > 0, x[:, 0] + x[:, 2] > 0], 1)
    return x, labels.astype(np.float32), 3


CLASS_WEIGHTS = {
    "binary": torch.tensor([0.7, 2.0]),
    "multiclass": torch.tensor([1.0, 0.5, 2.5]),
    "multilabel": torch.tensor([2.0, 1.0, 0.5]),  # pos_weight
}


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize(
    "activation, dropout, weighted, clip",
    [
        ("relu", 0.0, False, 0.0),
        ("relu", 0.0, True, 0.05),
        ("relu", 0.3, False, 0.0),
        ("identity", 0.2, True, 0.0),
    ],
    ids=["relu", "relu-weighted-clipped", "relu-dropout", "identity-dropout-weighted"],
)
def test_hand_written_backward_trains_as_autograd_does(task, activation, dropout, weighted, clip):
    # uneven members (padding, members sitting steps out), an uneven last batch, one
    # member without validation rows, early stopping: everything a stack step can meet
    x, y, n_outputs = task_data(task)
    rows = [np.arange(0, 200), np.arange(50, 111), np.arange(100, 300)]
    val = [np.arange(200, 300), np.arange(0, 40), np.arange(0, 0)]
    members = [Member(r, v, s) for r, v, s in zip(rows, val, [3, 1, 2])]
    config = TrainConfig(epochs=12, batch_size=32, lr=0.01, grad_clip=clip, patience=4)
    weights = CLASS_WEIGHTS[task] if weighted else None
    results = []
    for backward in ("manual", "autograd"):
        model = stack_model(
            x, rows, hidden=(16, 8), n_outputs=n_outputs, activation=activation, dropout=dropout
        )
        assert model.plain
        history = fit_stack(
            FitSpec(
                model, tensors(x, y), members, task, config, class_weight=weights, backward=backward
            )
        )
        results.append((model, history))
    (manual, manual_history), (reference, reference_history) = results
    assert manual_history.best_epoch == reference_history.best_epoch
    for ours, theirs in zip(manual_history.epochs, reference_history.epochs):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(
                np.array(ours[key], dtype=float), np.array(theirs[key], dtype=float), rtol=1e-5
            )
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(manual.state_dict()[name], value, atol=1e-5, rtol=0)


def test_manual_backward_needs_a_plain_network_and_backward_is_checked():
    x, y = table(n=40)
    rows = np.arange(40)
    member = [Member(rows, rows[:0], 0)]
    batch_norm = stack_model(x, [rows], norm="batch")
    with pytest.raises(UsageError, match="backward='manual' needs a plain network"):
        fit_stack(
            FitSpec(batch_norm, tensors(x, y), member, "binary", TrainConfig(), backward="manual")
        )
    with pytest.raises(UsageError, match="backward must be one of auto, autograd, manual"):
        fit_stack(
            FitSpec(
                stack_model(x, [rows]), tensors(x, y), member, "binary", TrainConfig(), backward="x"
            )
        )


def test_large_epochs_take_the_step_by_step_paths_with_the_same_result(monkeypatch):
    # below these sizes the engine encodes the table once, gathers a whole epoch's batches
    # at once and computes the loss once an epoch; above them, step by step
    x, y, _ = task_data("multiclass")
    rows = [np.arange(0, 200), np.arange(100, 300)]
    members = [Member(r, np.arange(0, 60), s) for r, s in zip(rows, [0, 1])]
    config = TrainConfig(epochs=4, batch_size=32, lr=0.01)
    results = []
    for small_buffers in (False, True):
        if small_buffers:
            monkeypatch.setattr(inputs, "ENCODED_BYTES", 0)
            monkeypatch.setattr(inputs, "EPOCH_BYTES", 0)
        model = stack_model(x, rows, n_outputs=3)
        history = fit_stack(FitSpec(model, tensors(x, y), members, "multiclass", config))
        results.append((model.state_dict(), history.epochs))
    (state, epochs), (small_state, small_epochs) = results
    assert epochs == small_epochs
    for name, value in state.items():
        assert torch.equal(small_state[name], value), name


def mixed_table(n=120, seed=0):
    """Numeric columns with missing values, a one-hot and an embedded categorical."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "b": rng.lognormal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "city": [f"c{i}" for i in rng.integers(0, 40, n)],
        }
    )
    return frame, ["a", "b"], ["colour", "city"]


@pytest.mark.parametrize("scaling", ["standard", "quantile"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-statistics", "per-member"])
@pytest.mark.parametrize("table_bytes", [1 << 30, 0], ids=["encoded-once", "per-batch"])
def test_encoded_inputs_are_the_encoders_values(scaling, shared, table_bytes):
    frame, numeric, categorical = mixed_table()
    halves = [np.arange(0, 60), np.arange(60, 120)]
    fitted_on = [halves[0], halves[0]] if shared else halves
    preps = [
        Preprocessor.fit(frame.iloc[r], numeric, categorical, scaling=scaling) for r in fitted_on
    ]
    model = TabularMLP(build_config(preps[0], 1, n_members=2))
    for k, prep in enumerate(preps):
        model.reset_member(k, k)
        model.encoder.set_statistics(k, prep)
    assert model.encoder.has_embeddings and not model.plain
    assert model.encoder.shares_statistics() == shared
    x_num, x_cat = preps[0].transform(frame)
    data = TensorData.from_arrays(x_num, x_cat, np.zeros(len(frame)), CPU)
    inputs = DeviceInputs(model, data, max_bytes=table_bytes)
    assert (inputs.table is None) == (table_bytes == 0)
    rows = torch.tensor([[5, 0, 119, 7], [3, 3, 64, 100]])
    with torch.no_grad():
        expected = model.encoder(data.x_num[rows], data.x_cat[rows])
        assert torch.equal(inputs(rows), expected)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_history_holds_the_validation_loss_of_the_trained_model(norm):
    # the engine validates on inputs it encoded once; embeddings train, so those must be
    # looked up afresh every epoch: the history must match a fresh evaluation
    frame, numeric, categorical = mixed_table(n=200)
    y = (frame["b"] > 1).to_numpy(np.float32)
    prep = Preprocessor.fit(frame, numeric, categorical)
    model = TabularMLP(build_config(prep, 1, preset=[16], norm=norm))
    model.encoder.set_statistics(0, prep)
    assert model.encoder.has_embeddings
    x_num, x_cat = prep.transform(frame)
    data = TensorData.from_arrays(x_num, x_cat, y, CPU)
    train_rows, val_rows = np.arange(150), np.arange(150, 200)
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, restore_best=False)
    history = fit_stack(FitSpec(model, data, [Member(train_rows, val_rows, 0)], "binary", config))
    rows, mask = padded_rows([val_rows], CPU)
    loss, accuracy = evaluate_members(model, data, rows, mask, LossFunction("binary"), "binary")
    assert loss.item() == history.epochs[-1]["val_loss"][0]
    assert accuracy.item() == history.epochs[-1]["val_accuracy"][0]


def test_parameters_get_their_own_storage_back_after_a_fit():
    x, y = table(n=100)
    rows = np.arange(100)
    model = stack_model(x, [rows, rows])
    before = {name: p for name, p in model.named_parameters()}
    members = [Member(rows, rows[:0], seed) for seed in (0, 1)]
    fit_stack(FitSpec(model, tensors(x, y), members, "binary", TrainConfig(epochs=2)))
    pointers = set()
    for name, p in model.named_parameters():
        assert p is before[name], name  # the same Parameter objects, trained in place
        assert p.is_contiguous() and p.grad is None, name
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size(), name
        pointers.add(p.data_ptr())
    assert len(pointers) == len(before)


def test_flat_parameters_are_views_into_one_buffer_while_training():
    layer = torch.nn.Parameter(torch.randn(2, 3, 4))
    bias = torch.nn.Parameter(torch.randn(2, 1, 4))
    values = [layer.detach().clone(), bias.detach().clone()]
    flat = FlatParameters([layer, bias])
    assert torch.equal(layer, values[0]) and torch.equal(bias, values[1])
    flat.weight.zero_()
    assert layer.abs().sum() == 0 and bias.abs().sum() == 0
    flat.grad.fill_(1.0)
    assert layer.grad.eq(1).all() and bias.grad.eq(1).all()
    flat.release()
    flat.weight.fill_(5.0)
    assert layer.abs().sum() == 0 and layer.grad is None


# --- CPU matmul libraries --------------------------------------------------------------


def test_cpu_matmuls_use_onednn_only_for_large_products_and_restore_the_setting():
    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    prep = Preprocessor.fit(pd.DataFrame({"a": [1.0, 2.0]}), ["a"], [])
    small = TabularMLP(build_config(prep, 1, preset=[8]))
    large = TabularMLP(build_config(prep, 1, preset=[512, 512]))
    with cpu_matmuls_for(small, 32, CPU) as matmuls:
        assert matmuls.layers == [False, False] and matmul.fp32_precision == before
    with cpu_matmuls_for(large, 512, CPU) as matmuls:
        if not onednn_is_exact([(1, 512, 512, 512)]):
            pytest.skip("oneDNN does not compute float32 products in float32 here")
        assert matmuls.layers == [False, True, False]  # 1->512 and 512->1 are small
        assert matmul.fp32_precision == "bf16"  # the whole network's choice
        matmuls.select(False)
        assert matmul.fp32_precision == before
    assert matmul.fp32_precision == before
    with cpu_matmuls_for(large, 512, torch.device("cuda")) as matmuls:
        assert not any(matmuls.layers) and matmul.fp32_precision == before


def test_onednn_and_mkl_train_the_same_model(monkeypatch):
    if not onednn_is_exact([(1, 64, 256, 256)]):
        pytest.skip("oneDNN does not compute float32 products in float32 here")
    x, y = table(n=1024, features=32)
    rows, val = np.arange(768), np.arange(768, 1024)
    config = TrainConfig(epochs=2, batch_size=256, lr=0.01)
    states = []
    for threshold in (cpu.ONEDNN_MATMUL_FLOPS, float("inf")):
        monkeypatch.setattr(cpu, "ONEDNN_MATMUL_FLOPS", threshold)
        model = stack_model(x, [rows], hidden=(256, 256))
        fit_stack(FitSpec(model, tensors(x, y), [Member(rows, val, 0)], "binary", config))
        states.append(model.state_dict())
    for name, value in states[1].items():
        torch.testing.assert_close(states[0][name], value, atol=1e-4, rtol=1e-4)


# --- seeds ---------------------------------------------------------------------------


def fit_seeded(seed, x, y):
    rows, val = np.arange(300), np.arange(300, 400)
    model = stack_model(x, [rows], hidden=(16,), dropout=0.2, norm="batch")
    config = TrainConfig(epochs=5, batch_size=32, lr=0.01)
    fit_stack(FitSpec(model, tensors(x, y), [Member(rows, val, seed)], "binary", config))
    return model


def test_same_seed_same_model_and_predictions():
    x, y = table()
    first, second, other = fit_seeded(5, x, y), fit_seeded(5, x, y), fit_seeded(6, x, y)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    no_cat = np.zeros((len(x), 0))
    predictions = [predict_logits(m, x, no_cat, CPU) for m in (first, second, other)]
    assert torch.equal(predictions[0], predictions[1])
    assert not torch.allclose(predictions[0], predictions[2])
    assert not torch.allclose(first.hidden[0].weight, other.hidden[0].weight)


# --- early stopping ----------------------------------------------------------------


def noisy_table(n=240, features=20, seed=1):
    """Labels that are pure noise: a large network overfits 40 training rows quickly."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), rng.integers(0, 2, n)


OVERFIT = {"batch_size": 20, "lr": 0.03, "schedule": "constant", "warmup_epochs": 0}


def test_early_stopping_restores_the_best_epoch():
    x, y = noisy_table()
    data = tensors(x, y.astype(np.float32))
    train, val = np.arange(40), np.arange(40, 240)
    model = stack_model(x, [train], hidden=(64,))
    config = TrainConfig(epochs=200, patience=5, weight_decay=0.0, **OVERFIT)
    history = fit_stack(FitSpec(model, data, [Member(train, val, 0)], "binary", config))
    val_losses = [r["val_loss"][0] for r in history.epochs]
    best = history.best_epoch[0]
    assert len(history.epochs) == best + config.patience < config.epochs
    assert best == int(np.argmin(val_losses)) + 1
    assert history.best_val_loss[0] == min(val_losses)
    val_rows, val_mask = padded_rows([val], CPU)
    loss, _ = evaluate_members(model, data, val_rows, val_mask, LossFunction("binary"), "binary")
    assert loss.item() == val_losses[best - 1]  # exactly: the same weights, the same sums
    logits = predict_logits(model, x[val], np.zeros((len(val), 0)), CPU)[0, :, 0]
    expected = F.binary_cross_entropy_with_logits(logits, data.y[val]).item()
    assert expected == pytest.approx(val_losses[best - 1], rel=1e-5)


def test_member_without_validation_trains_all_epochs_and_keeps_its_last_weights():
    x, y = noisy_table()
    train = np.arange(40)
    members = [Member(train, np.arange(40, 240), 0), Member(train, train[:0], 1)]
    model = stack_model(x, [train, train], hidden=(64,))
    snapshots = []

    def keep(record):
        snapshots.append(copy.deepcopy(model.state_dict()))

    config = TrainConfig(epochs=40, patience=3, weight_decay=0.0, **OVERFIT)
    history = fit_stack(
        FitSpec(model, tensors(x, y.astype(np.float32)), members, "binary", config, on_epoch=keep)
    )
    assert len(history.epochs) == config.epochs
    assert history.best_epoch[1] == config.epochs
    assert history.best_val_loss[1] is None
    assert all(r["val_loss"][1] is None for r in history.epochs)
    assert history.best_epoch[0] + config.patience < config.epochs
    best_state = snapshots[history.best_epoch[0] - 1]
    for name, value in model.state_dict().items():
        if value.dim() and value.shape[0] == 2 and name != "encoder.indicator_columns":
            assert torch.equal(value[0], best_state[name][0]), name
            assert torch.equal(value[1], snapshots[-1][name][1]), name


def test_restore_best_false_keeps_last_weights():
    x, y = noisy_table()
    train, val = np.arange(40), np.arange(40, 240)
    model = stack_model(x, [train], hidden=(64,))
    snapshots = []
    config = TrainConfig(epochs=30, patience=3, restore_best=False, **OVERFIT)
    history = fit_stack(
        FitSpec(
            model,
            tensors(x, y.astype(np.float32)),
            [Member(train, val, 0)],
            "binary",
            config,
            on_epoch=lambda record: snapshots.append(copy.deepcopy(model.state_dict())),
        )
    )
    assert len(history.epochs) > history.best_epoch[0]
    assert torch.equal(model.head.weight, snapshots[-1]["head.weight"])
    assert not torch.equal(model.head.weight, snapshots[history.best_epoch[0] - 1]["head.weight"])


# --- losses and heads ----------------------------------------------------------------


def test_binary_loss_is_bce_with_logits_on_one_logit():
    logits = torch.tensor([[[2.0], [-1.0], [0.5]]])
    y = torch.tensor([[1.0, 0.0, 0.0]])
    loss, weight = LossFunction("binary")(logits, y)
    torch.testing.assert_close(
        loss, F.binary_cross_entropy_with_logits(logits[..., 0], y, reduction="none")
    )
    torch.testing.assert_close(weight, torch.ones(1, 3))
    _, weight = LossFunction("binary", torch.tensor([0.5, 4.0]))(logits, y)
    torch.testing.assert_close(weight, torch.tensor([[4.0, 0.5, 0.5]]))


def test_multiclass_loss_is_cross_entropy_with_class_weights_per_row():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]]])
    y = torch.tensor([[0, 2]])
    class_weight = torch.tensor([1.0, 2.0, 3.0])
    loss, weight = LossFunction("multiclass", class_weight)(logits, y)
    torch.testing.assert_close(loss, F.cross_entropy(logits[0], y[0], reduction="none")[None])
    torch.testing.assert_close(weight, torch.tensor([[1.0, 3.0]]))
    # the weighted mean over rows is torch's weighted cross-entropy
    expected = F.cross_entropy(logits[0], y[0], weight=class_weight)
    torch.testing.assert_close((loss * weight).sum() / weight.sum(), expected)


def test_multilabel_loss_is_per_label_bce_with_positive_weights():
    logits = torch.tensor([[[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]]])
    y = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    pos_weight = torch.tensor([1.0, 2.0, 5.0])
    loss, weight = LossFunction("multilabel", pos_weight)(logits, y)
    expected = F.binary_cross_entropy_with_logits(
        logits, y, pos_weight=pos_weight, reduction="none"
    ).mean(-1)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(weight, torch.ones(1, 2))


@pytest.mark.parametrize(
    "task, n_outputs, target",
    [
        ("binary", 1, lambda x: (x[:, 0] > 0).astype(np.float32)),
        ("multiclass", 3, lambda x: np.digitize(x[:, 0], [-0.5, 0.5])),
        ("multilabel", 2, lambda x: np.stack([x[:, 0] > 0, x[:, 1] > 0], 1).astype(np.float32)),
    ],
    ids=["binary", "multiclass", "multilabel"],
)
def test_each_task_learns_and_returns_raw_logits(task, n_outputs, target):
    x, _ = table(n=300)
    y = target(x)
    train, val = np.arange(240), np.arange(240, 300)
    model = stack_model(x, [train], hidden=(32,), n_outputs=n_outputs)
    config = TrainConfig(epochs=30, batch_size=32, lr=0.02)
    history = fit_stack(FitSpec(model, tensors(x, y), [Member(train, val, 0)], task, config))
    assert history.epochs[-1]["train_loss"][0] < 0.5 * history.epochs[0]["train_loss"][0]
    assert history.epochs[-1]["val_accuracy"][0] > 0.85
    logits = predict_logits(model, x * 3, np.zeros((len(x), 0)), CPU)
    assert logits.shape == (1, len(x), n_outputs)
    assert logits.min() < 0 and logits.max() > 1  # no sigmoid or softmax inside


def minority_recall(task, x, y, class_weight):
    rows = np.arange(len(y))
    n_outputs = 1 if task == "binary" else int(y.max()) + 1
    model = stack_model(x, [rows], hidden=(16,), n_outputs=n_outputs)
    config = TrainConfig(epochs=15, batch_size=64, lr=0.01)
    data = tensors(x, y)
    fit_stack(
        FitSpec(model, data, [Member(rows, rows[:0], 0)], task, config, class_weight=class_weight)
    )
    logits = predict_logits(model, x, np.zeros((len(x), 0)), CPU)[0]
    predicted = (logits[:, 0] > 0).long() if task == "binary" else logits.argmax(1)
    minority = y == y.max()
    return (predicted.numpy()[minority] == y[minority]).mean()


@pytest.mark.parametrize("task", ["binary", "multiclass"], ids=["binary", "multiclass"])
def test_balanced_class_weight_raises_minority_recall(task):
    rng = np.random.default_rng(0)
    shares = [0.9, 0.1] if task == "binary" else [0.7, 0.2, 0.1]
    y = rng.choice(len(shares), size=1000, p=shares)
    x = (y[:, None] * 0.5 + rng.normal(size=(1000, 2))).astype(np.float32)  # overlapping
    counts = np.bincount(y)
    balanced = torch.tensor(len(y) / (len(counts) * counts), dtype=torch.float32)
    y = y.astype(np.float32) if task == "binary" else y
    plain = minority_recall(task, x, y, None)
    weighted = minority_recall(task, x, y, balanced)
    assert weighted > plain + 0.2


# --- schedule, padding, prediction ---------------------------------------------------


def test_lr_factor_warms_up_then_decays_to_zero():
    config = TrainConfig(epochs=10, warmup_epochs=2)
    factors = [lr_factor(config, step, 5) for step in range(50)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert factors[-1] < 0.01
    constant = TrainConfig(epochs=10, warmup_epochs=0, schedule="constant")
    assert {lr_factor(constant, step, 5) for step in range(50)} == {1.0}


def test_padded_rows_marks_the_real_entries():
    index, mask = padded_rows([np.array([4, 2, 9]), np.array([], dtype=int), np.array([7])], CPU)
    assert index.tolist() == [[4, 2, 9], [0, 0, 0], [7, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 0], [1, 0, 0]]


def test_predict_logits_in_chunks_equals_one_pass():
    x, _ = table(n=50)
    model = stack_model(x, [np.arange(50), np.arange(25)])
    for k in range(2):
        model.reset_member(k, k)
    no_cat = np.zeros((50, 0))
    whole = predict_logits(model, x, no_cat, CPU)
    assert whole.shape == (2, 50, 1)
    torch.testing.assert_close(predict_logits(model, x, no_cat, CPU, chunk=7), whole)
    assert predict_logits(model, x[:0], no_cat[:0], CPU).shape == (2, 0, 1)


def test_unknown_optimizer_is_a_usage_error():
    x, y = table(n=40)
    rows = np.arange(40)
    with pytest.raises(UsageError, match="optimizer must be adamw or adam; got 'sgd'"):
        fit_stack(
            FitSpec(
                stack_model(x, [rows]),
                tensors(x, y),
                [Member(rows, rows[:0], 0)],
                "binary",
                TrainConfig(optimizer="sgd"),
            )
        )


# --- devices and threads -------------------------------------------------------------


def test_auto_device_is_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device_of("auto").type == expected
    assert device_of("cpu") == CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"], ids=["cuda", "cuda-0"])
def test_cuda_without_cuda_is_a_usage_error(name):
    with pytest.raises(UsageError, match="PyTorch sees no CUDA device"):
        device_of(name)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", "cpu:0:1"], ids=str)
def test_unknown_device_is_a_usage_error(name):
    with pytest.raises(UsageError, match="device must be auto, cpu, cuda or cuda:N"):
        device_of(name)


def test_cpu_threads_for_small_steps_restores_the_setting():
    small = TabularMLP(
        build_config(Preprocessor.fit(pd.DataFrame({"a": [1.0, 2.0]}), ["a"], []), 1)
    )
    wide_table = Preprocessor.fit(pd.DataFrame({f"c{i}": [1.0, 2.0] for i in range(500)}),
                                  [f"c{i}" for i in range(500)], [])  # fmt: skip
    big = TabularMLP(build_config(wide_table, 1, preset=[2000, 2000]))
    torch.set_num_threads(3)
    try:
        with cpu_threads_for(small, 32, CPU):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        with pytest.raises(RuntimeError, match="inside"), cpu_threads_for(small, 32, CPU):
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 3
        with cpu_threads_for(big, 512, CPU):
            assert torch.get_num_threads() == 3
        with cpu_threads_for(small, 32, torch.device("cuda")):
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(1)


def test_fit_stack_runs_small_models_on_one_thread_and_restores():
    x, y = table(n=60)
    rows = np.arange(60)
    seen = []
    torch.set_num_threads(2)
    try:
        fit_stack(
            FitSpec(
                stack_model(x, [rows]),
                tensors(x, y),
                [Member(rows, rows[:0], 0)],
                "binary",
                TrainConfig(epochs=2),
                on_epoch=lambda record: seen.append(torch.get_num_threads()),
            )
        )
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_fits_in_two_threads_take_turns_and_leave_the_thread_count_as_it_was():
    """engine.cpu's policy is one lock: a second fit waits for the first, so neither can
    restore the other's settings out of order (and leave the process at one thread)."""
    x, y = table(n=60)
    rows = np.arange(60)
    order = []

    def fit(name: str) -> None:
        fit_stack(
            FitSpec(
                stack_model(x, [rows]), tensors(x, y), [Member(rows, rows[:0], 0)], "binary",
                TrainConfig(epochs=3), on_epoch=lambda record: order.append(name),
            )
        )  # fmt: skip

    torch.set_num_threads(2)
    try:
        threads = [threading.Thread(target=fit, args=(name,)) for name in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads), "a fit never got the policy"
        assert sorted(order) == list("aaabbb")
        assert order in (list("aaabbb"), list("bbbaaa"))  # one fit, then the other
        assert torch.get_num_threads() == 2
        seen = []
        later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        later.start()
        later.join()
        assert seen == [2]  # a thread started afterwards inherits no fit's setting
    finally:
        torch.set_num_threads(1)


def test_auto_takes_the_hand_written_pass_for_plain_networks_only():
    """benchmarks/engine_paths.py: the hand-written backward earns its keep on plain
    networks (W1, throughput); every other design trains by autograd."""
    x, y = table(n=60)
    rows = np.arange(60)
    members = [Member(rows, rows[:0], k) for k in range(5)]

    def spec(hidden, batch, **options):
        model = stack_model(x, [rows] * 5, hidden=hidden, **options)
        return FitSpec(model, tensors(x, y), members, "binary", TrainConfig(batch_size=batch))

    assert hand_written(spec((180,), 10))  # W1's wide network
    assert hand_written(spec((256, 256), 128))  # a 5-fold CV of 2x256
    assert not hand_written(spec((180,), 10, norm="batch"))  # not plain: autograd
    assert not hand_written(spec((180,), 10, activation="gelu"))
    forced = spec((180,), 10)
    forced.backward = "autograd"
    assert not hand_written(forced)


def test_early_stopping_ignores_crawling_gains_but_keeps_the_minimum():
    stopping = EarlyStopping([True], patience=3, min_delta=1e-3)
    losses = [0.5, 0.4, 0.39995, 0.3999, 0.39985]  # after epoch 2 only gains < min_delta
    for epoch, loss in enumerate(losses, start=1):
        improved = stopping.update(epoch, [loss])
        assert improved == [True]  # every new minimum is still the best epoch
    assert stopping.best_epoch == [5]
    assert stopping.stopped == [True]  # three epochs without a clear gain


def test_early_stopping_resets_patience_on_a_clear_gain():
    stopping = EarlyStopping([True, False], patience=2, min_delta=1e-3)
    for epoch, loss in enumerate([0.5, 0.6, 0.45, 0.46], start=1):
        stopping.update(epoch, [loss, loss])
    assert stopping.best_epoch == [3, 0]
    assert stopping.stopped == [False, False]  # member 2 has no validation rows


# --- members with their own settings (the trials of a search) -------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("backward", ["manual", "autograd"])
def test_members_with_their_own_lr_decay_and_smoothing_train_as_if_alone(task, backward):
    x, y, n_outputs = task_data(task, n=400)
    own = [(0.02, 1e-3, 0.0), (0.005, 0.1, 0.2), (0.01, 0.0, 0.05)]
    members = [
        Member(r, v, s, lr=lr, weight_decay=wd, label_smoothing=ls)
        for r, v, s, (lr, wd, ls) in zip(ROWS, VAL_ROWS, SEEDS, own)
    ]
    settings = {"epochs": 10, "batch_size": 32, "patience": 4}
    stack = stack_model(x, ROWS, n_outputs=n_outputs)
    history = fit_stack(FitSpec(stack, tensors(x, y), members, task, TrainConfig(**settings),
                        backward=backward))  # fmt: skip
    for k, (lr, wd, ls) in enumerate(own):
        alone = stack_model(x, [ROWS[k]], n_outputs=n_outputs)
        config = TrainConfig(**settings, lr=lr, weight_decay=wd, label_smoothing=ls)
        plain = Member(ROWS[k], VAL_ROWS[k], SEEDS[k])
        alone_history = fit_stack(
            FitSpec(alone, tensors(x, y), [plain], task, config, backward=backward)
        )
        assert history.best_epoch[k] == alone_history.best_epoch[0]
        for record, alone_record in zip(history.epochs, alone_history.epochs):
            for key in ("train_loss", "val_loss"):
                np.testing.assert_allclose(record[key][k], alone_record[key][0], rtol=1e-5)
        for name, value in member_state(alone, 0).items():
            torch.testing.assert_close(member_state(stack, k)[name], value, atol=1e-5, rtol=0)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_label_smoothing_trains_the_same_by_hand_and_by_autograd(task):
    x, y, n_outputs = task_data(task, n=400)
    config = TrainConfig(epochs=6, batch_size=32, lr=0.01, label_smoothing=0.15)
    models = []
    for backward in ("manual", "autograd"):
        model = stack_model(x, ROWS, n_outputs=n_outputs)
        members = [Member(r, v, s) for r, v, s in zip(ROWS, VAL_ROWS, SEEDS)]
        fit_stack(FitSpec(model, tensors(x, y), members, task, config, backward=backward))
        models.append(model)
    for name, value in models[1].state_dict().items():
        torch.testing.assert_close(models[0].state_dict()[name], value, atol=1e-5, rtol=0)


def test_members_returned_by_on_epoch_stop_now_and_keep_their_best_weights():
    x, y = table()
    members = [Member(r, v, s) for r, v, s in zip(ROWS, VAL_ROWS, SEEDS)]
    model = stack_model(x, ROWS)
    seen = []

    def prune_second_after_three(record):
        seen.append(record["train_loss"][1])
        return [1] if record["epoch"] == 3 else None

    history = fit_stack(
        FitSpec(model, tensors(x, y), members, "binary", TrainConfig(epochs=8, lr=0.01))
    )
    pruned = stack_model(x, ROWS)
    pruned_history = fit_stack(FitSpec(
        pruned, tensors(x, y), members, "binary", TrainConfig(epochs=8, lr=0.01),
        on_epoch=prune_second_after_three,
    ))  # fmt: skip
    assert seen[3:] == [None] * 5  # member 1 took no step after epoch 3
    assert pruned_history.best_epoch[1] <= 3 and len(history.epochs) == 8
    for k in (0, 2):  # the others train on untouched
        for name, value in member_state(model, k).items():
            torch.testing.assert_close(member_state(pruned, k)[name], value, atol=1e-6, rtol=0)
