"""Regularisers: terms added to one network's loss that look at the network itself.

A regulariser says which network it regularises (``network``). The
discriminator's (``gradient-penalty``, ``r1``, ``r2``) get
``penalty(discriminator, real, fake, **context)``: ``discriminator`` is a
callable ``discriminator(x, labels=None)`` (labels default to the real
batch's, for conditional discriminators) and ``real``/``fake`` are the batches
the discriminator saw in that phase. The generator's (``path-length``) get
``penalty(generator, latents, **context)``. ``penalty`` returns the unweighted
term; the trainer adds ``weight * every * penalty`` every ``every`` steps of
that network (lazy regularisation, Karras et al. 2020).
"""

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
    """Parameters of the ``r1`` and ``r2`` regularisers."""

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

    network = "discriminator"

    def __init__(self, params: GradientPenaltyParams, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)
        self.every = int(params.every)
        self.target = float(params.target)

    def penalty(self, discriminator: Callable[..., Tensor], real: Samples, fake: Samples, **context: Any) -> Tensor:
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

    network = "discriminator"

    def __init__(self, params: R1Params, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)
        self.every = int(params.every)

    def penalty(
        self, discriminator: Callable[..., Tensor], real: Samples, fake: Samples | None = None, **context: Any
    ) -> Tensor:
        """``mean(||grad D(real)||^2) / 2``; ``fake`` is ignored."""
        inputs = [r.detach().requires_grad_(True) for r in _scales(real)]
        squared = squared_input_gradient_norm(discriminator, inputs, not isinstance(real, Tensor))
        return 0.5 * squared.mean()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight}, every={self.every})"


class R2Penalty(R1Penalty):
    """R2 regulariser (Mescheder et al. 2018): penalise the discriminator's gradient on *generated* data.

    ``mean(||grad_x D(fake)||^2) / 2`` times ``weight``: R1's twin on the
    generator's distribution. R3GAN (Huang et al. 2024) pairs it with R1 and
    the ``rpgan`` loss. For a conditional discriminator the gradient is taken
    with the generated batch's labels. Returns the unweighted value; the
    trainer multiplies it by ``weight * every``.
    """

    def penalty(
        self, discriminator: Callable[..., Tensor], real: Samples, fake: Samples | None = None, **context: Any
    ) -> Tensor:
        """``mean(||grad D(fake)||^2) / 2``; ``real`` is ignored."""
        if fake is None:
            raise ValueError("r2 needs the generated batch")
        inputs = [f.detach().requires_grad_(True) for f in _scales(fake)]
        labels = context.get("fake_labels")

        def judge(x: Any) -> Tensor:
            return discriminator(x, labels) if labels is not None else discriminator(x)

        squared = squared_input_gradient_norm(judge, inputs, not isinstance(fake, Tensor))
        return 0.5 * squared.mean()


class PathLengthParams(Params):
    """Parameters of the ``path-length`` regulariser."""

    weight: float = Field(default=2.0, ge=0.0, description="multiplies the penalty (StyleGAN2: 2)")
    every: int = Field(default=4, ge=1, description="apply every this many generator steps, scaled by it (lazy)")
    decay: float = Field(default=0.01, gt=0.0, le=1.0, description="update rate of the moving mean of path lengths")
    batch_shrink: int = Field(default=2, ge=1, le=64, description="use batch_size / batch_shrink latents for it")


class PathLengthPenalty:
    """Path-length regulariser (Karras et al. 2020, StyleGAN2): equal steps in latent space, equal image changes.

    For latents ``w`` (a mapping network's output when the generator has
    ``mapping`` and ``synthesis``, computed with its graph so that the
    penalty trains the mapping network too, as in the reference
    implementation; the input latents ``z`` otherwise) and images
    ``G(w)`` of ``H x W`` pixels, the Jacobian-vector length
    ``a = ||J_w^T y||`` with ``y ~ N(0, I) / sqrt(H W)`` is driven towards its
    moving mean ``m``: the penalty is ``mean((a - m)^2)``. ``m`` follows
    ``m <- m + decay * (mean(a) - m)`` and is saved in checkpoints, so a
    resumed run continues exactly. Lazy: the trainer applies it every
    ``every`` generator steps with weight ``weight * every``, on
    ``batch_size // batch_shrink`` latents.
    """

    network = "generator"

    def __init__(self, params: PathLengthParams, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)
        self.every = int(params.every)
        self.batch_shrink = int(params.batch_shrink)
        self.mean = torch.zeros(())

    def penalty(self, generator: Any, latents: Tensor, **context: Any) -> Tensor:
        """``mean((||J^T y|| - m)^2)`` on ``latents`` (the first ``len // batch_shrink``); updates ``m``."""
        latents = latents[: max(1, latents.shape[0] // self.batch_shrink)]
        labels = context.get("labels")
        if labels is not None:
            labels = labels[: latents.shape[0]]
        mapping, synthesis = getattr(generator, "mapping", None), getattr(generator, "synthesis", None)
        if callable(mapping) and callable(synthesis):
            w = mapping(latents, labels) if labels is not None else mapping(latents)
            if not w.requires_grad:
                w = w.detach().requires_grad_(True)
            images = synthesis(w)
        else:
            w = latents.detach().requires_grad_(True)
            images = generator(w, labels) if labels is not None else generator(w)
        if isinstance(images, list | tuple):
            images = images[-1]
        pixels = images[0, 0].numel() if images.dim() == 4 else 1
        noise = torch.randn_like(images) / pixels**0.5
        (grad,) = torch.autograd.grad((images * noise).sum(), w, create_graph=True)
        grad = grad.float()
        lengths = grad.square().sum(-1).mean(1).sqrt() if grad.dim() == 3 else grad.square().sum(-1).sqrt()
        if self.mean.device != lengths.device:
            self.mean = self.mean.to(lengths.device)
        with torch.no_grad():
            self.mean.add_(self.params.decay * (lengths.mean() - self.mean))
        return (lengths - self.mean).square().mean()

    def state_dict(self) -> dict[str, Any]:
        """The moving mean of path lengths."""
        return {"mean": self.mean}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the moving mean."""
        self.mean = state["mean"].clone()

    def __repr__(self) -> str:
        return f"PathLengthPenalty(weight={self.weight}, every={self.every})"


def _average_down(x: Tensor, size: int) -> Tensor:
    """A full-resolution batch averaged down to ``size`` (how multi-scale discriminators see real images)."""
    if x.shape[-1] == size:
        return x
    return torch.nn.functional.avg_pool2d(x, x.shape[-1] // size)


def register(register: Register) -> None:
    """Register the regularisers."""
    register("loss", "gradient-penalty", GradientPenalty, GradientPenaltyParams, role="regularizer")
    register("loss", "r1", R1Penalty, R1Params, role="regularizer")
    register("loss", "r2", R2Penalty, R1Params, role="regularizer")
    register("loss", "path-length", PathLengthPenalty, PathLengthParams, role="regularizer")
