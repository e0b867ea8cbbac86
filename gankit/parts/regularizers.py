"""Discriminator regularisers that penalise the gradient of its output with respect to its input."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from gankit.hookspecs import Register
from gankit.registry import Params

Samples = Tensor | Sequence[Tensor]
"""One batch, or one batch per scale for a multi-scale discriminator (coarsest first)."""

_EPS = 1e-12


class GradientPenaltyParams(Params):
    """Parameters of the ``gradient-penalty`` regulariser."""

    weight: float = Field(default=10.0, ge=0.0, description="lambda: multiplies the penalty")
    every: int = Field(default=1, ge=1, description="apply every this many discriminator steps, scaled by it (lazy)")
    target: float = Field(default=1.0, ge=0.0, description="gradient norm the penalty pulls towards; 0 is zero-centred")


class R1Params(Params):
    """Parameters of the ``r1`` regulariser."""

    weight: float = Field(default=10.0, ge=0.0, description="gamma: multiplies the penalty")
    every: int = Field(default=1, ge=1, description="apply every this many discriminator steps, scaled by it (lazy)")


def _scales(samples: Samples) -> list[Tensor]:
    """``samples`` as a list of tensors, one per scale."""
    if isinstance(samples, Tensor):
        return [samples]
    scales = list(samples)
    if not scales:
        raise ValueError("a multi-scale batch needs at least one scale")
    return scales


def squared_input_gradient_norm(
    discriminator: Callable[[Any], Tensor], inputs: list[Tensor], multi_scale: bool
) -> Tensor:
    """Per-sample squared norm of the gradient of the discriminator's logits with respect to its input, ``(N,)``.

    ``inputs`` must require grad. For a multi-scale input the squared norms of
    the gradients with respect to every scale are summed, i.e. the norm is
    taken over the concatenation of all scales. The graph is kept
    (``create_graph=True``) so that a penalty built on it trains the
    discriminator.
    """
    logits = discriminator(inputs if multi_scale else inputs[0])
    grads = torch.autograd.grad(logits.sum(), inputs, create_graph=True, allow_unused=True)
    total = inputs[0].new_zeros(inputs[0].shape[0], dtype=torch.float32)
    for grad in grads:
        if grad is not None:
            total = total + grad.float().square().flatten(1).sum(1)
    return total


class GradientPenalty:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017): keep the critic's gradient norm near ``target``.

    For each sample a point ``x_hat = a * real + (1 - a) * fake`` is drawn on
    the segment between a real and a generated sample, ``a ~ U(0, 1)`` from
    the global torch RNG on the samples' device (so seeded runs repeat), and
    the penalty is ``mean((||grad_x D(x_hat)||_2 - target)^2)``: a soft form of
    the 1-Lipschitz constraint the Wasserstein critic needs. For a multi-scale
    batch every scale uses the sample's same ``a`` and the norm covers all
    scales. :meth:`penalty` returns the unweighted value; the trainer
    multiplies it by ``weight * every``.
    """

    def __init__(self, params: GradientPenaltyParams, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)
        self.every = int(params.every)
        self.target = float(params.target)

    def penalty(self, discriminator: Callable[[Any], Tensor], real: Samples, fake: Samples) -> Tensor:
        """``mean((||grad D(x_hat)|| - target)^2)`` over random interpolates of ``real`` and ``fake``."""
        reals, fakes = _scales(real), _scales(fake)
        if len(reals) == 1 and len(fakes) > 1:
            reals = [_average_down(reals[0], f.shape[-1]) for f in fakes]
            real = reals
        if len(reals) != len(fakes):
            raise ValueError(f"real has {len(reals)} scales but fake has {len(fakes)}")
        batch = reals[0].shape[0]
        if any(r.shape != f.shape for r, f in zip(reals, fakes)):
            raise ValueError(
                "real and fake batches must have the same shapes, got "
                f"{[tuple(r.shape) for r in reals]} and {[tuple(f.shape) for f in fakes]}"
            )
        alpha = torch.rand(batch, device=reals[0].device, dtype=reals[0].dtype)
        inputs = []
        for r, f in zip(reals, fakes):
            a = alpha.view(batch, *([1] * (r.dim() - 1)))
            mixed = a * r.detach() + (1.0 - a) * f.detach()
            inputs.append(mixed.requires_grad_(True))
        squared = squared_input_gradient_norm(discriminator, inputs, not isinstance(real, Tensor))
        return ((squared + _EPS).sqrt() - self.target).square().mean()

    def __repr__(self) -> str:
        return f"GradientPenalty(weight={self.weight}, every={self.every}, target={self.target})"


class R1Penalty:
    """R1 regulariser (Mescheder et al. 2018): penalise the discriminator's gradient on real data.

    The penalty is ``mean(||grad_x D(real)||^2) / 2``, times ``weight``
    (the paper's gamma). Pushing the gradient to zero on the data makes the
    game converge locally where unregularised GANs oscillate. Fake samples are
    not used. For a multi-scale batch the squared norms over all scales are
    summed. :meth:`penalty` returns the unweighted value; the trainer
    multiplies it by ``weight * every`` (lazy regularisation, Karras et al. 2020).
    """

    def __init__(self, params: R1Params, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)
        self.every = int(params.every)

    def penalty(self, discriminator: Callable[[Any], Tensor], real: Samples, fake: Samples | None = None) -> Tensor:
        """``mean(||grad D(real)||^2) / 2``; ``fake`` is ignored."""
        inputs = [r.detach().requires_grad_(True) for r in _scales(real)]
        squared = squared_input_gradient_norm(discriminator, inputs, not isinstance(real, Tensor))
        return 0.5 * squared.mean()

    def __repr__(self) -> str:
        return f"R1Penalty(weight={self.weight}, every={self.every})"


def _average_down(x: Tensor, size: int) -> Tensor:
    """A full-resolution batch averaged down to ``size`` (how multi-scale discriminators see real images)."""
    if x.shape[-1] == size:
        return x
    return torch.nn.functional.avg_pool2d(x, x.shape[-1] // size)


def register(register: Register) -> None:
    """Register the gradient regularisers."""
    register("loss", "gradient-penalty", GradientPenalty, GradientPenaltyParams, role="regularizer")
    register("loss", "r1", R1Penalty, R1Params, role="regularizer")
