"""Adversarial losses: the game the generator and the discriminator play, written on raw logits.

Every loss has ``discriminator_loss(real_logits, fake_logits)`` and
``generator_loss(fake_logits, real_logits=None)``. A loss whose generator side
depends on real logits (the relativistic ones) sets ``needs_real_logits = True``;
the trainer then computes fresh real logits in the generator phase.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from gankit.hookspecs import Register
from gankit.registry import Params


class AdversarialParams(Params):
    """Parameters every adversarial loss takes."""

    weight: float = Field(default=1.0, ge=0.0, description="multiplies both the discriminator and the generator loss")


class LabelledParams(AdversarialParams):
    """Parameters of the adversarial losses that compare logits with target labels."""

    real_label: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="discriminator target for real samples; 0.9 is one-sided label smoothing",
    )


def _bce(logits: Tensor, target: float) -> Tensor:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against a constant ``target``, computed stably in fp32."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class _Adversarial:
    """Shared plumbing: ``weight`` and the parameters a loss was built with.

    ``needs_real_logits`` is False: these losses score generated samples alone
    in the generator phase, so the trainer computes no real logits there.
    """

    needs_real_logits = False

    def __init__(self, params: AdversarialParams, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)

    def _weighted(self, loss: Tensor) -> Tensor:
        """``weight * loss``; with the default weight 1 the loss itself (identical values, two fewer kernels)."""
        return loss if self.weight == 1.0 else self.weight * loss

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({fields})"


class MinimaxLoss(_Adversarial):
    """Original minimax GAN loss (Goodfellow et al. 2014), generator minimises log(1 - D(G(z))).

    The discriminator is a logistic classifier: its loss is
    ``BCE(real, real_label) + BCE(fake, 0)``. The generator plays the exact
    zero-sum game, minimising ``-BCE(fake, 0) = mean(log(1 - sigmoid(fake)))``,
    i.e. ``-softplus(fake)``. Its gradient vanishes when the discriminator
    confidently rejects fakes, which is why ``non-saturating`` is usually
    preferred. Both losses are means over the batch, times ``weight``.
    """

    def __init__(self, params: LabelledParams, **context: Any) -> None:
        super().__init__(params)
        self.real_label = float(params.real_label)

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``weight * (BCE(real, real_label) + BCE(fake, 0))``."""
        return self._weighted(_bce(real_logits, self.real_label) + _bce(fake_logits, 0.0))

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``-weight * BCE(fake, 0) = weight * mean(log(1 - sigmoid(fake)))``."""
        return self._weighted(F.softplus(fake_logits.float()).mean().neg())


class NonSaturatingLoss(MinimaxLoss):
    """Non-saturating GAN loss (Goodfellow et al. 2014): the generator maximises log D(G(z)).

    The discriminator loss is the minimax one, ``BCE(real, real_label) +
    BCE(fake, 0)``; the generator instead minimises ``BCE(fake, 1) =
    softplus(-fake)``, which has strong gradients exactly when the
    discriminator rejects its samples. Means over the batch, times ``weight``.
    """

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``weight * BCE(fake, 1) = weight * mean(softplus(-fake))``."""
        return self._weighted(F.softplus(-fake_logits.float()).mean())


class LeastSquaresLoss(_Adversarial):
    """Least-squares GAN loss (Mao et al. 2017): squared distance of the raw logits to target labels.

    With targets a=0 (fake), b=``real_label`` (real) and c=1 (what the
    generator wants), the discriminator minimises
    ``0.5 * mean((real - b)^2) + 0.5 * mean((fake - a)^2)`` and the generator
    ``0.5 * mean((fake - c)^2)``, the paper's 0-1 coding.
    Penalising samples by their distance to the decision boundary keeps the
    generator's gradients from vanishing. Times ``weight``.
    """

    def __init__(self, params: LabelledParams, **context: Any) -> None:
        super().__init__(params)
        self.real_label = float(params.real_label)

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``weight * 0.5 * (mean((real - real_label)^2) + mean(fake^2))``."""
        real = (real_logits.float() - self.real_label).square().mean()
        fake = fake_logits.float().square().mean()
        return self._weighted(0.5 * (real + fake))

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``weight * 0.5 * mean((fake - 1)^2)``."""
        return self._weighted(0.5 * (fake_logits.float() - 1.0).square().mean())


class HingeLoss(_Adversarial):
    """Hinge GAN loss (Lim & Ye 2017; used by Miyato et al. 2018 and BigGAN).

    The discriminator is a margin classifier: it minimises
    ``mean(relu(1 - real)) + mean(relu(1 + fake))``, so logits beyond the
    margin of 1 cost nothing. The generator minimises ``-mean(fake)``.
    Times ``weight``.
    """

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``weight * (mean(relu(1 - real)) + mean(relu(1 + fake)))``."""
        real = F.relu(1.0 - real_logits.float()).mean()
        fake = F.relu(1.0 + fake_logits.float()).mean()
        return self._weighted(real + fake)

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``-weight * mean(fake)``."""
        return self._weighted(fake_logits.float().mean().neg())


class WassersteinLoss(_Adversarial):
    """Wasserstein GAN loss (Arjovsky et al. 2017): the critic estimates the earth mover's distance.

    The critic (discriminator) minimises ``mean(fake) - mean(real)``; the
    generator minimises ``-mean(fake)``. The estimate is only meaningful for a
    Lipschitz critic, so pair it with the ``gradient-penalty`` regulariser
    (Gulrajani et al. 2017) or spectral normalisation. Times ``weight``.
    """

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``weight * (mean(fake) - mean(real))``."""
        return self._weighted(fake_logits.float().mean() - real_logits.float().mean())

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``-weight * mean(fake)``."""
        return self._weighted(fake_logits.float().mean().neg())


class RelativisticParams(AdversarialParams):
    """Parameters of ``ragan``."""

    form: Literal["non-saturating", "hinge", "least-squares"] = Field(
        default="non-saturating",
        description="the function applied to the relativistic logits: softplus (RaSGAN), hinge (RaHingeGAN) or "
        "squares (RaLSGAN)",
    )


def _relativistic_term(differences: Tensor, target_real: bool, form: str) -> Tensor:
    """The loss of one side of a relativistic game, on ``D(x) - mean D(y)`` differences."""
    d = differences.float()
    if form == "non-saturating":
        return F.softplus(-d if target_real else d).mean()
    if form == "hinge":
        return F.relu(1.0 - d if target_real else 1.0 + d).mean()
    return ((d - 1.0) if target_real else (d + 1.0)).square().mean()


class RelativisticAverageLoss(_Adversarial):
    """Relativistic average GAN loss (Jolicoeur-Martineau 2018): is a real sample more real than the average fake?

    With ``r = D(real) - mean D(fake)`` and ``f = D(fake) - mean D(real)``, the
    discriminator minimises ``l(r, real) + l(f, fake)`` and the generator the
    same game with the roles swapped, ``l(f, real) + l(r, fake)``, where ``l`` is
    the softplus of a logistic classifier (``form = "non-saturating"``, RaSGAN),
    the hinge (RaHingeGAN) or squares around +-1 (RaLSGAN). Unlike the
    classic losses, the generator's loss depends on *real* logits too: the
    trainer gives it fresh ones, from the frozen discriminator, in the
    generator phase. Means over the batch, times ``weight``.
    """

    needs_real_logits = True

    def __init__(self, params: RelativisticParams, **context: Any) -> None:
        super().__init__(params)
        self.form = params.form

    def _game(self, winner: Tensor, loser: Tensor) -> Tensor:
        winner, loser = winner.float(), loser.float()
        ahead = winner - loser.mean()
        behind = loser - winner.mean()
        return self._weighted(_relativistic_term(ahead, True, self.form) + _relativistic_term(behind, False, self.form))

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``weight * (l(real - mean fake, real) + l(fake - mean real, fake))``."""
        return self._game(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``weight * (l(fake - mean real, real) + l(real - mean fake, fake))``."""
        if real_logits is None:
            raise ValueError("ragan's generator loss needs the real logits (the trainer passes them)")
        return self._game(fake_logits, real_logits)


class RelativisticPairingLoss(_Adversarial):
    """Relativistic pairing GAN loss, RpGAN (Jolicoeur-Martineau 2018; the loss of R3GAN, Huang et al. 2024).

    Each real sample is paired with one generated sample (the i-th with the
    i-th): the discriminator minimises ``mean(softplus(D(fake) - D(real)))`` and
    the generator ``mean(softplus(D(real) - D(fake)))``. Huang et al. show that,
    with the R1 and R2 penalties, this game has no mode-dropping local optima
    and converges locally, which is what lets R3GAN drop the older tricks.
    The two batches must have the same size. Times ``weight``.
    """

    needs_real_logits = True

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``weight * mean(softplus(fake - real))``."""
        return self._weighted(F.softplus(_paired(fake_logits, real_logits)).mean())

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """``weight * mean(softplus(real - fake))``."""
        if real_logits is None:
            raise ValueError("rpgan's generator loss needs the real logits (the trainer passes them)")
        return self._weighted(F.softplus(_paired(real_logits, fake_logits)).mean())


def _paired(a: Tensor, b: Tensor) -> Tensor:
    """``a - b`` for two batches of logits of the same size, pair by pair."""
    if a.shape != b.shape:
        raise ValueError(
            f"rpgan pairs real and generated samples one to one, but got {tuple(a.shape)} and {tuple(b.shape)} logits"
        )
    return a.float() - b.float()


def register(register: Register) -> None:
    """Register the adversarial losses."""
    role = "adversarial"
    register("loss", "bce", MinimaxLoss, LabelledParams, role=role)
    register("loss", "non-saturating", NonSaturatingLoss, LabelledParams, role=role)
    register("loss", "lsgan", LeastSquaresLoss, LabelledParams, role=role)
    register("loss", "hinge", HingeLoss, AdversarialParams, role=role)
    register("loss", "wgan", WassersteinLoss, AdversarialParams, role=role)
    register("loss", "ragan", RelativisticAverageLoss, RelativisticParams, role=role)
    register("loss", "rpgan", RelativisticPairingLoss, AdversarialParams, role=role)
