"""The engine's plain data: optimisation settings, each member's rows and seed, the table
as device tensors, the specification of one fit (``FitSpec``), the history a fit returns,
and the device a name stands for."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import UsageError
from ..tasks import TASKS

if TYPE_CHECKING:
    from ..nn.network import TabularNetwork
    from .distributed import World

#: How a fit differentiates: ``autograd`` (any network), ``manual`` (the hand-written
#: backward pass of a plain network, ``steps.ManualSteps``), or ``auto`` (the default:
#: the hand-written pass for plain networks, where it was measured to pay, autograd for
#: every other design; see ``engine.train.hand_written``).
BACKWARDS = ("auto", "autograd", "manual")


@dataclass
class TrainConfig:
    """Optimisation settings shared by every member of a stack."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup_epochs: int = 3
    patience: int = 20
    min_delta: float = 1e-4
    grad_clip: float = 1.0
    restore_best: bool = True
    beta2: float = 0.999  # Adam's second-moment decay
    label_smoothing: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Member:
    """One member's share of the data: row indices into the stack's tensors, and a seed;
    optionally its own learning rate, weight decay and label smoothing (tuning trials as
    members of one stack), each None for the stack's ``TrainConfig`` value."""

    train_rows: np.ndarray
    val_rows: np.ndarray
    seed: int
    lr: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None


def member_values(members: list[Member], config: TrainConfig, name: str) -> list[float]:
    """Each member's value of ``lr``, ``weight_decay`` or ``label_smoothing``."""
    shared = getattr(config, name)
    return [shared if (own := getattr(m, name)) is None else own for m in members]


@dataclass
class TensorData:
    """The whole table as tensors on one device."""

    x_num: torch.Tensor  # (rows, numeric) float32, NaN for missing
    x_cat: torch.Tensor  # (rows, categorical) int64, 0 for unknown/missing
    y: torch.Tensor  # binary (rows,) float, multiclass (rows,) int64, multilabel (rows, labels)

    @classmethod
    def from_arrays(cls, x_num, x_cat, y, device: torch.device) -> TensorData:
        y = torch.as_tensor(np.array(y))  # a copy: the caller's array may be read-only
        y = y.long() if y.dtype in (torch.int32, torch.int64) else y.float()
        return cls(
            torch.tensor(x_num, dtype=torch.float32, device=device),
            torch.tensor(x_cat, dtype=torch.int64, device=device),
            y.to(device),
        )


@dataclass
class StreamData:
    """A table too large for memory: its validation rows as tensors, and its ``n_train``
    training rows as ``blocks(epoch)``, each pass a fresh iterator of TensorData blocks
    (every one but the last a multiple of the batch size, so that an epoch takes the
    steps an in-memory table of ``n_train`` rows would)."""

    validation: TensorData
    n_train: int
    blocks: Callable[[int], Iterable[TensorData]]


@dataclass
class FitSpec:
    """Everything one fit of a stack takes (``engine.train.fit_stack``).

    ``model`` is any tabnn network with ``len(members)`` members (``nn.ensemble.
    build_network``); ``data`` the table in memory, or a stream of it; member ``k`` trains
    on ``members[k]``'s rows with its seed (and its own ``lr``, ``weight_decay`` and
    ``label_smoothing`` where set). ``class_weight``: per-class loss weights (multi-label:
    each label's positive weight). ``on_epoch`` gets each epoch's record and may return
    members to stop now (a search's pruned trials). ``backward``: see ``BACKWARDS``.
    ``private_kernels=False`` runs the public-API versions of the fused kernels
    (``engine.kernels``), the reference they are tested against. ``world``: this process's
    share of a run across processes (``engine.distributed``; None: one process)."""

    model: TabularNetwork
    data: TensorData | StreamData
    members: Sequence[Member]
    task: str
    config: TrainConfig = field(default_factory=TrainConfig)
    class_weight: torch.Tensor | None = None
    on_epoch: Callable[[dict], object] | None = None
    backward: str = "auto"
    private_kernels: bool = True
    world: World | None = None

    def __post_init__(self) -> None:
        if self.backward not in BACKWARDS:
            raise UsageError(
                f"backward must be one of {', '.join(BACKWARDS)}; got {self.backward!r}."
            )
        if self.task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}.")
        if not self.members:
            raise UsageError("A fit needs at least one member; got none.")

    @property
    def streaming(self) -> bool:
        """Whether the training rows come as a stream of blocks."""
        return isinstance(self.data, StreamData)

    @property
    def held(self) -> TensorData:
        """The rows held in memory: the table, or a stream's validation rows."""
        return self.data.validation if self.streaming else self.data


@dataclass
class History:
    """Per-epoch records (lists over members) and each member's best epoch."""

    epochs: list[dict]
    best_epoch: list[int]
    best_val_loss: list[float]


def device_of(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and name != "cuda" and not re.fullmatch(r"cuda:\d+", name):
        raise UsageError(f"device must be auto, cpu, cuda or cuda:N; got {name!r}.")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"device {name!r} was asked for, but PyTorch sees no CUDA device here."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"device {name!r} was asked for, but PyTorch sees only "
                f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 onwards)."
            )
    return device
