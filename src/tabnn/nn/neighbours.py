"""The nearest-neighbour member: class probabilities from the k stored training rows
nearest to a row, computed by torch alone (a matrix product and ``topk``), so the GPU,
the server and the ONNX exporter run it as they run a network.

Squared Euclidean distances come from one matrix product,
``|x|^2 + |r|^2 - 2 x.r``, over rows already encoded as numbers (scaled numeric columns,
one-hot categories). A row whose features a stored row repeats exactly (its *twin*, at
distance 0) takes its answer from its twins alone: that is what trees and neighbours get
right on tables where rows repeat, and what an average of networks smooths away. Other
rows take the mean of their k neighbours' labels. ``smoothing`` pulls every answer
towards the training labels' mean by that many pseudo-rows, so no probability is 0 and
a log loss stays finite.
"""

from __future__ import annotations

import torch

TWIN_DISTANCE = 1e-6  # squared distance under which a stored row counts as a twin


class NeighbourMember(torch.nn.Module):
    """k nearest neighbours of encoded rows among stored ``rows`` (n, d) with ``targets``
    (n, outputs): one-hot classes, or 0/1 labels for multi-label. ``forward`` returns
    (rows, outputs) probabilities (multi-class rows sum to 1)."""

    def __init__(self, rows: torch.Tensor, targets: torch.Tensor, k: int = 10, smoothing=1.0):
        super().__init__()
        if len(rows) == 0 or len(rows) != len(targets):
            raise ValueError(
                f"need stored rows with one target each; got {len(rows)} and {len(targets)}"
            )
        self.k = min(int(k), len(rows))
        self.smoothing = float(smoothing)
        rows, targets = rows.double(), targets.double()
        self.register_buffer("rows", rows)
        self.register_buffer("norms", (rows * rows).sum(1))
        self.register_buffer("targets", targets)
        self.register_buffer("prior", targets.mean(0))

    def squared_distances(self, x: torch.Tensor) -> torch.Tensor:
        """(rows of x, stored rows) squared Euclidean distances, clamped at 0 (the product
        form can round a little below)."""
        x = x.to(self.rows.dtype)
        cross = x @ self.rows.T
        return ((x * x).sum(1, keepdim=True) + self.norms - 2 * cross).clamp_min(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distances, nearest = torch.topk(self.squared_distances(x), self.k, dim=1, largest=False)
        twins = distances <= TWIN_DISTANCE
        has_twin = twins.any(dim=1, keepdim=True)
        weights = torch.where(has_twin, twins.to(distances.dtype), torch.ones_like(distances))
        votes = (weights.unsqueeze(-1) * self.targets[nearest]).sum(1)
        counted = weights.sum(1, keepdim=True)
        return (votes + self.smoothing * self.prior) / (counted + self.smoothing)
