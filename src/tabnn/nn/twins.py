"""The twin member: the labels of a row's exact duplicates among the training rows.

A row whose features a training row repeats exactly has a *twin*. Trees and nearest
neighbours answer it with its twins' labels; an average of networks smooths them away. On
tables where rows repeat that is where the trees' lead comes from (issue 22: on two unseen
tables LightGBM's whole lead over tabnn came from rows with a twin).

A model keeps each distinct training row once, as its *key* (the encoded inputs: numbers
as the preprocessor leaves them, a missing number as 0 with a flag, category codes), with
the sum of its rows' labels and their count. A row to predict finds its twin by a hash of
its key (pandas' ``hash_pandas_object``) confirmed by comparing the keys exactly, so a
lookup costs a sort of the stored rows once and a binary search per row, not a product over
every stored row. The twins' answer is ``(label sum + s * prior) / (count + s)``: ``s``
(``SMOOTHING``) pseudo-rows of the training labels' mean keep it off 0 and 1. A row with
an unknown category (code 0) has no twin: its category may differ from every stored one.

The model's probabilities on a row with a twin are ``(1 - weight) * network + weight *
twins``; rows without one keep the network's. ``estimator.twin_choice`` chooses the weight
on held-out rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

SMOOTHING = 1.0
TENSORS = ("keys", "label_sums", "counts", "prior")  # saved as "twins.<name>"


def twin_keys(x_num: np.ndarray, x_cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encoded inputs -> (keys (n, width) float64, which rows may have a twin): numbers
    (missing as 0; adding 0.0 makes -0.0 the same key as 0.0), then one missing flag per
    numeric column, then the category codes; rows with an unknown category (code 0)
    may not."""
    x_num, x_cat = np.asarray(x_num, dtype=np.float64), np.asarray(x_cat)  # (rows, columns)
    missing = np.isnan(x_num)
    keys = np.hstack([np.where(missing, 0.0, x_num) + 0.0, missing, x_cat]).astype(np.float64)
    return keys, (x_cat != 0).all(axis=1)


def key_hashes(keys: np.ndarray) -> np.ndarray:
    """One uint64 hash per key row (pandas' hash of each column, combined)."""
    if keys.shape[1] == 0:
        return np.zeros(len(keys), dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(keys), index=False).to_numpy()


def as_outputs(y: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """Encoded labels -> (rows, outputs) float64 in ``predict_proba``'s columns: one-hot
    classes (binary: two columns), 0/1 labels for multi-label."""
    y = np.asarray(y)
    if task == "multilabel":
        return y.astype(np.float64).reshape(len(y), -1)
    return np.eye(max(n_classes, 2))[y.astype(np.int64)]


class TwinMember:
    """Distinct training rows (``keys``) with their ``label_sums`` (rows, outputs in
    ``predict_proba``'s columns) and ``counts``, the training labels' mean ``prior``, and
    the ``weight`` the model gives the twins' answer."""

    def __init__(self, keys, label_sums, counts, prior, weight: float = 0.0) -> None:
        self.keys = np.asarray(keys, dtype=np.float64)
        self.label_sums = np.asarray(label_sums, dtype=np.float64)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.prior = np.asarray(prior, dtype=np.float64)
        self.weight = float(weight)
        hashes = key_hashes(self.keys)
        self._order = np.argsort(hashes, kind="stable")
        self._sorted = hashes[self._order]

    @classmethod
    def of_rows(cls, x_num, x_cat, outputs: np.ndarray, weight: float = 0.0) -> TwinMember:
        """The member that remembers these encoded rows and their labels (``as_outputs``);
        the prior is the mean over all of them."""
        keys, usable = twin_keys(x_num, x_cat)
        distinct, inverse = np.unique(keys[usable], axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        sums = np.zeros((len(distinct), outputs.shape[1]))
        np.add.at(sums, inverse, outputs[usable])
        counts = np.bincount(inverse, minlength=len(distinct)).astype(np.float64)
        return cls(distinct, sums, counts, outputs.mean(0), weight)

    @property
    def rows(self) -> int:
        """How many distinct rows the member stores."""
        return len(self.keys)

    def twin_of(self, x_num, x_cat) -> np.ndarray:
        """Each row's stored twin (its index into ``keys``), -1 where it has none."""
        keys, usable = twin_keys(x_num, x_cat)
        found = np.full(len(keys), -1, dtype=np.int64)
        if not self.rows or not len(keys):
            return found
        hashes = key_hashes(keys)
        at = np.minimum(np.searchsorted(self._sorted, hashes), self.rows - 1)
        candidate = self._order[at]
        same = usable & (self._sorted[at] == hashes)
        same &= (self.keys[candidate] == keys).all(axis=1)  # a hash collision is no twin
        found[same] = candidate[same]
        return found

    def answer(self, x_num, x_cat) -> tuple[np.ndarray, np.ndarray]:
        """(the twins' probabilities, which rows have a twin) for encoded rows; rows
        without a twin get the prior."""
        twin = self.twin_of(x_num, x_cat)
        has = twin >= 0
        sums = np.where(has[:, None], self.label_sums[np.maximum(twin, 0)], 0.0)
        counts = np.where(has, self.counts[np.maximum(twin, 0)], 0.0)
        return (sums + SMOOTHING * self.prior) / (counts + SMOOTHING)[:, None], has

    def blend(self, proba: np.ndarray, x_num, x_cat) -> np.ndarray:
        """The network's ``predict_proba`` with the twins' answer mixed in at ``weight``
        on the rows that have a twin."""
        if self.weight == 0 or not len(proba):
            return proba
        twins, has = self.answer(x_num, x_cat)
        mixed = (1 - self.weight) * proba + self.weight * twins
        return np.where(has[:, None], mixed, proba)

    def tensors(self) -> dict[str, torch.Tensor]:
        """What ``model.safetensors`` holds of the member, under ``twins.``."""
        return {f"twins.{name}": torch.from_numpy(getattr(self, name).copy()) for name in TENSORS}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], weight: float) -> TwinMember:
        """The member saved by ``tensors`` (its keys rehashed: nothing stored is trusted)."""
        parts = [tensors[f"twins.{name}"].numpy().astype(np.float64) for name in TENSORS]
        return cls(*parts, weight=weight)
