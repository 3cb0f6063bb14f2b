"""Shared test set-up."""

import pytest
import torch

from tabnn.engine.cpu import cpu_policy_is_free


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The test networks are tiny: extra intra-op threads only add waiting, and on a busy
    2-core CI machine spinning threads made fits 10-100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def cpu_policy_let_go():
    """A test that leaves engine.cpu's policy held would make every later fit in another
    thread wait forever (a hung suite, not a failure): fail the test that held it."""
    yield
    assert cpu_policy_is_free(), "this test left engine.cpu's CPU policy held"
