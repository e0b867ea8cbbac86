"""``extras.lion``: the Lion optimiser (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from gankit import Params
from pydantic import Field, field_validator


class LionParams(Params):
    """Parameters of ``extras.lion``."""

    lr: float = Field(3e-5, gt=0, description="Base learning rate (Lion wants 3-10x smaller than Adam's).")
    betas: tuple[float, float] = Field((0.9, 0.99), description="Interpolation (beta1) and momentum (beta2) rates.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay.")

    @field_validator("betas")
    @classmethod
    def _in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError("betas must be two numbers in [0, 1)")
        return value


class Lion(torch.optim.Optimizer):
    """Lion: the update is the sign of an interpolation of the gradient and its momentum.

    ``u = sign(beta1 * m + (1 - beta1) * g)``; ``w <- w - lr * (u + wd * w)``;
    ``m <- beta2 * m + (1 - beta2) * g``. One state tensor per parameter, half
    of Adam's memory.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float],
                 weight_decay: float) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Lion update of every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                momentum = state["exp_avg"]
                update = momentum.mul(beta1).add_(p.grad, alpha=1 - beta1).sign_()
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
                momentum.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss


def lion(params: LionParams, *, parameters: Iterable[torch.Tensor], **context: Any) -> torch.optim.Optimizer:
    """Lion (Chen et al. 2023): sign updates of an interpolated momentum."""
    return Lion(parameters, lr=params.lr, betas=params.betas, weight_decay=params.weight_decay)
