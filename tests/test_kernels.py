"""tabnn.engine.kernels: a private torch kernel that fails or changed its arguments on the
installed torch is noticed by its probe, once per process, and its public version runs
instead, so a fit completes with the public path's numbers."""

import numpy as np
import pandas as pd
import pytest
import torch

from tabnn import TabNNClassifier
from tabnn.engine import kernels
from tabnn.engine.kernels import KERNELS, Kernels, private_kernel_works

# where each kernel's private torch function lives
PRIVATE_NAMES = {
    "mul_": (torch, "_foreach_mul_"),
    "copy_": (torch, "_foreach_copy_"),
    "add_": (torch, "_foreach_add_"),
    "relu_backward": (torch.ops.aten, "threshold_backward"),
    "adam_": (torch, "_fused_adam_"),
    "adamw_": (torch, "_fused_adamw_"),
}


@pytest.fixture(autouse=True)
def fresh_probes():
    """Each test probes the torch it patches; later tests probe the real one again."""
    private_kernel_works.cache_clear()
    yield
    private_kernel_works.cache_clear()


def changed_signature(*args, beta_one=None):  # as if a release renamed an argument
    raise TypeError("got an unexpected keyword argument")


def does_nothing(*args, **kwargs):  # runs, but computes something else
    return None


def break_kernel(monkeypatch, name, replacement=changed_signature):
    owner, attribute = PRIVATE_NAMES[name]
    monkeypatch.setattr(owner, attribute, replacement)


def run(name, kernels_):
    """What ``kernels_`` computes for kernel ``name`` on its probe's tiny inputs."""
    method = kernels_.adam_ if name.startswith("adam") else getattr(kernels_, name)
    return KERNELS[name][2](method, "cpu")


def test_every_private_kernel_passes_its_probe_on_this_torch():
    assert all(private_kernel_works(name, "cpu") for name in KERNELS)


@pytest.mark.parametrize("replacement", [changed_signature, does_nothing])
@pytest.mark.parametrize("name", list(KERNELS))
def test_a_broken_private_kernel_falls_back_to_its_public_version(monkeypatch, name, replacement):
    break_kernel(monkeypatch, name, replacement)
    ours, public = run(name, Kernels()), run(name, Kernels(use_private=False))
    for a, b in zip(ours, public, strict=True):
        assert torch.equal(a, b)
    works = {other: private_kernel_works(other, "cpu") for other in KERNELS}
    assert works == {other: other != name for other in KERNELS}  # the others stay private


def test_the_probe_calls_a_kernel_once_per_process(monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        raise TypeError("changed")

    break_kernel(monkeypatch, "add_", counted)
    steps = [torch.zeros(()) for _ in range(3)]
    for _ in range(5):
        Kernels().add_(steps, 1)
    assert len(calls) == 1 and private_kernel_works("add_", "cpu") is False
    assert all(float(s) == 5 for s in steps)


def test_public_only_kernels_never_call_a_private_one(monkeypatch):
    for name in KERNELS:
        break_kernel(monkeypatch, name, lambda *a, **k: pytest.fail("a private kernel ran"))
    for name in KERNELS:
        run(name, Kernels(use_private=False))


def table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, np.where(X.a - X.b > 0, "yes", "no")


def probabilities(**params):
    X, y = table()
    estimator = TabNNClassifier(epochs=6, batch_size=16, n_members=2, **params).fit(X, y)
    return estimator.predict_proba(X)


# the default design trains with autograd, the plain ReLU MLP with the hand-written backward
@pytest.mark.parametrize("params", [{}, {"hidden": "wide"}], ids=["default", "wide"])
def test_a_fit_with_broken_private_kernels_gives_the_public_paths_probabilities(
    monkeypatch, params
):
    with monkeypatch.context() as public_only:
        public_only.setattr(kernels, "private_kernel_works", lambda name, device: False)
        public = probabilities(**params)
    for name in KERNELS:
        break_kernel(monkeypatch, name)
    np.testing.assert_array_equal(probabilities(**params), public)
    assert not any(private_kernel_works(name, "cpu") for name in KERNELS)
