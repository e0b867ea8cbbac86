"""Optimisers as parts: ``[optim.generator]`` and ``[optim.discriminator]`` name one each (``type = "adam"``).

An optimiser part's factory is called as ``factory(params, parameters=..., network=...)``
with the network's parameters (an iterable of tensors) and the network's name
(``"generator"`` or ``"discriminator"``), and returns a ``torch.optim.Optimizer``.
The learning rate each param group starts with is the *base* rate: the
network's schedule multiplies it at every step. An optimiser with ``train()``
and ``eval()`` methods (schedule-free optimisers) is put in ``eval`` mode while
samples, metrics and exports are made, and back in ``train`` mode afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from pydantic import Field, field_validator

from gankit.hookspecs import Register
from gankit.registry import Params


class _Rate(Params):
    """The base learning rate and weight decay every built-in optimiser takes."""

    lr: float = Field(2e-4, gt=0, description="Base learning rate (the schedule multiplies it).")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Weight decay (L2 for adam, sgd, rmsprop; decoupled "
                                                              "for adamw).")


class AdamParams(_Rate):
    """Parameters of ``adam`` and ``adamw``."""

    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam's betas (DCGAN: 0.5, 0.999).")
    eps: float = Field(1e-8, gt=0, le=1, description="Adam's epsilon.")
    fused: bool = Field(
        False, description="Use the fused kernel: faster (CPU and CUDA), rounds slightly differently."
    )

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError("betas must be two numbers in [0, 1)")
        return value


class SgdParams(_Rate):
    """Parameters of ``sgd``."""

    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum.")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0).")


class RmspropParams(_Rate):
    """Parameters of ``rmsprop``."""

    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum.")
    alpha: float = Field(0.99, gt=0, lt=1, description="Smoothing constant of the squared-gradient average.")
    eps: float = Field(1e-8, gt=0, le=1, description="Added to the denominator.")


def adam(params: AdamParams, *, parameters: Iterable[torch.Tensor], **context: Any) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015), with the DCGAN betas (0.5, 0.999) by default."""
    return torch.optim.Adam(parameters, lr=params.lr, betas=params.betas, eps=params.eps,
                            weight_decay=params.weight_decay, fused=params.fused or None)


def adamw(params: AdamParams, *, parameters: Iterable[torch.Tensor], **context: Any) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay."""
    return torch.optim.AdamW(parameters, lr=params.lr, betas=params.betas, eps=params.eps,
                             weight_decay=params.weight_decay, fused=params.fused or None)


def sgd(params: SgdParams, *, parameters: Iterable[torch.Tensor], **context: Any) -> torch.optim.Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum."""
    if params.nesterov and params.momentum == 0:
        from gankit.errors import GankitError

        raise GankitError("sgd: nesterov = true needs momentum > 0")
    return torch.optim.SGD(parameters, lr=params.lr, momentum=params.momentum, nesterov=params.nesterov,
                           weight_decay=params.weight_decay)


def rmsprop(params: RmspropParams, *, parameters: Iterable[torch.Tensor], **context: Any) -> torch.optim.Optimizer:
    """RMSprop (Tieleman & Hinton 2012), the optimiser of the original WGAN."""
    return torch.optim.RMSprop(parameters, lr=params.lr, alpha=params.alpha, eps=params.eps,
                               momentum=params.momentum, weight_decay=params.weight_decay)


def register(register: Register) -> None:
    """Register the built-in optimisers."""
    register("optimizer", "adam", adam, AdamParams)
    register("optimizer", "adamw", adamw, AdamParams)
    register("optimizer", "sgd", sgd, SgdParams)
    register("optimizer", "rmsprop", rmsprop, RmspropParams)
