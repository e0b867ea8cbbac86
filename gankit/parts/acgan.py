"""``acgan``: the auxiliary-classifier loss (Odena et al. 2017), beside any adversarial loss.

It goes in ``[[regularizers]]`` and acts on both networks (``network =
"both"``): the discriminator's classifier learns to name the class of real
(and generated) samples, and the generator learns to make samples the
classifier names as the class it was asked for. It needs class logits,
which a discriminator with an auxiliary classifier gives (``condition =
"classifier"`` or ``"projection-classifier"`` on ``dcgan`` and ``mlp``), and
a conditional generator.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from gankit.errors import GankitError
from gankit.hookspecs import Register
from gankit.registry import Params


class ACGANParams(Params):
    """Parameters of ``acgan``."""

    weight: float = Field(default=1.0, ge=0.0, description="multiplies the classification loss of both networks")
    every: int = Field(default=1, ge=1, description="apply every this many steps of each network, scaled by it (lazy)")
    classify_fakes: bool = Field(
        default=True,
        description="train the discriminator's classifier on generated samples too, as Odena et al. do; false: on "
        "real samples only (its classifier then never learns from poor early samples)",
    )


class ACGANLoss:
    """Auxiliary-classifier GAN loss (Odena et al. 2017): cross-entropy of the discriminator's class logits.

    Discriminator: ``CE(class_logits(real), real labels) + CE(class_logits(fake),
    asked labels)`` (the second term only with ``classify_fakes``).
    Generator: ``CE(class_logits(fake), asked labels)``, so that its samples are
    recognisably of the class they were generated for. Both are added to the
    adversarial loss, times ``weight``; the class logits come from the same
    forward pass as the adversarial logits (the trainer asks the discriminator
    for them because this part sets ``needs_class_logits``).
    """

    network = "both"
    needs_class_logits = True

    def __init__(self, params: ACGANParams, **context: Any) -> None:
        self.params = params
        self.weight = float(params.weight)
        self.every = int(params.every)
        self.classify_fakes = bool(params.classify_fakes)

    def discriminator_penalty(self, discriminator: Any, real: Any, fake: Any, **context: Any) -> Tensor:
        """``CE(real class logits, real labels) [+ CE(fake class logits, asked labels)]``."""
        real_classes, real_labels = context.get("real_class_logits"), context.get("real_labels")
        if real_classes is None or real_labels is None:
            raise GankitError(_NEEDS)
        loss = F.cross_entropy(real_classes.float(), real_labels)
        fake_classes, fake_labels = context.get("fake_class_logits"), context.get("fake_labels")
        if self.classify_fakes and fake_classes is not None and fake_labels is not None:
            loss = loss + F.cross_entropy(fake_classes.float(), fake_labels)
        return loss

    def generator_penalty(self, generator: Any, latents: Tensor, **context: Any) -> Tensor:
        """``CE(fake class logits, asked labels)``: the generator's samples must be read as their class."""
        fake_classes, labels = context.get("fake_class_logits"), context.get("labels")
        if fake_classes is None or labels is None:
            raise GankitError(_NEEDS)
        return F.cross_entropy(fake_classes.float(), labels)

    def __repr__(self) -> str:
        return f"ACGANLoss(weight={self.weight}, every={self.every}, classify_fakes={self.classify_fakes})"


_NEEDS = (
    "the acgan loss needs class labels and class logits: a conditional generator (generator.condition) and a "
    "discriminator with a classifier (discriminator.condition = \"classifier\" or \"projection-classifier\")"
)


def register(register: Register) -> None:
    """Register ``acgan``."""
    register("loss", "acgan", ACGANLoss, ACGANParams, role="regularizer")
