"""Forward passes of a trained network for prediction: logits of a stack in blocks of rows,
the float64 copy predictions run on, and the per-member probabilities it gives. Imported by
the estimator and by everything after ``load``; it never imports the training engine."""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..errors import DataError
from .network import TabularNetwork

# rows per forward pass on one torch thread (``bulk``): a block's activations stay in the
# CPU's caches; on one thread 1,024-row blocks run twice as fast as 8,192-row ones
BLOCK_ROWS = 1024


@torch.no_grad()
def predict_logits(model: TabularNetwork, x_num, x_cat, device, chunk: int = 8192) -> torch.Tensor:
    """Logits (K, rows, outputs) for arrays of raw inputs, computed in chunks (of 8,192
    rows: the float64 ensemble's activations then take tens of MB, not a GB)."""
    model.eval()
    x_num = torch.tensor(np.asarray(x_num), dtype=torch.float32)
    x_cat = torch.tensor(np.asarray(x_cat), dtype=torch.int64)
    outs = []
    for start in range(0, max(1, x_num.shape[0]), chunk):
        n = x_num[start : start + chunk].to(device)[None]
        c = x_cat[start : start + chunk].to(device)[None]
        outs.append(model(n, c).cpu())
    return torch.cat(outs, dim=1)


def float64_network(model: TabularNetwork) -> TabularNetwork:
    """A float64 copy of a CPU model in eval mode, for inference: float32 matmuls and
    activations round differently with the number of rows, and a row's probabilities must
    not depend on which rows come with it. Made once per fitted or loaded model."""
    return copy.deepcopy(model).double().eval()


def member_logits(
    network: TabularNetwork, x_num: np.ndarray, x_cat: np.ndarray, block_rows: int | None = None
) -> torch.Tensor:
    """(members, rows, outputs) logits of a CPU network, ``block_rows`` rows per forward
    pass (``predict_logits``' own when None)."""
    cpu = torch.device("cpu")
    if block_rows is None:
        return predict_logits(network, x_num, x_cat, cpu)
    return predict_logits(network, x_num, x_cat, cpu, chunk=block_rows)


def probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Logits (K, n, outputs) -> per-member probabilities: sigmoid for binary (one logit)
    and multi-label, softmax for multi-class."""
    if task == "multiclass":
        return torch.softmax(logits, dim=-1)
    return torch.sigmoid(logits)


def member_probabilities(
    network: TabularNetwork,
    task: str,
    x_num: np.ndarray,
    x_cat: np.ndarray,
    temperature: np.ndarray | None = None,
    block_rows: int | None = None,
) -> np.ndarray:
    """(members, rows, outputs) probabilities of a CPU network (float64, or float32 for a
    float32 network), ``block_rows`` rows per forward pass (``predict_logits``' own when
    None). ``temperature`` (a fitted estimator's ``temperature_``: one value, or one per
    label) divides every member's logits first (:mod:`tabnn.estimator.calibration`). The network is
    only read (no_grad, eval mode), so concurrent calls on one model are safe."""
    logits = member_logits(network, x_num, x_cat, block_rows)
    if temperature is not None:
        logits = logits / torch.as_tensor(np.asarray(temperature), dtype=logits.dtype)
    return probabilities(logits, task).numpy()


def check_finite(members: np.ndarray, where: str = "") -> np.ndarray:
    """Members' probabilities (members, rows, outputs), refused with a DataError naming the
    rows (0-based, ``where`` saying of what) that have any that is not finite: never a
    label without finite probabilities behind it."""
    unscored = np.flatnonzero(~np.isfinite(members).all(axis=(0, 2)))
    if len(unscored):
        raise DataError(
            f"The network gives no finite probabilities for {len(unscored)} row(s) "
            f"(0-based{where}: {', '.join(map(str, unscored[:5]))}); its weights or these "
            f"inputs are not finite."
        )
    return members


def mean_probabilities(members: np.ndarray, task: str) -> np.ndarray:
    """Members' probabilities (members, rows, outputs) -> ``predict_proba``'s float64 array:
    their mean, with P(negative) in front for binary tasks."""
    proba = members.astype(np.float64, copy=False).mean(0)
    if task == "binary":
        return np.column_stack([1 - proba[:, 0], proba[:, 0]])
    return proba
