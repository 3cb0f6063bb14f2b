"""Inference with a trained network: the float64 copy predictions run on, and the
per-member probabilities it gives."""

from __future__ import annotations

import copy

import numpy as np
import torch

from .engine.train import predict_logits
from .model import probabilities


def float64_network(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of a CPU model in eval mode, for inference: float32 matmuls and
    activations round differently with the number of rows, and a row's probabilities must
    not depend on which rows come with it. Made once per fitted or loaded model."""
    return copy.deepcopy(model).double().eval()


def member_probabilities(network, task: str, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
    """(members, rows, outputs) float64 probabilities of a float64 CPU network. The network
    is only read (no_grad, eval mode), so concurrent calls on one model are safe."""
    logits = predict_logits(network, x_num, x_cat, torch.device("cpu"))
    return probabilities(logits, task).numpy()
