"""The few torch kernels the engine calls that are not public API, each with a fallback
built from public operations that computes the same thing.

torch's fused Adam and its ``_foreach_*`` list operations are what ``torch.optim`` itself
runs, but they are private names that a torch release may change. Each is used here only
when present (``PRIVATE`` says whether it is); otherwise, or when ``use_private`` is
turned off, the public version runs. ``tests/test_train.py`` checks that both give the
same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PRIVATE = all(
    hasattr(torch, name)
    for name in (
        "_fused_adam_",
        "_fused_adamw_",
        "_foreach_mul_",
        "_foreach_copy_",
        "_foreach_add_",
    )
) and hasattr(torch.ops.aten, "threshold_backward")


class Kernels:
    """The engine's list operations and Adam step: private fused kernels when available
    and allowed, else loops of public tensor operations."""

    def __init__(self, use_private: bool = True) -> None:
        self.private = use_private and PRIVATE

    def mul_(self, tensors: Sequence[torch.Tensor], factors: Sequence[torch.Tensor]) -> None:
        if self.private:
            torch._foreach_mul_(tensors, factors)
            return
        for tensor, factor in zip(tensors, factors):
            tensor.mul_(factor)

    def copy_(self, targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor]) -> None:
        if self.private:
            torch._foreach_copy_(targets, sources)
            return
        for target, source in zip(targets, sources):
            target.copy_(source)

    def add_(self, tensors: Sequence[torch.Tensor], value: float) -> None:
        if self.private:
            torch._foreach_add_(tensors, value)
            return
        for tensor in tensors:
            tensor.add_(value)

    def relu_backward(self, grad: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The gradient through a ReLU, from its output: ``grad`` where ``output > 0``."""
        if self.private:
            return torch.ops.aten.threshold_backward(grad, output, 0)
        return grad * (output > 0)

    def adam_(
        self,
        weights: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor],
        moments: Sequence[torch.Tensor],
        squares: Sequence[torch.Tensor],
        steps: Sequence[torch.Tensor],
        *,
        lr: float,
        beta1: float,
        beta2: float,
        weight_decay: float,
        eps: float,
        decoupled: bool,
    ) -> None:
        """One Adam (L2 decay) or AdamW (decoupled decay) step of every tensor in place,
        ``steps`` the 0-d step counts after this step, as ``torch.optim.Adam(W)``."""
        if self.private:
            kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
            kernel(
                weights, grads, moments, squares, [], steps, lr=lr, beta1=beta1,
                beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False,
            )  # fmt: skip
            return
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
