"""The few torch kernels the engine calls that are not public API, each with a fallback
built from public operations that computes the same thing.

What is private: ``torch._fused_adam_`` and ``torch._fused_adamw_`` (the fused Adam step
``torch.optim.Adam(fused=True)`` runs), ``torch._foreach_mul_``, ``_foreach_copy_`` and
``_foreach_add_`` (one call over a list of tensors, as ``torch.optim`` uses them) and
``torch.ops.aten.threshold_backward`` (the gradient through a ReLU, as autograd computes it).

Why: a stack's whole Adam update is one call, and clipping, best-weight copies and the
hand-written backward pass lose a Python loop per tensor. Measured with
``fit_stack`` on one thread (208 rows x 60 columns, 5 fold members): the W1 ``wide`` MLP
in batches of 10 trains in 0.277 s with these kernels against 0.331 s without (the public
path is 1.19x slower); the default 4-member ensemble in batches of 32 in 0.394 s against
0.407 s (1.03x). The "Performance" table of the docs was measured with them.

How it falls back: a torch release may rename a private kernel or change its arguments,
and checking that the name exists would not notice. So ``private_kernel_works`` calls each
kernel once per process and device type on tiny tensors, as the engine calls it, and
compares the result with its public stand-in (to float32 rounding: the fused Adam orders
its arithmetic differently); any exception or mismatch means the public version runs for
that kernel, from the first step of a fit. ``Kernels(use_private=False)`` always runs the
public versions, the reference ``tests/test_ensemble.py`` checks the private ones against.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch

Tensors = Sequence[torch.Tensor]


# --------------------------------------------------------------------------- the kernels


def private_mul_(tensors: Tensors, factors: Tensors) -> None:
    torch._foreach_mul_(tensors, factors)


def public_mul_(tensors: Tensors, factors: Tensors) -> None:
    for tensor, factor in zip(tensors, factors):
        tensor.mul_(factor)


def private_copy_(targets: Tensors, sources: Tensors) -> None:
    torch._foreach_copy_(targets, sources)


def public_copy_(targets: Tensors, sources: Tensors) -> None:
    for target, source in zip(targets, sources):
        target.copy_(source)


def private_add_(tensors: Tensors, value: float) -> None:
    torch._foreach_add_(tensors, value)


def public_add_(tensors: Tensors, value: float) -> None:
    for tensor in tensors:
        tensor.add_(value)


def private_relu_backward(grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward(grad, output, 0)


def public_relu_backward(grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    return grad * (output > 0)


def private_adam_(weights, grads, moments, squares, steps, *, decoupled, **options) -> None:
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    kernel(weights, grads, moments, squares, [], steps, amsgrad=False, maximize=False, **options)


def public_adam_(
    weights, grads, moments, squares, steps, *, lr, beta1, beta2, weight_decay, eps, decoupled
) -> None:
    for weight, grad, moment, square, step in zip(weights, grads, moments, squares, steps):
        if weight_decay and decoupled:
            weight.mul_(1 - lr * weight_decay)
        elif weight_decay:
            grad = grad + weight_decay * weight
        moment.lerp_(grad, 1 - beta1)
        square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        count = float(step)
        step_size = lr / (1 - beta1**count)
        denominator = (square / (1 - beta2**count)).sqrt_().add_(eps)
        weight.addcdiv_(moment, denominator, value=-step_size)


# --------------------------------------------------------------------------- the probes


def tiny(device: str, *shapes: tuple[int, ...], seed: int = 0) -> list[torch.Tensor]:
    """Fixed random float32 tensors of these shapes on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator).to(device) for shape in shapes]


# Each probe runs one kernel (the private or the public version) on tiny inputs shaped as
# the engine's and returns what it computed. The shapes are the engine's: (members, ...)
# blocks scaled by (members, 1, ...) factors, 0-d step counts, a whole buffer in one list.
def probe_mul(kernel: Callable, device: str) -> list[torch.Tensor]:
    tensors = tiny(device, (2, 3), (2, 1, 4))
    kernel(tensors, tiny(device, (2, 1), (2, 1, 1), seed=1))
    return tensors


def probe_copy(kernel: Callable, device: str) -> list[torch.Tensor]:
    targets = tiny(device, (2, 3), (4,))
    kernel(targets, tiny(device, (2, 3), (4,), seed=1))
    return targets


def probe_add(kernel: Callable, device: str) -> list[torch.Tensor]:
    tensors = [torch.tensor(3.0, device=device), torch.zeros(2, device=device)]
    kernel(tensors, 1)
    return tensors


def probe_relu_backward(kernel: Callable, device: str) -> list[torch.Tensor]:
    grad, output = tiny(device, (3, 5), (3, 5))
    return [kernel(grad, output.relu())]


def probe_adam(decoupled: bool) -> Callable:
    def probe(kernel: Callable, device: str) -> list[torch.Tensor]:
        weights, grads = tiny(device, (2, 3), (5,)), tiny(device, (2, 3), (5,), seed=1)
        moments = [g / 2 for g in grads]
        squares = [g * g for g in grads]
        steps = [torch.tensor(3.0, device=device) for _ in weights]
        kernel(
            weights, grads, moments, squares, steps, lr=0.01, beta1=0.9, beta2=0.95,
            weight_decay=0.1, eps=1e-8, decoupled=decoupled,
        )  # fmt: skip
        return [*weights, *moments, *squares]

    return probe


# kernel name -> (private version, public version, probe)
KERNELS = {
    "mul_": (private_mul_, public_mul_, probe_mul),
    "copy_": (private_copy_, public_copy_, probe_copy),
    "add_": (private_add_, public_add_, probe_add),
    "relu_backward": (private_relu_backward, public_relu_backward, probe_relu_backward),
    "adam_": (private_adam_, public_adam_, probe_adam(decoupled=False)),
    "adamw_": (private_adam_, public_adam_, probe_adam(decoupled=True)),
}


@functools.cache
def private_kernel_works(name: str, device: str) -> bool:
    """Whether the private version of kernel ``name`` runs on ``device`` (a device type:
    "cpu", "cuda") and computes what its public version does; probed once per process."""
    private, public, probe = KERNELS[name]
    try:
        ours, theirs = probe(private, device), probe(public, device)
        return len(ours) == len(theirs) and all(
            a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)
            for a, b in zip(ours, theirs)
        )
    except Exception:  # any failure: a changed signature, a missing name or device support
        return False


# --------------------------------------------------------------------------- the engine's


class Kernels:
    """The engine's list operations and Adam step: each private kernel where allowed and
    its probe passed on the tensors' device, else its public version."""

    def __init__(self, use_private: bool = True) -> None:
        self.use_private = use_private

    def kernel(self, name: str, tensor: torch.Tensor | None) -> Callable:
        """The version of kernel ``name`` to run on ``tensor``'s device."""
        private, public, _ = KERNELS[name]
        device = "cpu" if tensor is None else tensor.device.type
        return private if self.use_private and private_kernel_works(name, device) else public

    def mul_(self, tensors: Tensors, factors: Tensors) -> None:
        self.kernel("mul_", first(tensors))(tensors, factors)

    def copy_(self, targets: Tensors, sources: Tensors) -> None:
        self.kernel("copy_", first(targets))(targets, sources)

    def add_(self, tensors: Tensors, value: float) -> None:
        self.kernel("add_", first(tensors))(tensors, value)

    def relu_backward(self, grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The gradient through a ReLU, from its output: ``grad`` where ``output > 0``."""
        return self.kernel("relu_backward", grad)(grad, output)

    def adam_(
        self, weights: Tensors, grads: Tensors, moments: Tensors, squares: Tensors,
        steps: Tensors, *, lr: float, beta1: float, beta2: float, weight_decay: float,
        eps: float, decoupled: bool,
    ) -> None:  # fmt: skip
        """One Adam (L2 decay) or AdamW (decoupled decay) step of every tensor in place,
        ``steps`` the 0-d step counts after this step, as ``torch.optim.Adam(W)``."""
        kernel = self.kernel("adamw_" if decoupled else "adam_", first(weights))
        kernel(
            weights, grads, moments, squares, steps, lr=lr, beta1=beta1, beta2=beta2,
            weight_decay=weight_decay, eps=eps, decoupled=decoupled,
        )  # fmt: skip


def first(tensors: Tensors) -> torch.Tensor | None:
    return tensors[0] if len(tensors) else None
